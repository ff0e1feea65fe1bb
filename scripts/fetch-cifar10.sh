#!/usr/bin/env bash
# CIFAR-10's official binary release (50,000 training and 10,000 test images, 170 MB) into
# data/cifar-10-batches-bin: the real images the tests train and evaluate on. `gps data download
# cifar10` fetches it from its publisher (www.cs.toronto.edu), checks the release's MD5, extracts it
# and checks the tree against the release (file sizes, images per class); an interrupted download
# resumes. Idempotent: a complete tree is left as it is.
#
# A mirror: GPS_CIFAR10_URL with GPS_CIFAR10_MD5 (that file's checksum) take the place of the
# official URL and checksum (CI serves one from loopback: .ci/run). Needs target/debug/gps.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=data/cifar-10-batches-bin
complete=1
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  [ "$(stat -c %s "$tree/$f.bin" 2>/dev/null)" = 30730000 ] || complete=0
done
[ "$complete" = 1 ] && exit 0
gps=target/debug/gps
[ -x "$gps" ] || { echo "fetch-cifar10: $gps is missing: run cargo build first" >&2; exit 1; }
args=(data download cifar10 --dir data)
if [ -n "${GPS_CIFAR10_URL:-}" ]; then
  args+=(--url "$GPS_CIFAR10_URL" --md5 "${GPS_CIFAR10_MD5:?GPS_CIFAR10_URL needs GPS_CIFAR10_MD5, the checksum of its file}")
fi
echo "fetch-cifar10: gps ${args[*]}" >&2
"$gps" "${args[@]}"
