#!/usr/bin/env bash
# The GPU check: one command, one verdict, within DEADLINE seconds (default 470: under 8 minutes,
# with time to spare in a 10-minute device call). Run from the repo root on a CUDA machine with
# PyTorch (no Rust toolchain there). It stops at the first failure with a non-zero exit:
#   1 the smoke test (first CUDA operations), 2 the CUDA-vs-Flex check, 3 any later measurement,
#   4 out of time; 0 when every row is in. Every row is printed as it is measured and the table
#   again at the end ($OUT/table.md).
#
#   BIN=.gpu/dev/bin DATA=.gpu/dev/out/synthetic OUT=$OUT bash trainer/bench/gpu_check.sh
#
# $BIN/cuda/bench-trainer: the plain build (--features cuda); $BIN/cuda-fusion/bench-trainer
# (optional): the fused build (--features cuda-fusion); both may travel as .xz. DATA: shards for
# the loader and the 2-epoch run (`cargo xtask prepare-datasets --synthetic`). The kernel cache
# (CubeCL's compiled kernels and autotune results, and the driver's cache) is $OUT/kernel-cache,
# so it comes back with the results; KERNEL_CACHE_FROM names one brought back from an earlier
# check, copied in first, so the first steps skip compilation. `cargo xtask gpu-bundle` builds
# and packs all of it (see the README).
#
# DRY_RUN=1: the same script on a machine without a GPU: CubeCL's Vulkan runtime (lavapipe)
# instead of CUDA ($BIN/wgpu/bench-trainer, a build with wgpu-runtime, run with --device wgpu),
# the tiny model at a small batch, PyTorch on the CPU, no fused build, no GPU utilisation.
# PLANT_FAULT=1: the CUDA-vs-Flex check perturbs the GPU's logits, so it must fail (exit 2).
# CHECK_MODELS=classifier,...: only those models' steps in that check (default: all four).
# MODEL, BATCH, AUDIO, FRAMES, STEPS: the step's sizes (default: paper, 64, 257x188, 3, 10).
set -uo pipefail
BIN=${BIN:-.gpu/bin}; DATA=${DATA:-.gpu/out/synthetic}; OUT=${OUT:-/tmp/gpu-check}
DEADLINE=${DEADLINE:-470}; KERNEL_CACHE=$OUT/kernel-cache
PY=${PYTHON:-python3}
mkdir -p "$KERNEL_CACHE"; TABLE="$OUT/table.md"; START=$(date +%s)
printf '| measurement | result |\n|---|---|\n' > "$TABLE"

if [ -n "${DRY_RUN:-}" ]; then
  PLAIN=("$BIN/wgpu/bench-trainer" --device wgpu); FUSED=()
  MODEL=${MODEL:-tiny}; BATCH=${BATCH:-8}; AUDIO=${AUDIO:-64x48}; FRAMES=${FRAMES:-2}; STEPS=${STEPS:-3}
  TORCH_DEVICE=cpu; TORCH_SIZE=(--width 8 --image 64); WHERE="dry run: CubeCL's Vulkan runtime (lavapipe), PyTorch on the CPU"
else
  for f in "$BIN"/*/*.xz; do
    [ -e "$f" ] && "$PY" -c 'import lzma, sys; open(sys.argv[1][:-3], "wb").write(lzma.open(sys.argv[1]).read())' "$f" && chmod +x "${f%.xz}"
  done
  PLAIN=("$BIN/cuda/bench-trainer"); FUSED=()
  [ -x "$BIN/cuda-fusion/bench-trainer" ] && FUSED=("$BIN/cuda-fusion/bench-trainer")
  MODEL=${MODEL:-paper}; BATCH=${BATCH:-64}; AUDIO=${AUDIO:-257x188}; FRAMES=${FRAMES:-3}; STEPS=${STEPS:-10}
  TORCH_DEVICE=cuda; TORCH_SIZE=(); WHERE="$(nvidia-smi -L 2>/dev/null | head -1)"
  # cudarc loads the driver and NVRTC at run time: NVRTC from the CUDA toolkit or PyTorch's wheels.
  for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64 $("$PY" -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/lib") for p in nvidia.__path__))' 2>/dev/null); do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
  done
  # CubeCL's autotuning (fused build): the cheapest level.
  export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
fi
export PYTHONUNBUFFERED=1
[ -d "${KERNEL_CACHE_FROM:-/nonexistent}" ] && cp -r "$KERNEL_CACHE_FROM"/. "$KERNEL_CACHE"/
CACHE=(--kernel-cache "$KERNEL_CACHE")
SIZE=(--model "$MODEL" --batch "$BATCH" --audio "$AUDIO" --frames "$FRAMES" --steps "$STEPS")

# Rows and the verdict go to the script's own stdout (fd 3), even from a step whose output is kept.
exec 3>&1
row() { printf '| %s | %s |\n' "$1" "$2" >> "$TABLE"; echo "ROW | $1 | $2 |" >&3; }
finish() { { echo; echo "== the table ($WHERE; $(( $(date +%s) - START )) s; exit $1)"; cat "$TABLE"; } >&3; exit "$1"; }
# run CAP_SECONDS CMD...: at most CAP seconds, and never past the deadline.
run() {
  local cap=$1; shift
  local left=$(( DEADLINE - ($(date +%s) - START) ))
  if (( left < 10 )); then row "deadline" "out of time before: $*"; finish 4; fi
  (( cap > left )) && cap=$left
  timeout "$cap" "$@"
}
# A bench-trainer (or reference_step.py) --json file as a row: first, steady median, parts.
step_row() {
  "$PY" - "$1" "$2" >> "$TABLE" <<'PY'
import json, sys
what, f = sys.argv[1], sys.argv[2]
t = json.load(open(f))
order = ["forward", "host reads", "backward", "modulation", "optimiser"]
parts = ", ".join(f"{k} {sorted(v[1:])[len(v[1:]) // 2]:.1f}" for k, v in sorted(t["parts_ms"].items(), key=lambda kv: order.index(kv[0])))
print(f"| {what} | first step {t['first_ms']:.0f} ms; steady {t['median_ms']:.1f} ms/step (parts: {parts}) |")
PY
  tail -1 "$TABLE" | sed 's/^/ROW /' >&3
}
# stop at the first failure
must() { local code=$1; shift; "$@" || { row "FAILED (exit $?)" "$*"; finish "$code"; }; }

echo "== $WHERE; $(nproc) cores; deadline $DEADLINE s; kernel cache $KERNEL_CACHE ($(du -sh "$KERNEL_CACHE" 2>/dev/null | cut -f1 || echo empty))"

echo; echo "== smoke: each first GPU operation, timed (CubeCL's log in \$OUT/cubecl-smoke.log)"
CUBECL_DEBUG_LOG="$OUT/cubecl-smoke.log" must 1 run 120 "${PLAIN[@]}" "${CACHE[@]}" --smoke > "$OUT/smoke.log"
cat "$OUT/smoke.log"
row "smoke (first allocation, reduction, matmul, conv forward and backward)" "$(grep -o 'ok in .*' "$OUT/smoke.log")"

echo; echo "== correctness: one OGM step of each tiny model on the GPU against the same step on Flex; GE noise statistics"
run 150 "${PLAIN[@]}" "${CACHE[@]}" --check ${CHECK_MODELS:+--check-models "$CHECK_MODELS"} ${PLANT_FAULT:+--plant-fault} > "$OUT/check.log" 2>&1; rc=$?
cat "$OUT/check.log"
[ $rc = 0 ] || { row "CUDA vs Flex" "FAILED (exit $rc): $(grep -m1 'check failed' "$OUT/check.log" || tail -1 "$OUT/check.log")"; finish 2; }
row "CUDA vs Flex (${CHECK_MODELS:-4 tiny models}: OGM step)" "$(grep -c 'check: .*bound' "$OUT/check.log") comparisons within bounds"
row "GE noise / std(g) on the GPU, $(grep -o 'std(g), [0-9]* elements' "$OUT/check.log" | head -1 | cut -d' ' -f2-)" "$(grep 'GE noise / std' "$OUT/check.log" | sed 's/.*elements: //' | paste -sd ';' - | sed 's/;/; /g')"

echo; echo "== training step, $MODEL model, batch $BATCH (audio $AUDIO, $FRAMES frames): Burn vs PyTorch"
for bal in ogm-ge none; do
  must 3 run 180 "${PLAIN[@]}" "${CACHE[@]}" "${SIZE[@]}" --balance $bal --json "$OUT/step-$bal.json"
  must 3 step_row "Burn step, $bal" "$OUT/step-$bal.json"
  must 3 run 90 "$PY" trainer/bench/reference_step.py --device $TORCH_DEVICE "${TORCH_SIZE[@]}" --batch "$BATCH" --audio "$AUDIO" --frames "$FRAMES" --steps "$STEPS" --balance $bal --json "$OUT/torch-$bal.json"
  must 3 step_row "PyTorch step, $bal" "$OUT/torch-$bal.json"
done
if [ ${#FUSED[@]} -gt 0 ]; then
  echo; echo "== the same step with kernel fusion and autotuning (--features cuda-fusion)"
  for bal in ogm-ge none; do
    must 3 run 180 "${FUSED[@]}" "${CACHE[@]}" "${SIZE[@]}" --balance $bal --json "$OUT/fused-$bal.json"
    must 3 step_row "Burn fused step, $bal" "$OUT/fused-$bal.json"
  done
else
  row "Burn fused step" "not run (no fused build in $BIN)"
fi

# LibTorch through burn-tch ($BIN/tch-cuda/bench-trainer, --features tch-cuda), where the bundle has
# it: linked against the torch of this machine's Python (same version; the binary checks it and
# names both when they differ), which it loads from there; the same check against Flex and the
# same steps. In a dry run, the binary runs on the CPU.
TCH=("$BIN/tch-cuda/bench-trainer")
if [ -x "${TCH[0]}" ]; then
  echo; echo "== LibTorch (burn-tch): the check against Flex and the step"
  TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
  export LD_LIBRARY_PATH="${TORCH_LIB:+$TORCH_LIB:}${LD_LIBRARY_PATH:-}"
  run 150 "${TCH[@]}" --check ${CHECK_MODELS:+--check-models "$CHECK_MODELS"} > "$OUT/tch-check.log" 2>&1; rc=$?
  cat "$OUT/tch-check.log"
  [ $rc = 0 ] || { row "LibTorch vs Flex" "FAILED (exit $rc): $(grep -m1 -e 'check failed' -e 'libtorch' "$OUT/tch-check.log" || tail -1 "$OUT/tch-check.log")"; finish 2; }
  row "LibTorch vs Flex (${CHECK_MODELS:-4 tiny models}: OGM step)" "$(grep -c 'check: .*bound' "$OUT/tch-check.log") comparisons within bounds"
  for bal in ogm-ge none; do
    must 3 run 180 "${TCH[@]}" "${SIZE[@]}" --balance $bal --json "$OUT/tch-$bal.json"
    must 3 step_row "LibTorch step, $bal" "$OUT/tch-$bal.json"
  done
else
  row "LibTorch step" "not run (no tch-cuda build in $BIN)"
fi

echo; echo "== the real training path: shards -> loader -> $MODEL model, 2 epochs of ogm-ge"
if command -v nvidia-smi > /dev/null && [ -z "${DRY_RUN:-}" ]; then
  # Its own output only: a sampler holding the script's stdout would keep a caller waiting.
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 250 > "$OUT/utilisation.log" 2>/dev/null 3>&- & SMI=$!
  trap 'kill "$SMI" 2>/dev/null' EXIT
fi
run 150 "${PLAIN[@]}" "${CACHE[@]}" --methods ogm-ge --data "$DATA" --epochs 2 --model "$MODEL" --batch "$BATCH" --frames 2 > "$OUT/train.log"; rc=$?
cat "$OUT/train.log"
[ $rc = 0 ] || { row "2 epochs" "FAILED (exit $rc)"; finish 3; }
[ -n "${SMI:-}" ] && kill "$SMI" 2>/dev/null
busy=$("$PY" -c 'import sys; v=[float(l) for l in open(sys.argv[1]) if l.strip()]; print(f"{sum(v)/len(v):.0f}% busy (mean of {len(v)} samples)")' "$OUT/utilisation.log" 2>/dev/null || echo "GPU utilisation not measured")
row "2 epochs through the loader" "$(grep '^| plain' "$OUT/train.log" | awk -F'|' '{print $4 " ms/step, " $6 " samples/s"}'); $busy"

echo; echo "== the loader alone, $(nproc) cores, 2 frames of the model's size"
must 3 run 60 "${PLAIN[@]}" --data "$DATA" --model "$MODEL" --batch "$BATCH" --frames 2 --loader-only > "$OUT/loader.log"
cat "$OUT/loader.log"
row "loader alone" "$(grep -o '[0-9]* samples/s.*' "$OUT/loader.log")"

echo; echo "kernel cache now $(du -sh "$KERNEL_CACHE" | cut -f1) in $KERNEL_CACHE"
finish 0
