#!/usr/bin/env bash
# The main job: SimCLR vs GPS-SimCLR with flip-only augmentation on MNIST-5k (sweeps/quickstart.yaml),
# run with the embedded local executor (no cluster needed); then every trained encoder's standard
# offline linear evaluation (the paper's metric), its table beside the online probe and the k-NN
# classifier, and GPS − baseline with its 95% interval. Idempotent: finished runs are skipped,
# interrupted ones resume, a run's linear evaluation is done once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet
exec target/debug/gps sweep run sweeps/quickstart.yaml --jobs "${GPS_JOBS:-2}" --linear-eval "$@"
