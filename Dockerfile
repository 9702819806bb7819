# Sketch2Anime drawing app: a Hugging Face Docker Space, or any server with Docker.
#   docker build -t sketch2anime . && docker run -p 7860:7860 sketch2anime
# Weights: the bundled weights/ by default; to serve a Hub repo instead, set at run time
#   -e S2A_WEIGHTS=user/repo -e S2A_REVISION=<commit>   (cached under ~/.cache/huggingface)
FROM python:3.11-slim

# The opencv-python-headless, faiss-cpu and torch CPU wheels bundle their own libraries
# (headless OpenCV needs no libGL). The anime upscaler's ncnn build (sr-vulkan) needs GNU
# OpenMP, libgomp1 (packages.txt); without it the app still runs, with a LANCZOS fallback.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

COPY packages.txt .
RUN apt-get update && xargs -a packages.txt apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/*

# Hugging Face Spaces run the container as uid 1000.
RUN useradd -m -u 1000 user && install -d -o user -g user /home/user/app
WORKDIR /home/user/app

# A plain `pip install torch` from PyPI pulls the CUDA build and its nvidia-* wheels
# (several GB) that a CPU server never uses; the CPU wheels come from PyTorch's own
# index. Installed first, so requirements.txt finds torch and torchvision satisfied.
RUN pip install --no-cache-dir torch torchvision --index-url https://download.pytorch.org/whl/cpu

# Dependencies before the code: editing the code does not reinstall them.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=user:user . .

ENV HOME=/home/user \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860
EXPOSE 7860
USER user
CMD ["python", "app.py"]
