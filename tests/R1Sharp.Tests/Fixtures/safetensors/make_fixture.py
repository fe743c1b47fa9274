#!/usr/bin/env python3
"""Writes reference.safetensors by the spec alone (stdlib struct + json), as an independent check of R1Sharp's
reader and writer. No numpy/torch/safetensors needed. Layout as Hugging Face writes it:
8-byte little-endian header length, compact JSON header with __metadata__ first, padded with spaces to a
multiple of 8, then the tensors' little-endian bytes back to back in header order.

Values are chosen to catch lossy paths: -0.0, infinities, subnormals and NaN with a payload.
The expected values are repeated literally in SafetensorsFixtureTests.cs.

Run: python3 make_fixture.py  (rewrites reference.safetensors beside this script)
"""
import json
import math
import os
import struct


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def bits(fmt, values):
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def bf16(values):
    # bfloat16 is the top half of a float32; these values are exact in bfloat16.
    out = b""
    for v in values:
        (u,) = struct.unpack("<I", struct.pack("<f", v))
        assert u & 0xFFFF == 0, v
        out += struct.pack("<H", u >> 16)
    return out


TENSORS = [
    # name, dtype, shape, bytes
    ("f32", "F32", [2, 3], f32([1.5, -0.0, math.inf, -math.inf, 1e-45]) + bits("I", [0x7FC00001])),
    ("bf16", "BF16", [2, 3], bf16([1.0, -2.5, -0.0]) + bits("H", [0x0001, 0x7FC1, 0xFF80])),
    ("f16", "F16", [3], struct.pack("<3e", 0.5, -65504.0, 2.0**-24)),
    ("f64", "F64", [2], struct.pack("<2d", math.pi, -1e300)),
    ("i64", "I64", [2], struct.pack("<2q", -1, 2**40 + 3)),
    ("i32", "I32", [2], struct.pack("<2i", -7, 2**31 - 1)),
    ("i16", "I16", [2], struct.pack("<2h", -32768, 12345)),
    ("i8", "I8", [2], struct.pack("<2b", -128, 127)),
    ("u8", "U8", [4], bytes([0, 1, 127, 255])),
    ("bool", "BOOL", [3], bytes([1, 0, 1])),
    ("scalar", "F32", [], f32([42.0])),
    ("empty", "F32", [0, 3], b""),
]
METADATA = {"format": "pt", "source": "make_fixture.py"}


def main():
    header = {"__metadata__": METADATA}
    offset = 0
    for name, dtype, shape, data in TENSORS:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, data in TENSORS:
            f.write(data)
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
