#!/usr/bin/env bash
# The GPU check, run from the repo root on a CUDA machine with PyTorch (no Rust toolchain there):
# release binaries built elsewhere in $BIN/cuda (--features cuda), optionally $BIN/cuda-fusion
# (--features cuda-fusion) and $BIN/cpu (default build), synthetic shards in $DATA. Prints every
# measurement, most important first (a lease may end mid-way); copies plots and logs to $OUT.
#   BIN=.gpu/bin DATA=.gpu/out/synthetic OUT=/tmp/out bash trainer/bench/gpu_check.sh
# Getting there (the device tool carries at most 64 MiB): build here with
#   CUDARC_CUDA_VERSION=13000 cargo build --release -p trainer --features cuda --bins
# (13000 for a CUDA 13 driver), strip trainer and bench-trainer and xz them into .gpu/dev/bin/cuda/
# (46 MB -> 8 MB each; the same for bench-trainer alone with --features cuda-fusion into
# .gpu/dev/bin/cuda-fusion/; and the CUDA-vs-Flex test binary, from
#   CUDARC_CUDA_VERSION=13000 cargo test --release -p trainer --features cuda --test cubecl_backend --no-run
# copied from target/release/deps/cubecl_backend-* to .gpu/dev/bin/cuda/cubecl_backend), prepare the default synthetic shards into .gpu/dev/out (31 MB), list
# /.gpu/ in .git/info/exclude, and carry [".gpu/dev"] with BIN=.gpu/dev/bin DATA=.gpu/dev/out/synthetic.
# CubeCL compiles every kernel at run time on first use (NVRTC) and caches it on disk, so the
# first step of a fresh machine is slow; each step's time is printed as it ends.
set -uo pipefail
BIN=${BIN:-.gpu/bin}; DATA=${DATA:-.gpu/out/synthetic}; OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
# Binaries may travel xz-compressed.
for f in "$BIN"/*/*.xz; do [ -e "$f" ] && python3 -c 'import lzma, sys; open(sys.argv[1][:-3], "wb").write(lzma.open(sys.argv[1]).read())' "$f" && chmod +x "${f%.xz}"; done
export PYTHONUNBUFFERED=1
# cudarc loads the driver and NVRTC at run time.
for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64 $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/lib") for p in nvidia.__path__))' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
step() { echo; echo "== $*"; }
nvidia-smi -L; nproc
# CubeCL's autotuning (cuda-fusion builds): the cheapest level.
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}

step "smoke: each first CUDA operation, timed (CubeCL's log in \$OUT/cubecl-smoke.log)"
CUBECL_DEBUG_LOG="$OUT/cubecl-smoke.log" timeout 90 "$BIN/cuda/bench-trainer" --smoke || { echo "smoke failed or timed out: stopping"; exit 1; }

if [ -x "$BIN/cuda/cubecl_backend" ]; then
  step "correctness: one OGM step of each tiny model on CUDA against the same step on Flex"
  timeout 300 "$BIN/cuda/cubecl_backend" --nocapture --test-threads 1
fi

step "training step, paper model, batch 64, CREMA-D shapes (257x188 audio, 3 frames of 224 px): Burn CUDA vs PyTorch CUDA"
timeout 240 "$BIN/cuda/bench-trainer" --model paper --batch 64 --steps 15 --audio 257x188 --frames 3 --balance ogm-ge
for bal in none ogm-ge; do
  timeout 120 python3 trainer/bench/reference_step.py --device cuda --batch 64 --steps 15 --balance $bal
done
timeout 120 "$BIN/cuda/bench-trainer" --model paper --batch 64 --steps 15 --audio 257x188 --frames 3 --balance none

if [ -x "$BIN/cuda-fusion/bench-trainer" ]; then
  step "the same step with kernel fusion and autotuning (--features cuda-fusion)"
  timeout 240 "$BIN/cuda-fusion/bench-trainer" --model paper --batch 64 --steps 15 --audio 257x188 --frames 3 --balance ogm-ge
fi

step "AVE localizer step, paper model, 16 clips x 10 segments (257x100 audio slices, 224-px frames), Burn CUDA"
timeout 200 "$BIN/cuda/bench-trainer" --localizer --model paper --batch 16 --steps 10 --balance ogm-ge

step "loader alone (16 cores) feeding the paper model's 224-px frames"
timeout 120 "$BIN/cuda/bench-trainer" --data "$DATA" --model paper --batch 64 --steps 2 --frames 2 --audio 129x251

if [ -x "$BIN/cpu/bench-trainer" ]; then
  step "training step on the CPU of this machine, paper model, batch 16: Burn Flex vs PyTorch CPU"
  timeout 150 "$BIN/cpu/bench-trainer" --model paper --batch 16 --steps 3 --balance ogm-ge
  timeout 100 python3 trainer/bench/reference_step.py --device cpu --batch 16 --steps 3 --balance ogm-ge
fi

step "the real CUDA training path: shards -> loader -> paper model, 2 epochs"
timeout 200 "$BIN/cuda/trainer" train --data "$DATA" --model paper --frames 2 --epochs 2 --batch-size 64 --lr 0.01 --out /tmp/runs --name paper-cuda
cp /tmp/runs/paper-cuda/{summary.json,epochs.csv,accuracy.png} "$OUT/" 2>/dev/null

step "the demo on CUDA: tiny model, 20 epochs, 3 seeds, with uni-modal ceilings"
timeout "${DEMO_TIMEOUT:-300}" "$BIN/cuda/trainer" compare --data "$DATA" --epochs "${DEMO_EPOCHS:-20}" --seeds 0,1,2 --ceilings --jobs 1 --out /tmp/demo | tee "$OUT/demo-table.md"
# Whatever finished, even if the demo ran out of time: test accuracy at the selected epoch.
python3 - <<'PY'
import glob, json
for f in sorted(glob.glob("/tmp/demo/*/summary.json")):
    s = json.load(open(f)); t = s["test"]
    print(f'{f.split("/")[3]}: best epoch {s["best_epoch"]}, fused {t["fused"]["accuracy"]:.3f}, audio {t["audio"]["accuracy"]:.3f}, visual {t["visual"]["accuracy"]:.3f}')
PY
for r in none-seed0 ogm-ge-seed0; do
  cp /tmp/demo/$r/accuracy.png "$OUT/demo-$r-accuracy.png" 2>/dev/null
done
cp /tmp/demo/ogm-ge-seed0/coefficients.png "$OUT/demo-ogm-ge-seed0-coefficients.png" 2>/dev/null
exit 0
