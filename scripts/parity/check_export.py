#!/usr/bin/env python3
"""Checks a `gps export` in PyTorch itself: loads the encoder strictly into torchvision's resnet18
with the CIFAR stem (exactly the README's lines), computes the features of the images gps wrote
and prints the largest difference from gps's own features.

    GPS_EXPORT_PARITY_DIR=/tmp/export-check cargo test --test export
    python scripts/parity/check_export.py /tmp/export-check     # torch, torchvision, safetensors
"""

import json
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import load_file

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/export-check")
weights, meta_file = str(folder / "encoder.safetensors"), folder / "encoder.json"

# --- the README's lines ---
m = torchvision.models.resnet18(); m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 2, bias=False); m.maxpool = m.fc = torch.nn.Identity()
m.load_state_dict(load_file(weights)); m.eval()   # strict: every name, shape and buffer matches
norm = torchvision.transforms.Normalize(**{k: json.load(open(meta_file))["normalization"][k] for k in ("mean", "std")})
# features = m(norm(images))   # images: float [B, 3, 32, 32] in [0, 1]
# --------------------------

ref = load_file(str(folder / "gps_features.safetensors"))
with torch.no_grad():
    ours = m(norm(ref["images"].float() / 255.0))
diff = (ours - ref["features"]).abs().max().item()
scale = ref["features"].abs().max().item()
print(f"{ref['images'].shape[0]} images, features {tuple(ours.shape)}: max |PyTorch - gps| = {diff:.3e} (max |feature| {scale:.3e})")
sys.exit(0 if diff <= 1e-4 * max(1.0, scale) else 1)
