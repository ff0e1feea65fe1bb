#!/usr/bin/env bash
# Fashion-MNIST (70,000 grey 28x28 images, MIT) from Debian's `dataset-fashion-mnist` package into
# data/fashion-mnist (a link to /usr/share/datasets/fashion-mnist). Idempotent. Installing the
# package needs root; where it is already installed nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/datasets/fashion-mnist
if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
  echo "fetch-fashion-mnist: installing Debian's dataset-fashion-mnist" >&2
  apt-get install -y -qq dataset-fashion-mnist >/dev/null || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
fi
mkdir -p data
[ -e data/fashion-mnist ] || ln -s "$src" data/fashion-mnist
