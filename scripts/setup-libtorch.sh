#!/usr/bin/env bash
# Installs libtorch 2.11.0 (the PyPI torch wheel, the same version as the GPU machines'
# /opt/torch/.venv) into the git-ignored .torch/ folder. Idempotent: a no-op when present.
# Only the two CUDA libraries libtorch_cpu.so links against come along (1.25 GB instead of
# 4.7 GB): the binary loads libtorch_cuda.so at run time where the full torch exists.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .torch/torch/lib/libtorch_cpu.so ] && grep -q "'2.11.0" .torch/torch/version.py 2>/dev/null; then
  exit 0
fi
echo "setup-libtorch: installing torch==2.11.0 into .torch/ (about 1.2 GB, under a minute)" >&2
rm -rf .torch.partial
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target .torch.partial \
  torch==2.11.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
rm -rf .torch.partial/bin .torch
mv .torch.partial .torch
