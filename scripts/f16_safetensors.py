#!/usr/bin/env python3
"""Copy a safetensors file with its F32 tensors stored as F16 (standard library only).

  python3 scripts/f16_safetensors.py IN.safetensors OUT.safetensors

Why: scripts/gpu-pack.sh must fit all-MiniLM-L6-v2 (90.9 MB in f32) into the
device call's 64 MiB. Training casts every tensor it loads to f32, so an f16
copy is the same model to within f16's rounding (a relative 2^-11), and
sentence-transformers loads it the same way. Other dtypes are copied as they
are. The header is checked against the file before anything is read.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array


def convert(src: str, dst: str) -> tuple[int, int]:
    with open(src, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{src}: {len(blob)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{src}: header of {n} bytes in a {len(blob)}-byte file")
    header = json.loads(blob[8 : 8 + n])
    data = memoryview(blob)[8 + n :]
    out_header, chunks, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out_header[name] = info
            continue
        start, end = info["data_offsets"]
        if not 0 <= start <= end <= len(data):
            raise ValueError(f"{src}: tensor {name} lies outside the file ({start}..{end})")
        raw = data[start:end]
        dtype = info["dtype"]
        if dtype == "F32":
            values = array("f")
            values.frombytes(raw)
            if sys.byteorder != "little":
                values.byteswap()
            raw = struct.pack(f"<{len(values)}e", *values)
            dtype = "F16"
        out_header[name] = {"dtype": dtype, "shape": info["shape"], "data_offsets": [offset, offset + len(raw)]}
        chunks.append(bytes(raw))
        offset += len(raw)
    head = json.dumps(out_header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for c in chunks:
            f.write(c)
    return len(blob), 8 + len(head) + offset


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        before, after = convert(argv[0], argv[1])
    except (OSError, ValueError, KeyError, OverflowError, struct.error, json.JSONDecodeError) as e:
        print(f"f16_safetensors: {e}", file=sys.stderr)
        return 2
    print(f"{argv[1]}: {after} bytes (from {before})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
