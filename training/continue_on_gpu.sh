#!/usr/bin/env bash
# Train the shipped networks further on one GPU, side by side, inside one wall-clock budget.
#
#   bash training/continue_on_gpu.sh PACK WEIGHTS TEACHER OUT [MINUTES]
#
# PACK comes from `python -m training.pack_data pack`; WEIGHTS is a weights folder
# (autoencoder/, generator/, baseline/, bank/, parts/parts.json); TEACHER is the stage-1
# autoencoder the completing encoder was taught by (v0.3's: `git show 3342c9c:weights/
# autoencoder/...`). Four runs share the GPU for MINUTES (default 6.5) each, every one
# starting from WEIGHTS and keeping its latent space, so the bank stays valid:
#   completing   the completing encoder, taught by TEACHER as before (issue 13)
#   generator    the v1.2 recipe (traces the sketch, half the batch roughened) (issue 14)
#   generator_local  the same plus training.locality's term with the teacher, an
#                equal-budget arm for issue 15
#   baseline     the SimpleGAN with the same recipe and time, so the comparison stays fair
# OUT receives NAME.tar per finished model (fp16, training.collect_runs; a GAN run's tar also
# holds its discriminator, NAME_discriminator/, for --init-discriminator) and logs.tar.gz
# (configs, metrics, sample grids, logs). Without an importable faiss (the lent machine has
# none) the bank is searched by training/exact_faiss, an exact NumPy stand-in.
#
# Environment: S2A_DATA (unpacked data), S2A_RUNS (run folders), S2A_DEVICE (cuda; cpu for a
# quick rehearsal), S2A_BATCH (GAN batch size, default 64), S2A_ONLY (the runs to do, by
# name; default all four), S2A_WORKERS (DataLoader workers per run; default 5 for the
# completing encoder, 3 for the others: the four share 16 cores), S2A_GENERATOR_INIT (start
# the generators from this folder instead of WEIGHTS/generator, e.g. an earlier call's),
# S2A_DISCRIMINATOR_INIT (start their discriminator from this folder, e.g. an earlier
# call's generator_discriminator/, instead of a fresh one), PYTHON.
set -uo pipefail

USAGE="usage: continue_on_gpu.sh PACK WEIGHTS TEACHER OUT [MINUTES]"
PACK=${1:?$USAGE}
WEIGHTS=${2:?$USAGE}
TEACHER=${3:?$USAGE}
OUT=${4:?$USAGE}
MINUTES=${5:-6.5}
DATA=${S2A_DATA:-/tmp/s2a-data}
RUNS=${S2A_RUNS:-/tmp/s2a-runs}
PYTHON=${PYTHON:-python3}
DEVICE=${S2A_DEVICE:-cuda}
BATCH=${S2A_BATCH:-64}
ONLY=" ${S2A_ONLY:-completing generator generator_local baseline} "
GENERATOR_INIT=${S2A_GENERATOR_INIT:-$WEIGHTS/generator}
workers() { echo "${S2A_WORKERS:-$1}"; }
wanted() { [[ "$ONLY" == *" $1 "* ]]; }
HERE=$(cd "$(dirname "$0")" && pwd)

if ! $PYTHON -c "import faiss" 2>/dev/null; then
    echo "faiss is not importable: the bank is searched exactly by training/exact_faiss"
    export PYTHONPATH="$HERE/exact_faiss${PYTHONPATH:+:$PYTHONPATH}"
fi
export OMP_NUM_THREADS=2  # four runs and their DataLoader workers share the cores
COMMON=(--data "$DATA" --steps 1000000 --time-budget "$MINUTES" --device "$DEVICE"
        --log-every 100 --sample-every 1000 --checkpoint-every 1000)
GAN=(--l1-weight 10 --hint-weight 50 --d-scales 2 --fm-weight 10
     --diffaugment colour translation --degraded-share 0.5 --ema 0.998 --batch-size "$BATCH")
GENERATOR=(--architecture spatial --residual-blocks 2 --autoencoder "$WEIGHTS/autoencoder"
           --init "$GENERATOR_INIT" --bank "$WEIGHTS/bank" --trace-sketch
           ${S2A_DISCRIMINATOR_INIT:+--init-discriminator "$S2A_DISCRIMINATOR_INIT"})

mkdir -p "$OUT" "$RUNS"
echo "[$(date +%T)] unpack"
$PYTHON -m training.pack_data unpack --pack "$PACK" --out "$DATA" --workers 12 \
    >"$RUNS/unpack.log" 2>&1 || { cat "$RUNS/unpack.log"; exit 1; }

echo "[$(date +%T)] runs of $MINUTES min:$ONLY"
pids=()
if wanted completing; then
    $PYTHON -m training.train_completing_encoder "${COMMON[@]}" --out "$RUNS/completing" \
        --teacher "$TEACHER" --init "$WEIGHTS/autoencoder" --degraded-share 0.75 \
        --mse-weight 0.1 --lr 3e-4 --batch-size 256 --workers "$(workers 5)" \
        >"$RUNS/completing.log" 2>&1 &
    pids+=($!)
fi
if wanted generator; then
    $PYTHON -m training.train_generator "${COMMON[@]}" --out "$RUNS/generator" \
        "${GENERATOR[@]}" "${GAN[@]}" --workers "$(workers 3)" >"$RUNS/generator.log" 2>&1 &
    pids+=($!)
fi
if wanted generator_local; then
    $PYTHON -m training.train_generator "${COMMON[@]}" --out "$RUNS/generator_local" \
        "${GENERATOR[@]}" "${GAN[@]}" --locality-weight 100 --part-windows "$WEIGHTS/parts" \
        --locality-teacher --workers "$(workers 3)" >"$RUNS/generator_local.log" 2>&1 &
    pids+=($!)
fi
if wanted baseline; then
    $PYTHON -m training.train_baseline "${COMMON[@]}" --out "$RUNS/baseline" \
        --init "$WEIGHTS/baseline" "${GAN[@]}" --workers "$(workers 3)" \
        >"$RUNS/baseline.log" 2>&1 &
    pids+=($!)
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done

echo "[$(date +%T)] collect"
models=()
for run in completing generator generator_local baseline; do
    wanted "$run" || continue
    echo "$run: $(tail -n 1 "$RUNS/$run/metrics.jsonl" 2>/dev/null)"
    [ -s "$RUNS/$run.log" ] && grep -m 3 -i "error\|traceback" "$RUNS/$run.log"
    case "$run" in  # the model folder each stage saves inside its run folder
        completing) model=autoencoder ;;
        baseline) model=baseline ;;
        *) model=generator ;;
    esac
    models+=("$run=$RUNS/$run/$model")
done
$PYTHON -m training.collect_runs --out "$OUT" "${models[@]}" || failed=1
tar -czf "$OUT/logs.tar.gz" -C "$RUNS" --exclude=checkpoint.pt --exclude='*.safetensors' .
echo "[$(date +%T)] done$([ "$failed" = 1 ] && echo ', with failures (see the logs)')"
exit "$failed"
