#!/usr/bin/env bash
# The test suite: installs what it needs (libtorch, data, a one-node SLURM), starts the cluster,
# runs every test. The SLURM tests must run here (GPS_REQUIRE_SLURM=1), never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash slurm/local-cluster.sh up
export GPS_REQUIRE_SLURM=1
cargo test --no-fail-fast "$@"
