#!/usr/bin/env python3
"""Fixtures for several positives per anchor (the authors' `data.num_nns` = m > 1): their SimCLR
loss over 1 + m views and BYOL's sum over view pairs, with gradients, in float64.

The two functions below transcribe, operation for operation, the authors' code at
aarashfeizi/gps-ssl 357e64b:
  - `solo/losses/simclr.py:41-58` (`simclr_loss_func`) with every view keyed by its anchor's index,
    as `solo/methods/simclr.py:150-161` calls it under GPS (`indexes[0].repeat(n_augs)`);
  - `solo/methods/byol.py:196-198`, the double loop summing `byol_loss_func(P[v2], Z_momentum[v1])`
    (`solo/losses/byol.py`, simplified: 2 - 2 cos) over every view v1 and every other view v2.
numpy only (no torch: this runs where torch's wheel cannot be imported); the gradients are central
differences in float64, accurate to about 1e-8 relative. Written to
tests/fixtures/parity/multi_positive.safetensors; tests/it/parity.rs compares gps's losses and their
autograd gradients with them.

    python3 -m pip install numpy safetensors
    python3 scripts/parity/multi_positive_fixtures.py
"""

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def normalize(z):
    return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def simclr_loss_func(z, indexes, temperature):
    z = normalize(z)
    sim = np.exp(z @ z.T / temperature)
    pos_mask = indexes[:, None] == indexes[None, :]
    np.fill_diagonal(pos_mask, False)
    neg_mask = indexes[:, None] != indexes[None, :]
    pos = np.sum(sim * pos_mask, 1)
    neg = np.sum(sim * neg_mask, 1)
    return -np.mean(np.log(pos / (pos + neg)))


def byol_loss_func(p, z):
    cos = np.sum(normalize(p) * normalize(z), axis=-1)
    return 2 - 2 * np.mean(cos)


def byol_views(ps, zms):
    total = 0.0
    for v1 in range(len(zms)):
        for v2 in np.delete(np.arange(len(ps)), v1):
            total += byol_loss_func(ps[v2], zms[v1])
    return total


def gradient(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def main():
    rng = np.random.default_rng(7)
    b, d, views = 8, 16, 3  # m = 2 positives: 1 + 2 views
    t = {}
    zs = [rng.standard_normal((b, d)) for _ in range(views)]
    indexes = np.tile(np.arange(b), views)
    simclr = lambda: simclr_loss_func(np.concatenate(zs), indexes, 0.2)  # noqa: E731
    t["simclr.loss"] = np.array([simclr()])
    for v, z in enumerate(zs):
        t[f"simclr.z{v}"] = z.copy()
        t[f"simclr.grad.z{v}"] = gradient(simclr, z)

    ps = [rng.standard_normal((b, d)) for _ in range(views)]
    zms = [rng.standard_normal((b, d)) for _ in range(views)]
    byol = lambda: byol_views(ps, zms)  # noqa: E731
    t["byol.loss"] = np.array([byol()])
    for v in range(views):
        t[f"byol.p{v}"], t[f"byol.zm{v}"] = ps[v].copy(), zms[v].copy()
        t[f"byol.grad.p{v}"] = gradient(byol, ps[v])
    out = Path(__file__).resolve().parents[2] / "tests/fixtures/parity/multi_positive.safetensors"
    save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in t.items()}, str(out))
    print(f"wrote {out}: SimCLR {t['simclr.loss'][0]:.6f}, BYOL {t['byol.loss'][0]:.6f} over {views} views of {b}")


if __name__ == "__main__":
    main()
