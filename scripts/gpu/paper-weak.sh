#!/usr/bin/env bash
# The paper's weak-augmentation pair on a GPU machine: SimCLR vs GPS-SimCLR (MobileNetV2 prior, k=5), flip-only augmentation,
# R18, batch 256, bf16, as many epochs as EPOCHS (default 50), then the table and GPS - baseline. Rows, logs and the
# report go under $OUT.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
EPOCHS=${EPOCHS:-50}
export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib
G=.gpu/gps
for prior in none imagenet-mobilenetv2; do
  $G train .gpu/gps-simclr-weak.yaml --set prior=$prior --set epochs=$EPOCHS --set output_dir="$OUT/gpu-cifar10" \
    2>&1 | tee "$OUT/train-$prior.log"
done
{ $G report "$OUT/gpu-cifar10"; echo; $G report "$OUT/gpu-cifar10" --compare prior; } | tee "$OUT/table.md"
