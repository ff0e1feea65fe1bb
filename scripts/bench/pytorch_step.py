#!/usr/bin/env python3
"""The PyTorch reference for `gps bench train --compare-pytorch`: a plain PyTorch loop of the same
GPS-SimCLR step `gps` runs (solo-learn's structure): each view through the backbone and the
2048-2048-256 projector on its own, NT-Xent (T = 0.2) with both views keyed by the anchor, the
online linear probe on each view's detached features, LARS (η 0.02, clipped, biases and norms
excluded) or SGD, flip augmentation on the device from uint8 images. The same data shapes and
batch as the run spec; random pixels (the speed of a step does not depend on their values).

Prints one line: `samples/s <anchors per second>` (after `--warmup` untimed steps).
Usage: python3 scripts/bench/pytorch_step.py --backbone small-cnn --batch 128 --steps 30
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class SmallCnn(nn.Module):
    """gps's small CNN (src/model/small_cnn.rs)."""

    def __init__(self, c=3):
        super().__init__()
        layers = []
        for i, w in enumerate([32, 64, 128, 256]):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*layers)
        self.out_dim = 256

    def forward(self, x):
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)


def cifar_resnet(kind):
    net = getattr(torchvision.models, kind)()
    net.out_dim = net.fc.in_features
    net.fc = nn.Identity()
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 2, bias=False)
    net.maxpool = nn.Identity()
    return net


def lars_step(groups, momentum=0.9, eta=0.02, eps=1e-8):
    """LARS as the authors' solo-learn runs it (clip_lr, exclude_bias_n_norm)."""
    with torch.no_grad():
        for g in groups:
            lr, wd = g["lr"], g["wd"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim != 1:
                    pn, gn = torch.norm(p), torch.norm(d)
                    if pn != 0 and gn != 0:
                        r = torch.clamp(eta * pn / (gn + wd * pn + eps) / lr, max=1.0)
                        d = (d + wd * p) * r
                buf = g["bufs"].get(p)
                if buf is None:
                    buf = g["bufs"][p] = d.clone()
                else:
                    buf.mul_(momentum).add_(d)
                p.add_(buf, alpha=-lr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="small-cnn", choices=["small-cnn", "resnet18", "resnet50"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--optimizer", default="lars", choices=["lars", "sgd"])
    ap.add_argument("--flip", type=float, default=0.5, help="horizontal flip probability (0: no augmentation)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True

    backbone = SmallCnn(args.channels) if args.backbone == "small-cnn" else cifar_resnet(args.backbone)
    f = backbone.out_dim
    projector = nn.Sequential(
        nn.Linear(f, 2048), nn.BatchNorm1d(2048), nn.ReLU(),
        nn.Linear(2048, 2048), nn.BatchNorm1d(2048), nn.ReLU(),
        nn.Linear(2048, 256), nn.BatchNorm1d(256),
    )
    probe = nn.Linear(f, args.classes)
    for m in (backbone, projector, probe):
        m.to(dev)
        if args.channels_last:
            m.to(memory_format=torch.channels_last)
    model_params = list(backbone.parameters()) + list(projector.parameters())
    lr = 0.4 * args.batch / 256
    if args.optimizer == "lars":
        groups = [{"params": model_params, "lr": lr, "wd": 1e-4, "bufs": {}}, {"params": list(probe.parameters()), "lr": 0.1 * args.batch / 256, "wd": 0.0, "bufs": {}}]
        opt = None
    else:
        opt = torch.optim.SGD([{"params": model_params}, {"params": probe.parameters(), "lr": 0.1 * args.batch / 256, "weight_decay": 0.0}], lr=lr, momentum=0.9, weight_decay=1e-4)

    n = 4096
    data = torch.randint(0, 256, (n, args.channels, args.size, args.size), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, args.classes, (n,), device=dev)
    mean = torch.full((1, args.channels, 1, 1), 0.48, device=dev)
    std = torch.full((1, args.channels, 1, 1), 0.25, device=dev)
    b = args.batch

    def view(idx):
        x = data[idx].float().div_(255)
        if args.flip > 0:
            flip = torch.rand(b, device=dev) < args.flip
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if args.channels_last else x

    def step():
        anchors = torch.randint(0, n, (b,), device=dev)
        positives = torch.randint(0, n, (b,), device=dev)
        x1, x2 = view(anchors), view(positives)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=args.bf16):
            zs, probe_losses = [], []
            for x, y in [(x1, labels[anchors]), (x2, labels[positives])]:
                feats = backbone(x)
                probe_losses.append(F.cross_entropy(probe(feats.detach()).float(), y))
                zs.append(projector(feats))
        z = F.normalize(torch.cat(zs).float(), dim=-1)
        sim = z @ z.t() / 0.2
        sim.fill_diagonal_(float("-inf"))
        target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(dev)
        loss = F.cross_entropy(sim, target) + sum(probe_losses) / 2
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            for g in groups:
                for p in g["params"]:
                    p.grad = None
            loss.backward()
            lars_step(groups)
        return loss

    for _ in range(args.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    print(f"samples/s {args.steps * b / (time.perf_counter() - t):.1f} torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)


if __name__ == "__main__":
    main()
