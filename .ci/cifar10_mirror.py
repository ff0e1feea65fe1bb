#!/usr/bin/env python3
"""A stand-in for the CIFAR-10 download host, for CI machines that cannot reach it.

The tests read CIFAR-10 where a user gets it: `gps data download cifar10` fetches the official
binary release (cifar-10-binary.tar.gz) from www.cs.toronto.edu. CI machines here reach only the
package registries, but hold a JPEG copy of the same 60,000 images (an ImageFolder zip). This
script writes that copy as an archive in the official layout (cifar-10-batches-bin/
data_batch_1..5.bin, test_batch.bin, batches.meta.txt: 3,073-byte records, label then R, G, B
planes; each batch balanced across classes as the release's are) and prints its MD5, so that CI
serves it from loopback and runs the user's own download path (`--url`, `--md5`), checksum,
extraction and validation included. The pixels are the JPEG copy's, not the release's (lossy:
mean absolute error 5-7/255); the tests assert behaviour, not the release's exact bytes.

usage: cifar10_mirror.py <cifar10-jpg.zip> <out.tar.gz>
"""

import gzip
import hashlib
import io
import sys
import tarfile
import time
import zipfile

from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def records(zf, split):
    """The split's images per class, in file order: {class index: [3073-byte record]}."""
    per_class = {c: [] for c in range(len(CLASSES))}
    names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")) and f"{split}/" in n)
    for name in names:
        parts = name.split("/")
        c = CLASSES.index(parts[parts.index(split) + 1])
        img = Image.open(io.BytesIO(zf.read(name))).convert("RGB")
        if img.size != (32, 32):
            sys.exit(f"{name}: {img.size}, expected 32x32")
        planes = b"".join(img.getchannel(ch).tobytes() for ch in range(3))
        per_class[c].append(bytes([c]) + planes)
    return per_class


def interleave(per_class):
    """Class-interleaved order (0, 1, ..., 9, 0, 1, ...): every 10,000-record batch is balanced."""
    out = []
    for i in range(max(len(v) for v in per_class.values())):
        for c in range(len(CLASSES)):
            if i < len(per_class[c]):
                out.append(per_class[c][i])
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    started = time.time()
    with zipfile.ZipFile(src) as zf:
        train, test = interleave(records(zf, "train")), interleave(records(zf, "test"))
    if len(train) != 50_000 or len(test) != 10_000:
        sys.exit(f"{src}: {len(train)} training and {len(test)} test images, expected 50000 and 10000")
    files = {f"data_batch_{b + 1}.bin": b"".join(train[b * 10_000 : (b + 1) * 10_000]) for b in range(5)}
    files["test_batch.bin"] = b"".join(test)
    files["batches.meta.txt"] = ("\n".join(CLASSES) + "\n\n").encode()
    # Fixed timestamps (gzip header and members): the same copy gives the same archive and MD5.
    with open(dst, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    md5 = hashlib.md5()
    with open(dst, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
    print(md5.hexdigest())
    print(f"cifar10_mirror: wrote {dst} in {time.time() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
