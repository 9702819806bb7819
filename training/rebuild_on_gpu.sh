#!/usr/bin/env bash
# Retrain every network of the v1 chain on one GPU inside fixed wall-clock budgets.
#
#   bash training/rebuild_on_gpu.sh PACK OUT [AE_MIN CE_MIN G_MIN]
#
# PACK comes from `python -m training.pack_data pack`. The chain, in dependency order (what
# shares a line shares the GPU at the same time):
#   1. [AE_MIN]  stage-1 autoencoder            | plain SimpleGAN baseline (AE_MIN)
#   2. [CE_MIN]  completing encoder (teacher 1) | bank (encoded with 1, not the completing
#                                               |   one; needs faiss) | v1 baseline fine-tune
#                                               | part autoencoders (training.train_parts)
#   3. [G_MIN]   spatial generator: completing encoder, synthesis from the plain baseline,
#                half of each batch from projected latents | (fine-tune, CE_MIN + G_MIN)
#                | the part model as shipped (training.build_part_banks with the whole
#                |   sketch as the rest, on the bank; then training.build_part_keys;
#                |   needs faiss)
# so the baseline gets as many minutes as the whole method (AE_MIN + CE_MIN + G_MIN).
# Without an importable faiss there is no bank: the generator then trains without
# --projected-share, and the note in OUT's logs says so (fine-tune it on a bank later);
# there are no part banks either.
#
# OUT receives one uncompressed tar per model (autoencoder, completing, baseline_plain,
# baseline, generator: NAME/config.json + fp16 NAME/model.safetensors, and for the GAN runs
# their discriminator as NAME_discriminator/, for --init-discriminator), parts.tar (both
# train_parts runs, each RUN/config.json, which holds the windows, and fp16
# RUN/<part>/autoencoder/: parts_clean, the teachers whose latents the part banks hold, and
# parts, the students that ship), bank.tar and logs.tar.gz (configs, metrics, sample grids,
# logs): at most 8 files of <16 MiB each, what a lent GPU machine sends back. Unpack with
# `for t in OUT/*.tar; do tar -xf "$t" -C DIR; done`, then export (and rebuild the bank and
# the part banks from the original data: training.build_bank, training.build_part_banks
# --parts DIR/parts_clean --students DIR/parts --rest whole, training.build_part_keys,
# export --parts) on any machine; see README.md. The face locator
# (training.train_face_locator, 10 min on a 2-core CPU) is not trained here.
#
# Environment: S2A_DATA (unpacked data), S2A_RUNS (run folders), S2A_DEVICE (cuda; cpu for a
# quick local rehearsal), S2A_WORKERS (DataLoader workers of every stage; default sized
# for 16 cores), PYTHON.
set -uo pipefail

USAGE="usage: rebuild_on_gpu.sh PACK OUT [AE_MIN CE_MIN G_MIN]"
PACK=${1:?$USAGE}
OUT=${2:?$USAGE}
AE_MIN=${3:-2.5}
CE_MIN=${4:-2}
G_MIN=${5:-5}
DATA=${S2A_DATA:-/tmp/s2a-data}
RUNS=${S2A_RUNS:-/tmp/s2a-runs}
PYTHON=${PYTHON:-python3}
DEVICE=${S2A_DEVICE:-cuda}
WORKERS=${S2A_WORKERS:-}
TUNE_MIN=$($PYTHON -c "
import sys
minutes = [float(m) for m in sys.argv[1:]]
if min(minutes) <= 0:
    sys.exit('every budget must be a positive number of minutes')
print('%g' % (minutes[1] + minutes[2]))" "$AE_MIN" "$CE_MIN" "$G_MIN") \
    || { echo "$USAGE" >&2; exit 2; }
# Steps are left unbounded: the clock ends each run and drives its learning-rate decay.
COMMON=(--data "$DATA" --steps 1000000 --device "$DEVICE" --log-every 100
        --sample-every 2000 --checkpoint-every 2000)
# The v1 GAN recipe, shared by the baseline fine-tune and the generator.
V1_GAN=(--l1-weight 10 --d-scales 2 --fm-weight 10 --diffaugment colour translation
        --degraded-share 0.5 --ema 0.998)
export OMP_NUM_THREADS=1  # the DataLoader workers share the cores; no nested thread pools

failed=()
workers() { echo "${WORKERS:-$1}"; }
# Wait for a background stage; note it when it failed.
finish() {
    wait "$2" || failed+=("$1")
    tail -n 2 "$RUNS/$1/metrics.jsonl" 2>/dev/null
}
# Copy finished models into OUT as they come, so a run stopped on the clock still sends back
# the stages it finished: fp16 (half the bytes; fp16-stored weights load into the fp32
# models), one tar each, and the logs so far.
collect() {
    $PYTHON - "$RUNS" "$OUT" "$@" <<'EOF' || failed+=(collect)
import json
import sys
import tarfile
from pathlib import Path

from training.collect_runs import LIMIT, add_bytes, add_model, add_run_discriminator

runs, out, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
FOLDERS = {"autoencoder": "autoencoder/autoencoder", "completing": "completing/autoencoder",
           "baseline_plain": "baseline_plain/baseline", "baseline": "baseline/baseline",
           "generator": "generator/generator", "bank": "bank"}
# The part students and the clean autoencoders that taught them (their latents fill the
# part banks): each run's config.json (the windows) and one autoencoder per window.
PART_RUNS = ("parts_clean", "parts")

missing = False
for name in names:
    configs = []
    if name == "parts":
        models, needed = {}, []
        for run in PART_RUNS:
            config = runs / run / "config.json"
            windows = json.loads(config.read_text()).get("windows", {}) if config.is_file() else {}
            found = {f"{run}/{part}/autoencoder": runs / run / part / "autoencoder"
                     for part in windows}
            models.update(found)
            configs.append(config)
            needed += [config, *(folder / "model.safetensors" for folder in found.values())]
    else:
        source = runs / FOLDERS[name]
        models = {name: source}
        needed = [source / ("bank_latents.safetensors" if name == "bank"
                            else "model.safetensors")]
    target = out / f"{name}.tar"
    if not models or not all(path.is_file() for path in needed):
        print(f"{name}: no model (see {name}.log{' or NO_BANK.txt' if name == 'bank' else ''})")
        missing |= name != "bank"  # no faiss, no bank: noted in NO_BANK.txt, not a failure
        continue
    with tarfile.open(target, "w") as archive:
        if name == "bank":  # int8 latents already; a missing index is rebuilt on load
            for path in sorted(p for p in source.iterdir() if p.suffix != ".faiss"):
                add_bytes(archive, f"{name}/{path.name}", path.read_bytes())
        else:
            for config in configs:
                add_bytes(archive, f"{config.parent.name}/config.json", config.read_bytes())
            for folder_name, folder in models.items():
                add_model(archive, folder_name, folder)
                add_run_discriminator(archive, folder_name, folder)  # GAN runs keep theirs
    size = target.stat().st_size
    print(f"{name}: {size / 2**20:.1f} MiB{'  (over 16 MiB!)' if size >= LIMIT else ''}")
    missing |= size >= LIMIT
sys.exit(1 if missing else 0)
EOF
    tar -czf "$OUT/logs.tar.gz" -C "$RUNS" --exclude=checkpoint.pt --exclude='*.safetensors' \
        --exclude='*.faiss' .
}

mkdir -p "$OUT" "$RUNS"
rm -f "$OUT"/{autoencoder,completing,baseline_plain,baseline,generator,parts,bank}.tar \
    "$OUT/logs.tar.gz"  # a stale copy must not pass for this run's
echo "[$(date +%T)] unpack"
unpackers=$(workers 12)
$PYTHON -m training.pack_data unpack --pack "$PACK" --out "$DATA" \
    --workers "$(( unpackers > 0 ? unpackers : 1 ))" >"$RUNS/unpack.log" 2>&1 \
    || { cat "$RUNS/unpack.log"; exit 1; }

echo "[$(date +%T)] 1. autoencoder ($AE_MIN min) | plain baseline"
$PYTHON -m training.train_baseline "${COMMON[@]}" --out "$RUNS/baseline_plain" \
    --time-budget "$AE_MIN" --batch-size 128 --workers "$(workers 6)" \
    >"$RUNS/baseline_plain.log" 2>&1 &
plain=$!
$PYTHON -m training.train_autoencoder "${COMMON[@]}" --out "$RUNS/autoencoder" \
    --time-budget "$AE_MIN" --batch-size 256 --workers "$(workers 6)" \
    >"$RUNS/autoencoder.log" 2>&1 || failed+=(autoencoder)
tail -n 2 "$RUNS/autoencoder/metrics.jsonl"
finish baseline_plain "$plain"
collect autoencoder baseline_plain

echo "[$(date +%T)] 2. completing encoder ($CE_MIN min) | bank | v1 baseline ($TUNE_MIN min)" \
    "| part autoencoders"
$PYTHON -m training.train_baseline "${COMMON[@]}" --out "$RUNS/baseline" \
    --init "$RUNS/baseline_plain/baseline" "${V1_GAN[@]}" \
    --time-budget "$TUNE_MIN" --batch-size 128 --workers "$(workers 4)" \
    >"$RUNS/baseline.log" 2>&1 &
tuned=$!
# The part autoencoders: plain ones on clean windows, then completing student encoders
# against them (training/train_parts.py), one after the other in the completing
# encoder's time.
PARTS_CLEAN_MIN=$(awk "BEGIN { print $CE_MIN / 3 }")
PARTS_MIN=$(awk "BEGIN { print $CE_MIN - $PARTS_CLEAN_MIN }")
train_parts_twice() {
    $PYTHON -m training.train_parts "${COMMON[@]}" --out "$RUNS/parts_clean" \
        --degraded-share 0 --time-budget "$PARTS_CLEAN_MIN" --batch-size 128 \
        --workers "$(workers 4)" || return
    $PYTHON -m training.train_parts "${COMMON[@]}" --out "$RUNS/parts" \
        --teacher "$RUNS/parts_clean" --time-budget "$PARTS_MIN" --batch-size 128 \
        --workers "$(workers 4)"
}
train_parts_twice >"$RUNS/parts.log" 2>&1 &
parts=$!
bank=
if $PYTHON -c "import faiss" 2>/dev/null; then
    $PYTHON -m training.build_bank --data "$DATA" --autoencoder "$RUNS/autoencoder/autoencoder" \
        --out "$RUNS/bank" --device "$DEVICE" >"$RUNS/bank.log" 2>&1 &
    bank=$!
else
    echo "faiss is not importable by $PYTHON: no bank, and the generator trains without" \
         "--projected-share (fine-tune it on a bank afterwards)" | tee "$RUNS/NO_BANK.txt"
fi
$PYTHON -m training.train_completing_encoder "${COMMON[@]}" --out "$RUNS/completing" \
    --teacher "$RUNS/autoencoder/autoencoder" --degraded-share 0.75 \
    --styles rough width soft smooth xdog strays heavy partial frame --mse-weight 0.1 \
    --lr 3e-4 --time-budget "$CE_MIN" --batch-size 256 --workers "$(workers 8)" \
    >"$RUNS/completing.log" 2>&1 || failed+=(completing)
tail -n 2 "$RUNS/completing/metrics.jsonl"
finish parts "$parts"
PROJECTED=()
if [ -n "$bank" ]; then
    wait "$bank" || failed+=(bank)
    tail -n 1 "$RUNS/bank.log"
    if [ -f "$RUNS/bank/bank.json" ]; then
        # v1.2: trace the drawn sketch by 1 - refine (a refine per item, latents blended
        # with the projection as the app does).
        PROJECTED=(--bank "$RUNS/bank" --trace-sketch)
    else
        echo "no bank (see bank.log): the generator trains without --trace-sketch" \
            | tee "$RUNS/NO_BANK.txt"
    fi
fi
collect completing parts bank

echo "[$(date +%T)] 3. generator ($G_MIN min) | v1 baseline | part banks"
part_banks=
# The part model as shipped since v1.5: the rest is the whole sketch on the whole-face bank,
# and the part keys (read from the decoder's map of every bank latent) choose where each
# windowed part searches.
build_part_model() {
    $PYTHON -m training.build_part_banks --data "$DATA" --parts "$RUNS/parts_clean" \
        --students "$RUNS/parts" --autoencoder "$RUNS/autoencoder/autoencoder" \
        --out "$RUNS/parts_model" --rest whole --bank "$RUNS/bank" --device "$DEVICE" || return
    $PYTHON -m training.build_part_keys --parts "$RUNS/parts_model" --bank "$RUNS/bank" \
        --autoencoder "$RUNS/completing/autoencoder"  # its decoder reads the bank, as exported
}
if [ -n "$bank" ] && [ -f "$RUNS/parts/config.json" ]; then  # faiss, and the part models
    build_part_model >"$RUNS/parts_model.log" 2>&1 &
    part_banks=$!
fi
$PYTHON -m training.train_generator "${COMMON[@]}" --out "$RUNS/generator" \
    --architecture spatial --residual-blocks 2 --autoencoder "$RUNS/completing/autoencoder" \
    --init-baseline "$RUNS/baseline_plain/baseline" "${PROJECTED[@]}" "${V1_GAN[@]}" \
    --time-budget "$G_MIN" --batch-size 128 --workers "$(workers 8)" \
    >"$RUNS/generator.log" 2>&1 || failed+=(generator)
tail -n 2 "$RUNS/generator/metrics.jsonl"
finish baseline "$tuned"
PART_MODEL=
if [ -n "$part_banks" ]; then
    wait "$part_banks" || failed+=(parts_model)
    tail -n 1 "$RUNS/parts_model.log"
    [ -f "$RUNS/parts_model/parts.json" ] && PART_MODEL="$RUNS/parts_model"
fi

if [ -n "${PROJECTED[*]}" ]; then  # the networks and banks must make one pipeline
    $PYTHON -m training.export --dry-run --autoencoder "$RUNS/completing/autoencoder" \
        --generator "$RUNS/generator/generator" --bank "$RUNS/bank" \
        --baseline "$RUNS/baseline/baseline" ${PART_MODEL:+--parts "$PART_MODEL"} \
        >"$RUNS/export_check.log" 2>&1 || failed+=(export)
    tail -n 1 "$RUNS/export_check.log"
fi
echo "[$(date +%T)] collect"
collect generator baseline
echo "[$(date +%T)] done${failed[*]:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
