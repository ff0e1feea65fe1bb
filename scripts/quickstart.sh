#!/usr/bin/env bash
# The main job: SimCLR vs GPS-SimCLR with flip-only augmentation on MNIST-5k, run with the
# embedded local executor (no cluster needed), then the paper-style table. Idempotent: finished
# runs are skipped, interrupted ones resume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet
exec target/debug/gps sweep run sweeps/quickstart.yaml --jobs "${GPS_JOBS:-2}" "$@"
