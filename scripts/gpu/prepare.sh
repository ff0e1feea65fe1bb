#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for a GPU machine that has torch 2.11 at /opt/torch/.venv, no
# network, and receives at most 64 MiB: the release binary, the run specs, a CIFAR-10 JPEG copy as
# an image-folder zip (62 MB: the official binary, 170 MB, does not fit; GPS_CIFAR10_ZIP names the
# file, by default the copy kept beside the development checkout) and the PyTorch anchor. The MobileNetV2 neighbour table is computed HERE on the CPU and
# carried as a small cache (the weights and the embedding do not fit), exactly as a cluster runs a
# CPU preparation job before the GPU job.
#   scripts/gpu/prepare.sh            then carry `.gpu` and run `bash scripts/gpu/bench.sh` (speed)
#                                     or `bash scripts/gpu/paper-weak.sh` (the weak-augmentation pair) there.
set -euo pipefail
cd "$(dirname "$0")/../.."
ZIP=${GPS_CIFAR10_ZIP:-../shared/data/cifar10-jpg.zip}
ANCHOR=${GPS_ANCHOR:-../shared/bench/simclr_pytorch_anchor.py}
bash scripts/setup.sh
cargo build --release --quiet
TARGET=${CARGO_TARGET_DIR:-target}
rm -rf .gpu && mkdir -p .gpu/cache
cp "$TARGET/release/gps" .gpu/gps && strip .gpu/gps
cp "$ZIP" .gpu/cifar10-jpg.zip
[ -f "$ANCHOR" ] && cp "$ANCHOR" .gpu/
cp scripts/gpu/*.yaml .gpu/
# The MobileNetV2 k=5 table of the 50k training images, on this CPU (a few minutes).
"$TARGET/release/gps" train .gpu/gps-simclr-weak.yaml --set epochs=1 --set device=cpu \
  --set cache_dir=.gpu/cache --set dataset.path=.gpu/cifar10-jpg.zip --prepare-only
# Only the neighbour tables travel (the decoded dataset and embeddings are rebuilt or not needed there).
rm -rf .gpu/cache/datasets .gpu/cache/priors
du -sh .gpu; du -sh .gpu/*
