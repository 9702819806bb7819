"""Sketch2Anime: rough face sketches + colour hints -> clean anime faces."""

__all__ = ["GenerationResult", "Sketch2Anime"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so `import s2a.models` (training) does not pull in FAISS and the pipeline.
    if name in __all__:
        from s2a import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 's2a' has no attribute {name!r}")
