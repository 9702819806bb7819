#!/usr/bin/env bash
# Retrain the three networks on one GPU inside a fixed wall-clock budget.
#
#   bash training/rebuild_on_gpu.sh PACK OUT [AE_MIN G_MIN BASELINE_MIN]
#
# PACK comes from `python -m training.pack_data pack`; OUT receives each model as
# config.json + fp16 model.safetensors (<16 MiB a file, what a lent GPU machine sends
# back) and logs.tar.gz (run configs, metrics, sample grids, logs). The autoencoder
# trains first and the generator after it (it needs the encoder); the SimpleGAN baseline
# trains beside them on the same GPU for as long as the two together, so both systems
# get the same minutes. The bank, export and evaluation run afterwards on any machine
# (see weights/README.md).
set -uo pipefail

PACK=${1:?usage: rebuild_on_gpu.sh PACK OUT [AE_MIN G_MIN BASELINE_MIN]}
OUT=${2:?usage: rebuild_on_gpu.sh PACK OUT [AE_MIN G_MIN BASELINE_MIN]}
AE_MIN=${3:-2.5}
G_MIN=${4:-4.5}
BASELINE_MIN=${5:-$(${PYTHON:-python3} -c "print($AE_MIN + $G_MIN)")}
DATA=${S2A_DATA:-/tmp/s2a-data}
RUNS=${S2A_RUNS:-/tmp/s2a-runs}
PYTHON=${PYTHON:-python3}
DEVICE=${S2A_DEVICE:-cuda}  # cpu: a quick local rehearsal of this script
# Steps are left unbounded: the clock ends each run and drives its learning-rate decay.
COMMON=(--data "$DATA" --steps 1000000 --device "$DEVICE" --log-every 100
        --sample-every 2000 --checkpoint-every 2000)
export OMP_NUM_THREADS=1  # the DataLoader workers share the cores; no nested thread pools

mkdir -p "$OUT" "$RUNS"
echo "[$(date +%T)] unpack"
$PYTHON -m training.pack_data unpack --pack "$PACK" --out "$DATA" --workers 12 || exit 1

echo "[$(date +%T)] baseline (background, $BASELINE_MIN min)"
$PYTHON -m training.train_baseline "${COMMON[@]}" --out "$RUNS/baseline" \
    --time-budget "$BASELINE_MIN" --batch-size 128 --workers 6 >"$RUNS/baseline.log" 2>&1 &
baseline=$!

echo "[$(date +%T)] autoencoder ($AE_MIN min)"
$PYTHON -m training.train_autoencoder "${COMMON[@]}" --out "$RUNS/autoencoder" \
    --time-budget "$AE_MIN" --batch-size 256 --workers 6 >"$RUNS/autoencoder.log" 2>&1
tail -n 3 "$RUNS/autoencoder/metrics.jsonl"

echo "[$(date +%T)] generator ($G_MIN min)"
$PYTHON -m training.train_generator "${COMMON[@]}" --out "$RUNS/generator" \
    --autoencoder "$RUNS/autoencoder/autoencoder" \
    --time-budget "$G_MIN" --batch-size 128 --workers 8 >"$RUNS/generator.log" 2>&1
tail -n 3 "$RUNS/generator/metrics.jsonl"

wait "$baseline"
tail -n 3 "$RUNS/baseline/metrics.jsonl"
echo "[$(date +%T)] collect"

# fp16 copies: half the bytes, and fp16-stored weights load into the fp32 models.
$PYTHON - "$RUNS" "$OUT" <<'EOF'
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
for stage, model in (("autoencoder", "autoencoder"), ("generator", "generator"),
                     ("baseline", "baseline")):
    source = runs / stage / model
    if not (source / "model.safetensors").is_file():
        print(f"{stage}: no model (see its log)")
        continue
    target = out / stage
    target.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.half() if v.is_floating_point() else v
               for k, v in load_file(source / "model.safetensors").items()}
    save_file(tensors, target / "model.safetensors")
    (target / "config.json").write_text((source / "config.json").read_text())
    print(f"{stage}: {(target / 'model.safetensors').stat().st_size / 2**20:.1f} MiB")
EOF
tar -czf "$OUT/logs.tar.gz" -C "$RUNS" --exclude=checkpoint.pt --exclude='*.safetensors' .
echo "[$(date +%T)] done"
