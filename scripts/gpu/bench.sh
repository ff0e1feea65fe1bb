#!/usr/bin/env bash
# On a GPU machine, from the checkout root with .gpu carried: first the device self-check
# (`gps info --check --device cuda`: every method's step in bf16 + channels-last against fp32 on
# the CPU, a checkpoint round trip, samples/s), then GPS-SimCLR R18, batch 256, bf16 +
# channels_last, weak and strong presets, next to the PyTorch anchor on the same card, and the
# k-NN table. Writes everything under $OUT (or ./gpu-out).
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib
G=.gpu/gps
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  $G info --check --device cuda || echo "self-check FAILED (see above)"
  for preset in weak strong; do
    $G bench train .gpu/gps-simclr-$preset.yaml --warmup 10 --steps 60 || echo "bench $preset failed"
  done
  $G bench knn --n 50000 --d 512 --k 50 --device cuda --repeat 3
  $G bench knn --n 50000 --d 2048 --k 50 --device cuda --repeat 3
  /opt/torch/.venv/bin/python .gpu/simclr_pytorch_anchor.py
} 2>&1 | tee "$OUT/bench.log"
