#!/usr/bin/env python3
"""Generate a big pprof profile of a real binary, for scripts/bench.py.

    scripts/gen-profile.py [--go-version 1.22.10] [--samples 1000000] [--labels 8]

Builds fixtures/go/profile/workloads with the given toolchain, runs it
briefly in CPU mode for a real profile of itself (its mappings, locations,
functions and stacks), and writes, under ~/.cache/deferscope/bench/:

- `workloads-go<V>`: the binary;
- `big-go<V>.pprof`: the real profile's tables and --samples samples, each
  one of the real stacks with random values and --labels numeric labels
  (as continuous profilers attach), uncompressed (about 100 bytes per
  sample: 10^6 samples make about 100 MB);
- `big-go<V>.pprof.gz`: the same, gzipped, as runtime/pprof writes.

Prints the three paths. Nothing is committed: the files are made again
when missing. The protobuf is written by hand (field numbers of
google/pprof's profile.proto); the real profile's other fields are copied
as they are.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")


def varint(v: int) -> bytes:
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(b: bytes, i: int) -> tuple[int, int]:
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b: bytes):
    """(field, wire type, value or bytes, raw bytes of the whole field)."""
    i = 0
    while i < len(b):
        start = i
        key, i = read_varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v = b[i:i + n]
            i += n
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        yield f, wt, v, b[start:i]


def packed(v) -> list[int]:
    if isinstance(v, int):
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = read_varint(v, i)
        out.append(x)
    return out


def field_bytes(f: int, payload: bytes) -> bytes:
    return varint(f << 3 | 2) + varint(len(payload)) + payload


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go-version", default="1.22.10")
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--labels", type=int, default=8)
    a = ap.parse_args()
    out_dir = CACHE / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    gr = CACHE / "toolchains" / f"go{a.go_version}" / "go"
    binp = out_dir / f"workloads-go{a.go_version}"
    src = REPO / "fixtures/go/profile/workloads"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GOROOT=str(gr), GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOPROXY="off",
               GOCACHE=str(CACHE / "gocache" / f"go{a.go_version}-profile"), CGO_ENABLED="0")
    subprocess.run([str(gr / "bin/go"), "build", "-o", str(binp), "."], cwd=src, env=env, check=True)
    with tempfile.TemporaryDirectory() as t:
        subprocess.run([str(binp), "-out", t, "-dur", "400ms", "-rounds", "1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The panic workload has the most varied stacks.
        base = gzip.decompress(Path(t, "panic.pprof").read_bytes())
    keep, stacks, nstrings = [], [], 0
    for f, wt, v, raw in fields(base):
        if f == 2:
            locs = []
            for g, _, x, _ in fields(v):
                if g == 1:
                    locs += packed(x)
            stacks.append(field_bytes(1, b"".join(varint(x) for x in locs)))
        else:
            keep.append(raw)
            if f == 6:
                nstrings += 1
    keys = [f"label{i}" for i in range(a.labels)]
    key_ids = list(range(nstrings, nstrings + len(keys)))
    rnd = random.Random(1)
    parts = keep + [field_bytes(6, k.encode()) for k in keys]
    for _ in range(a.samples):
        n = rnd.randrange(1, 20)
        vals = field_bytes(2, varint(n) + varint(n * 10_000_000))
        labs = b"".join(
            field_bytes(3, b"\x08" + varint(k) + b"\x18" + varint(rnd.getrandbits(32)))
            for k in key_ids)
        parts.append(field_bytes(2, rnd.choice(stacks) + vals + labs))
    data = b"".join(parts)
    raw_path = out_dir / f"big-go{a.go_version}.pprof"
    raw_path.write_bytes(data)
    gz_path = out_dir / f"big-go{a.go_version}.pprof.gz"
    gz_path.write_bytes(gzip.compress(data, compresslevel=1))
    print(binp)
    print(raw_path)
    print(gz_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
