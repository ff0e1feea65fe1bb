#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that `cargo test --test parity` checks `gps` against.

The references are PyTorch 2.11 / torchvision 0.26 themselves and the authors' own code (the
solo-learn fork aarashfeizi/gps-ssl): its loss functions and LARS are loaded from a checkout you
point to with --solo, never copied here. Run it once in a throwaway venv (CPU is enough):

    python3 -m venv /tmp/parity && . /tmp/parity/bin/activate
    pip install -r scripts/parity/requirements.txt
    pip install --no-deps lightning-bolts==0.7.0          # pl_bolts' warmup-cosine schedule
    git clone https://github.com/aarashfeizi/gps-ssl /tmp/gps-ssl
    python scripts/parity/make_fixtures.py --solo /tmp/gps-ssl

It rewrites tests/fixtures/parity/ (a few hundred kB). Every random input comes from a fixed
seed, so a rerun with the same versions writes the same numbers.

Weights that a test loads into both implementations are not stored: they come from a formula
both sides compute, `formula_values(name, shape, ...)` below and `parity::formula_tensor` in the
Rust test (SplitMix64 seeded with the FNV-1a hash of the parameter's name). So the fixtures stay
small and a parameter loaded under the wrong name gives different numbers.
"""

import argparse
import collections
import importlib.util
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter, ImageOps
from safetensors.torch import save_file
from torchvision import transforms

GOLDEN = 0x9E3779B97F4A7C15


# --------------------------------------------------------------------------------------------
# The formula both sides use for weights and inputs.


def fnv1a64(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def splitmix_uniform(seed: int, n: int) -> np.ndarray:
    """The first n draws of the project's SplitMix64::new(seed).uniform(): (z >> 40) / 2^24."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def formula_values(name: str, shape, lo: float, hi: float) -> torch.Tensor:
    n = int(np.prod(shape)) if len(shape) else 1
    u = splitmix_uniform(fnv1a64(name), n)
    return torch.from_numpy((lo + (hi - lo) * u).astype(np.float32)).reshape(shape)


def formula_range(name: str, shape) -> tuple:
    """The value range of a state_dict entry: weights ±sqrt(6/fan_in) (so activations stay O(1)),
    BN γ in [0.5, 1.5], β and running means in ±0.1, running variances in [0.5, 1.5]."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return 0.5, 1.5
    if leaf in ("running_mean", "bias"):
        return -0.1, 0.1
    if leaf == "weight" and len(shape) == 1:
        return 0.5, 1.5
    fan_in = int(np.prod(shape[1:]))
    b = math.sqrt(6.0 / fan_in)
    return -b, b


def load_formula_weights(module: nn.Module, prefix: str = ""):
    """Every floating state_dict entry from the formula, seeded by prefix + name."""
    state = module.state_dict()
    new = {}
    for name, t in state.items():
        if t.dtype.is_floating_point:
            lo, hi = formula_range(name, tuple(t.shape))
            new[name] = formula_values(prefix + name, tuple(t.shape), lo, hi)
        else:
            new[name] = torch.zeros_like(t)
    module.load_state_dict(new)


# --------------------------------------------------------------------------------------------
# Twins of gps's networks, built the way the authors' code builds them.


def cifar_resnet(kind: str) -> nn.Module:
    """solo-learn's CIFAR backbone (solo/methods/base.py): torchvision's ResNet, fc removed, conv1
    replaced by a 3x3 stride-1 padding-2 conv (nn.Conv2d defaults), max-pool removed."""
    net = getattr(torchvision.models, kind)()
    net.fc = nn.Identity()
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
    net.maxpool = nn.Identity()
    return net


class SmallCnn(nn.Module):
    """gps's small CNN (model/small_cnn.rs) in PyTorch with nn defaults."""

    def __init__(self, in_channels=3):
        super().__init__()
        c = in_channels
        for i, w in enumerate([32, 64, 128, 256]):
            setattr(self, f"conv{i}", nn.Conv2d(c, w, 3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(w))
            c = w

    def forward(self, x):
        for i in range(4):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            if i < 3:
                x = F.max_pool2d(x, 2)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def mlp(dims, bn_last):
    """solo-learn's heads: Linear-BN-ReLU per hidden layer, then Linear (and BN if bn_last)."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        last = i == len(dims) - 2
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU()]
        elif bn_last:
            layers.append(nn.BatchNorm1d(dims[i + 1]))
    return nn.Sequential(*layers)


def method_heads(method: str, f: int) -> dict:
    """The heads of each method as the fork builds them (solo/methods/*.py), CIFAR-10 sizes."""
    if method == "simclr":
        return {"projector": mlp([f, 2048, 2048, 256], True)}
    if method == "byol":
        return {"projector": mlp([f, 4096, 256], False), "predictor": mlp([256, 4096, 256], False)}
    if method in ("vicreg", "barlow-twins"):
        return {"projector": mlp([f, 2048, 2048, 2048], False)}
    if method == "nnclr":
        return {"projector": mlp([f, 2048, 2048, 256], True), "predictor": mlp([256, 4096, 256], False)}
    raise ValueError(method)


# --------------------------------------------------------------------------------------------
# The authors' code, loaded from a checkout (nothing of it is copied into this repository).


def load_authors_code(solo: Path):
    # Single-process stand-ins for solo.utils.misc's distributed helpers (gather returns its
    # argument and get_rank 0 when torch.distributed is not initialised, as here).
    pkg = types.ModuleType("solo")
    pkg.__path__ = []
    utils = types.ModuleType("solo.utils")
    utils.__path__ = []
    misc = types.ModuleType("solo.utils.misc")
    misc.gather = lambda x, *a, **k: x
    misc.get_rank = lambda: 0
    sys.modules.update({"solo": pkg, "solo.utils": utils, "solo.utils.misc": misc})

    def load(rel):
        path = solo / rel
        spec = importlib.util.spec_from_file_location("solo." + rel[5:-3].replace("/", "."), path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    code = types.SimpleNamespace()
    code.simclr = load("solo/losses/simclr.py").simclr_loss_func
    code.byol = load("solo/losses/byol.py").byol_loss_func
    code.vicreg = load("solo/losses/vicreg.py").vicreg_loss_func
    code.barlow = load("solo/losses/barlow.py").barlow_loss_func
    code.nnclr = load("solo/losses/nnclr.py").nnclr_loss_func
    code.LARS = load("solo/utils/lars.py").LARS

    # pl_bolts' LinearWarmupCosineAnnealingLR (what solo-learn's warmup_cosine uses), loaded
    # without pl_bolts/__init__ (which needs Lightning).
    bolts = Path(importlib.util.find_spec("pl_bolts").submodule_search_locations[0])
    stability = types.ModuleType("pl_bolts.utils.stability")
    stability.under_review = lambda *a, **k: (lambda obj: obj)
    for name in ("pl_bolts", "pl_bolts.utils"):
        m = types.ModuleType(name)
        m.__path__ = []
        sys.modules[name] = m
    sys.modules["pl_bolts.utils.stability"] = stability
    spec = importlib.util.spec_from_file_location("pl_bolts.optimizers.lr_scheduler", bolts / "optimizers/lr_scheduler.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    code.warmup_cosine = mod.LinearWarmupCosineAnnealingLR
    return code


# --------------------------------------------------------------------------------------------
# Fixtures.


def init_stats():
    """Per state_dict entry of fresh models: the rule PyTorch/torchvision initialise it with and
    the sample mean, std and max |x| of one draw."""
    torch.manual_seed(0)
    models = {
        "resnet18": cifar_resnet("resnet18"),
        "resnet50": cifar_resnet("resnet50"),
        "small-cnn": SmallCnn(),
        "probe": nn.Linear(512, 10),
    }
    for m in ["simclr", "byol", "vicreg", "barlow-twins", "nnclr"]:
        for head, module in method_heads(m, 512).items():
            models[f"{m}.{head}"] = module
    out = {}
    for model, module in models.items():
        entries = []
        for owner, m in module.named_modules():
            for leaf, t in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
                if not t.dtype.is_floating_point:
                    continue
                name = f"{owner}.{leaf}" if owner else leaf
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    rule = "const"  # γ = 1, β = 0, running mean 0, running var 1
                elif isinstance(m, nn.Conv2d) and model.startswith("resnet") and owner != "conv1":
                    rule = "kaiming_normal_fan_out"  # torchvision's ResNet.__init__
                else:
                    rule = "uniform_fan_in"  # nn.Linear / nn.Conv2d reset_parameters: U(±1/sqrt(fan_in))
                x = t.detach().double()
                entries.append(
                    {
                        "name": name,
                        "shape": list(t.shape),
                        "rule": rule,
                        "mean": x.mean().item(),
                        "std": x.std(unbiased=False).item(),
                        "max_abs": x.abs().max().item(),
                    }
                )
        out[model] = entries
    return out


def state_dict_listing(module):
    return [{"name": n, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")} for n, t in module.state_dict().items()]


def forward_fixtures():
    tensors = {}
    for model, module in [("small-cnn", SmallCnn()), ("resnet18", cifar_resnet("resnet18"))]:
        load_formula_weights(module, "backbone.")
        x = formula_values(f"{model}.input", (4, 3, 32, 32), -2.0, 2.0)
        module.train()
        with torch.no_grad():
            y_train = module(x)
        module.eval()
        with torch.no_grad():
            y_eval = module(x)
        tensors[f"{model}.input"] = x
        tensors[f"{model}.train_features"] = y_train.contiguous()
        tensors[f"{model}.eval_features"] = y_eval.contiguous()
        for name, t in module.state_dict().items():
            if name.endswith("running_mean") or name.endswith("running_var"):
                tensors[f"{model}.after_train.{name}"] = t.clone()
    return tensors


def loss_fixtures(code):
    g = torch.Generator().manual_seed(1)
    b, d = 32, 64
    t = {}

    def inputs(*names):
        xs = []
        for n in names:
            x = torch.randn(b, d, generator=g)
            t[n] = x.clone()
            xs.append(x.double().requires_grad_(True))
        return xs

    def record(prefix, loss, xs, names):
        loss.backward()
        t[f"{prefix}.loss"] = loss.detach().float().reshape(1)
        for x, n in zip(xs, names):
            t[f"{prefix}.grad.{n.split('.')[-1]}"] = x.grad.float()

    # SimCLR: z = [z1; z2], both views keyed by the anchor's index (simclr.py, gps branch).
    names = ["simclr.z1", "simclr.z2"]
    z1, z2 = inputs(*names)
    idx = torch.arange(b).repeat(2)
    record("simclr", code.simclr(torch.cat([z1, z2]), indexes=idx, temperature=0.2), [z1, z2], names)

    # BYOL: both directions summed (byol.py training_step); targets are detached.
    names = ["byol.p1", "byol.p2", "byol.zm1", "byol.zm2"]
    p1, p2, zm1, zm2 = inputs(*names)
    record("byol", code.byol(p2, zm1) + code.byol(p1, zm2), [p1, p2], names[:2])

    names = ["vicreg.z1", "vicreg.z2"]
    z1, z2 = inputs(*names)
    record("vicreg", code.vicreg(z1, z2, 25.0, 25.0, 1.0), [z1, z2], names)

    # Barlow Twins: its BatchNorm1d is float32, so this one runs in float32.
    names = ["barlow.z1", "barlow.z2"]
    z1, z2 = inputs(*names)
    z1f, z2f = z1.detach().float().requires_grad_(True), z2.detach().float().requires_grad_(True)
    record("barlow", code.barlow(z1f, z2f, lamb=0.0051, scale_loss=0.1), [z1f, z2f], names)

    # NNCLR: nearest neighbours of the normalised projections in a queue, then the loss
    # against the other view's prediction (nnclr.py training_step).
    queue = F.normalize(torch.randn(128, d, generator=g), dim=1)
    t["nnclr.queue"] = queue.clone()
    names = ["nnclr.z1", "nnclr.z2", "nnclr.p1", "nnclr.p2"]
    z1, z2, p1, p2 = inputs(*names)
    qd = queue.double()
    nn1 = qd[(F.normalize(z1.detach(), dim=-1) @ qd.T).max(dim=1)[1]]
    nn2 = qd[(F.normalize(z2.detach(), dim=-1) @ qd.T).max(dim=1)[1]]
    record("nnclr", code.nnclr(nn1, p2, temperature=0.2) / 2 + code.nnclr(nn2, p1, temperature=0.2) / 2, [p1, p2], names[2:])
    return t


def lars_fixtures(code):
    """Three steps of the authors' LARS (clip_lr, exclude_bias_n_norm, η 0.02, momentum 0.9) on
    two groups: a model group (wd 1e-4) and a classifier group (wd 0, its own lr), with a 2-D
    parameter whose gradient is zero (no LARS scaling then)."""
    g = torch.Generator().manual_seed(2)
    shapes = {"conv": (8, 3, 3, 3), "bias": (8,), "bn": (8,), "lin": (16, 8), "zero_grad": (4, 4), "cls_w": (10, 8), "cls_b": (10,)}
    params = {n: torch.nn.Parameter(torch.randn(*s, generator=g) * 0.5) for n, s in shapes.items()}
    t = {f"init.{n}": p.detach().clone() for n, p in params.items()}
    model = [params[n] for n in ["conv", "bias", "bn", "lin", "zero_grad"]]
    cls = [params["cls_w"], params["cls_b"]]
    opt = code.LARS(
        [{"params": model}, {"params": cls, "lr": 0.1, "weight_decay": 0.0}],
        lr=0.4,
        weight_decay=1e-4,
        momentum=0.9,
        eta=0.02,
        clip_lr=True,
        exclude_bias_n_norm=True,
    )
    lrs = [(0.4, 0.1), (0.2, 0.05), (0.35, 0.09)]
    for step, (lr, cls_lr) in enumerate(lrs):
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr, cls_lr
        for n, p in params.items():
            grad = torch.zeros(shapes[n]) if n == "zero_grad" else torch.randn(*shapes[n], generator=g) * (0.1 if step else 3.0)
            p.grad = grad
            t[f"step{step}.grad.{n}"] = grad.clone()
        opt.step()
        for n, p in params.items():
            t[f"step{step}.after.{n}"] = p.detach().clone()
    return t, {"lrs": lrs, "weight_decay": 1e-4, "momentum": 0.9, "eta": 0.02}


def schedule_fixture(code):
    """lr per optimizer step of solo-learn's warmup_cosine (pl_bolts, interval 'step',
    warmup_start_lr 3e-5, eta_min 0): warmup_epochs × steps per epoch warmup steps."""
    out = []
    for base, warmup_steps, total_steps in [(0.4, 50, 200), (1.0, 0, 30), (0.3, 39, 40)]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=base)
        start = 3e-5 if warmup_steps > 0 else base
        sched = code.warmup_cosine(opt, warmup_epochs=warmup_steps, max_epochs=total_steps, warmup_start_lr=start, eta_min=0.0)
        lrs = []
        for _ in range(total_steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.append({"base_lr": base, "warmup_steps": warmup_steps, "total_steps": total_steps, "lrs": lrs})
    return out


def test_images() -> torch.Tensor:
    """Two synthetic 32x32 RGB images: colour gradients, a disc, stripes and noise (uint8)."""
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    imgs = []
    for k in range(2):
        r = 0.5 + 0.5 * torch.sin(xx / (5 + k) + k)
        gch = yy / 31
        b = ((xx - 14 - 4 * k) ** 2 + (yy - 16) ** 2 < 60).float() * 0.8 + 0.1
        stripes = ((xx + yy).long() % (6 + k) < 2).float() * 0.3
        img = torch.stack([r, gch * (1 - stripes), b + stripes]).clamp(0, 1)
        img = (img + 0.08 * torch.randn(3, 32, 32, generator=g)).clamp(0, 1)
        imgs.append((img * 255).round().to(torch.uint8))
    return torch.stack(imgs)


def augment_fixtures():
    """Each op on fixed images with fixed parameters: torchvision's functional ops on float
    tensors, and for the ops the authors run through PIL (crop + bicubic resize, blur, solarise)
    the PIL result they get."""
    imgs = test_images()
    t = {"images": imgs}
    x = imgs.float() / 255
    pils = [TF.to_pil_image(im) for im in imgs]
    meta = {}
    meta["hue"] = [-0.2, -0.05, 0.1, 0.25, 0.5]
    for i, h in enumerate(meta["hue"]):
        t[f"hue.{i}"] = TF.adjust_hue(x, h)
    meta["saturation"] = [0.0, 0.2, 1.8]
    for i, f in enumerate(meta["saturation"]):
        t[f"saturation.{i}"] = TF.adjust_saturation(x, f)
    meta["brightness"] = [0.4, 1.6]
    for i, f in enumerate(meta["brightness"]):
        t[f"brightness.{i}"] = TF.adjust_brightness(x, f)
    meta["contrast"] = [0.3, 1.7]
    for i, f in enumerate(meta["contrast"]):
        t[f"contrast.{i}"] = TF.adjust_contrast(x, f)
    t["grayscale"] = TF.rgb_to_grayscale(x, num_output_channels=3)
    t["hflip"] = TF.hflip(x)
    t["solarize"] = torch.stack([TF.pil_to_tensor(ImageOps.solarize(p)) for p in pils])
    meta["blur_sigma"] = [0.1, 0.7, 1.3, 2.0]
    for i, s in enumerate(meta["blur_sigma"]):
        t[f"blur.{i}"] = torch.stack([TF.pil_to_tensor(p.filter(ImageFilter.GaussianBlur(radius=s))) for p in pils])
    # ColorJitter's ops in a fixed order with fixed factors (torchvision applies them in
    # fn_idx order): brightness 0, contrast 1, saturation 2, hue 3.
    meta["jitter"] = [{"order": [3, 0, 2, 1], "factors": [1.3, 0.6, 1.5, 0.12]}, {"order": [1, 3, 0, 2], "factors": [0.7, 1.4, 0.3, -0.08]}]
    for i, j in enumerate(meta["jitter"]):
        y = x.clone()
        for op in j["order"]:
            f = j["factors"][op]
            y = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue][op](y, f)
        t[f"jitter.{i}"] = y
    # RandomResizedCrop as the authors run it: crop (top, left, height, width), PIL bicubic
    # resize to 32x32 (torchvision's resized_crop on a PIL image).
    meta["crops"] = [[0, 0, 32, 32], [3, 5, 20, 27], [10, 2, 9, 6], [0, 12, 32, 17], [25, 25, 7, 7], [4, 0, 28, 24]]
    for i, (top, left, h, w) in enumerate(meta["crops"]):
        out = [TF.pil_to_tensor(TF.resized_crop(p, top, left, h, w, [32, 32], transforms.InterpolationMode.BICUBIC)) for p in pils]
        t[f"crop.{i}"] = torch.stack(out)
    # The prior's input resize (the authors' Resize((s, s), bicubic) through PIL), 32 -> 64.
    t["resize64"] = torch.stack([TF.pil_to_tensor(p.resize((64, 64), Image.BICUBIC)) for p in pils])
    return t, meta


def sampling_fixtures():
    """10,000 draws of torchvision's own samplers: RandomResizedCrop.get_params on a 32x32 image
    (scale 0.08-1 and 0.2-1, ratio 3/4-4/3) and ColorJitter's op order."""
    torch.manual_seed(4)
    img = torch.zeros(3, 32, 32)
    t = {}
    for name, scale in [("rrc_008", (0.08, 1.0)), ("rrc_02", (0.2, 1.0))]:
        rows = [transforms.RandomResizedCrop.get_params(img, scale=scale, ratio=(3 / 4, 4 / 3)) for _ in range(10_000)]
        t[name] = torch.tensor(rows, dtype=torch.int32)
    b, c, s, h = (0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)
    orders = [transforms.ColorJitter.get_params(b, c, s, h)[0] for _ in range(10_000)]
    t["jitter_order"] = torch.stack(orders).to(torch.int32)
    return t


def train_step_fixture(code):
    """One GPS-SimCLR training step the way solo-learn runs it (solo/methods/base.py and
    simclr.py): each view through the backbone and projector on its own (per-view BN batch
    statistics), the probe on each view's detached features with that view's label (losses
    averaged), NT-Xent with both views keyed by the anchor, then LARS."""
    backbone, projector, classifier = SmallCnn(), method_heads("simclr", 256)["projector"], nn.Linear(256, 10)
    load_formula_weights(backbone, "backbone.")
    load_formula_weights(projector, "method.projector.")
    load_formula_weights(classifier, "probe.")
    g = torch.Generator().manual_seed(5)
    b = 16
    x1, x2 = torch.randn(b, 3, 32, 32, generator=g), torch.randn(b, 3, 32, 32, generator=g)
    y1, y2 = torch.randint(0, 10, (b,), generator=g), torch.randint(0, 10, (b,), generator=g)
    t = {"x1": x1, "x2": x2, "y1": y1, "y2": y2}
    for m in (backbone, projector, classifier):
        m.train()
    zs, class_losses = [], []
    for x, y in [(x1, y1), (x2, y2)]:
        feats = backbone(x)
        logits = classifier(feats.detach())
        class_losses.append(F.cross_entropy(logits, y))
        zs.append(projector(feats))
    class_loss = sum(class_losses) / 2
    nce = code.simclr(torch.cat(zs), indexes=torch.arange(b).repeat(2), temperature=0.2)
    (nce + class_loss).backward()
    t["nce_loss"] = nce.detach().reshape(1)
    t["class_loss"] = class_loss.detach().reshape(1)
    groups = [
        {"params": list(backbone.parameters()) + list(projector.parameters())},
        {"params": list(classifier.parameters()), "lr": 0.1, "weight_decay": 0.0},
    ]
    opt = code.LARS(groups, lr=0.4, weight_decay=1e-4, momentum=0.9, eta=0.02, clip_lr=True, exclude_bias_n_norm=True)
    opt.step()
    # Parameters: the update Δ = after − before (before is the formula), which a parameter's
    # own value would drown: its norm, sum, and 16 entries spread over the tensor.
    for prefix, m in [("backbone.", backbone), ("method.projector.", projector), ("probe.", classifier)]:
        for name, v in m.state_dict().items():
            if not v.dtype.is_floating_point:
                continue
            full = prefix + name
            if "running" in name:
                t[f"after.{full}"] = v.clone()
                continue
            lo, hi = formula_range(name, tuple(v.shape))
            delta = (v.detach().double() - formula_values(full, tuple(v.shape), lo, hi).double()).flatten()
            picks = torch.linspace(0, delta.numel() - 1, 16, dtype=torch.float64).round().long()
            t[f"update.{full}.norm"] = delta.norm().float().reshape(1)
            t[f"update.{full}.sum"] = delta.sum().float().reshape(1)
            t[f"update.{full}.picks"] = delta[picks].float().clone()
    return t


CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def no_transform(images: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """The authors' prior input (`build_no_transform`, solo/data/pretrain_dataloader.py): PIL
    image -> Resize((size, size), BICUBIC) -> ToTensor -> Normalize(mean, std)."""
    pipeline = transforms.Compose(
        [transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BICUBIC), transforms.ToTensor(), transforms.Normalize(mean, std)]
    )
    return torch.stack([pipeline(TF.to_pil_image(img)) for img in images])


def prior_fixtures():
    """The ImageNet ResNet-50 prior (solo/emb_methods/resnet.py): torchvision's resnet50 with its
    ImageNet stem, fc = Identity, eval mode, fp32, formula weights (seeded by `prior.<name>`),
    on the authors' prior input: CIFAR-sized images at 32 px with CIFAR statistics (no upsampling),
    the same resized to 48 px with ImageNet statistics, and one-channel 28 px images normalised
    with ImageNet's averaged statistics, then repeated to three channels (misc.py:567-568 of the
    development code)."""
    net = torchvision.models.resnet50()
    net.fc = nn.Identity()
    load_formula_weights(net, "prior.")
    net.eval()
    rgb = test_images()
    grey = (formula_values("prior.grey.input", (2, 1, 28, 28), 0.0, 1.0) * 255).round().to(torch.uint8)
    one_dim = (sum(IMAGENET_STATS[0]) / 3,), (sum(IMAGENET_STATS[1]) / 3,)
    t = {"rgb.images": rgb, "grey.images": grey}
    with torch.no_grad():
        t["cifar32.features"] = net(no_transform(rgb, 32, *CIFAR_STATS))
        t["imagenet48.features"] = net(no_transform(rgb, 48, *IMAGENET_STATS))
        t["grey28.features"] = net(no_transform(grey, 28, *one_dim).repeat(1, 3, 1, 1))
    return t


def pth_fixtures(out: Path):
    """A small state dict as torch.save writes it (a zip), with what a reader must get right: a
    float16 and a float64 tensor, an int64 scalar (num_batches_tracked), a transposed view
    (strides) and a slice sharing another tensor's storage (an offset). Also the same dict in the
    legacy (pre-1.6) format, which gps refuses with the conversion command."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7
    state = collections.OrderedDict(
        [
            ("conv.weight", base),
            ("conv.weight_t", base.t()),
            ("conv.tail", base.view(-1)[5:9]),
            ("bn.running_var", torch.tensor([1.5, 0.25], dtype=torch.float16)),
            ("bn.num_batches_tracked", torch.tensor(7)),
            ("fc.bias", torch.tensor([-1.0, 2.5], dtype=torch.float64)),
        ]
    )
    torch.save(state, out / "tiny_state_dict.pth")
    torch.save(state, out / "tiny_state_dict_legacy.pth", _use_new_zipfile_serialization=False)
    return {f"pth.{k}": v.clone().contiguous() for k, v in state.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solo", type=Path, help="a checkout of aarashfeizi/gps-ssl (the authors' solo-learn fork)")
    ap.add_argument("--only", choices=["priors"], help="write only these fixtures (priors: no --solo needed)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/parity")
    args = ap.parse_args()
    assert torch.__version__.startswith("2.11.0"), f"the fixtures are of torch 2.11.0, this is {torch.__version__}"
    torch.set_num_threads(1)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    def save(name, tensors):
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / name))

    save("priors.safetensors", {**prior_fixtures(), **pth_fixtures(out)})
    if args.only == "priors":
        return
    if args.solo is None:
        ap.error("--solo is needed for every fixture but the priors'")
    code = load_authors_code(args.solo)

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": Image.__version__, "solo": str(args.solo.name)}
    (out / "init_stats.json").write_text(json.dumps({"versions": versions, "models": init_stats()}, indent=1))
    (out / "resnet18_state_dict.json").write_text(json.dumps(state_dict_listing(cifar_resnet("resnet18")), indent=1))
    (out / "resnet50_state_dict.json").write_text(json.dumps(state_dict_listing(cifar_resnet("resnet50")), indent=1))
    save("forward.safetensors", forward_fixtures())
    save("losses.safetensors", loss_fixtures(code))
    lars, lars_meta = lars_fixtures(code)
    save("lars.safetensors", lars)
    aug, aug_meta = augment_fixtures()
    save("augment_ops.safetensors", aug)
    save("aug_sampling.safetensors", sampling_fixtures())
    save("train_step.safetensors", train_step_fixture(code))
    meta = {"versions": versions, "lars": lars_meta, "schedule": schedule_fixture(code), "augment": aug_meta}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    for f in sorted(out.iterdir()):
        print(f"{f.stat().st_size:>9}  {f}")


if __name__ == "__main__":
    main()
