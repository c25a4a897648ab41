#!/usr/bin/env python3
"""Captures of cmd/go's defers against the compiler's -m=2 (issue 14).

    scripts/captures-cmdgo.py [--versions 1.22.10,1.27.3] [--sample N]

For each version: `deferscope explain --format json` on the matrix's
linux/amd64 (or --goarch arm64) cmd/go, counts of sites with captures by reference, with
rewritten results and with captures moved to the heap; then cmd/go is built
again from the same GOROOT with `-gcflags=cmd/go/...=-m=2` (code generation
is the same: -m only prints), and a sample of sites is compared with the
compiler's `F capturing by value|ref: x (... width=N)` lines. -m=2 names
the enclosing function, not the closure, so the sites compared are those
of cmd/go's own packages whose function's -m=2 capture lines add up to
our captures' bytes over all its sites (a reference counted as 8), so
that no closure other than the deferred ones captures anything; wrapper
sites (`defer f(x)`: the compiler's .autotmp captures) are included.
In line order, mode must agree, a value's width must equal our bytes (or
the sum of consecutive inexact words), a reference is 8 bytes, and a name
we give must be the compiler's. --sample N stops after N sites per
version (0: all).

Needs the matrix (scripts/build-matrix.py) and target/release/deferscope.
Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
LINE = re.compile(r"^(\S+?):(\d+):\d+: (\S+) capturing by (value|ref): (\S+) \(.*width=(\d+)\)")


def m2_lines(version: str, goarch: str) -> dict[tuple[str, str], list[tuple[str, bool, int]]]:
    """(package dir's file base, short function) -> [(name, by_ref, width)]."""
    goroot = CACHE / "toolchains" / f"go{version}" / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
    env.update(GOROOT=str(goroot), GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOPROXY="off",
               CGO_ENABLED="0", GOOS="linux", GOARCH=goarch,
               GOCACHE=str(CACHE / "gocache" / f"go{version}-cmdgo-m2"))
    p = subprocess.run([str(goroot / "bin/go"), "build", "-gcflags=cmd/go/...=-m=2", "-o",
                        os.devnull, "cmd/go"], cwd=goroot / "src/cmd/go", env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"go{version}: go build -m=2 failed: {p.stderr[-2000:]}")
    out: dict[tuple[str, str], list] = defaultdict(list)
    for l in p.stderr.splitlines():
        m = LINE.match(l)
        if m:
            f, _, func, mode, name, width = m.groups()
            out[(Path(f).name, func)].append((name, mode == "ref", int(width)))
    return out


def short(func: str) -> str:
    """cmd/go/internal/work.(*Builder).Do -> (*Builder).Do"""
    last = func.rsplit("/", 1)[-1]
    return last.split(".", 1)[1] if "." in last else last


def agree(ours: list[dict], theirs: list[tuple[str, bool, int]]) -> str | None:
    i = 0
    for name, by_ref, width in theirs:
        if i >= len(ours):
            return f"missing {name}"
        o = ours[i]
        if o.get("name") and o["name"] != name:
            return f"named {o['name']}, compiler {name}"
        if by_ref:
            if o["mode"] != "ref" or o["bytes"] != 8:
                return f"{name} by ref, ours {o['mode']} {o['bytes']}"
            i += 1
            continue
        total = 0
        while total < width and i < len(ours):
            o = ours[i]
            if o["mode"] != "value" or (o["exact"] and total > 0):
                return f"{name} by value {width}, ours {ours}"
            total += o["bytes"]
            i += 1
            if o["exact"]:
                break
        if total != width:
            return f"{name} {width} bytes, ours {total}"
    return None if i == len(ours) else "more captures than the compiler"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", default="1.22.10,1.27.3")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--goarch", default="amd64", choices=["amd64", "arm64"])
    a = ap.parse_args()
    bin_ = Path(os.environ.get("DEFERSCOPE_BIN") or REPO / "target/release/deferscope")
    bad = 0
    for v in a.versions.split(","):
        cmdgo = CACHE / "matrix" / f"go{v}" / f"linux-{a.goarch}/default/cmdgo/bin"
        d = json.loads(subprocess.run([str(bin_), "explain", "--format", "json", str(cmdgo)],
                                      capture_output=True, text=True, check=True).stdout)
        sites = d["sites"]
        caps = lambda s: s.get("captures") or []
        print(f"go{v} cmd/go: {len(sites)} sites; by reference {sum(any(c['mode'] == 'ref' for c in caps(s)) for s in sites)}, "
              f"results rewritten {sum(bool(s.get('writes_results')) for s in sites)}, "
              f"moved to heap {sum(any(c.get('moved_to_heap') for c in caps(s)) for s in sites)}, "
              f"target unresolved {sum(s.get('deferred_target') is None and not s.get('deferred_indirect') and not s.get('deferred_elided') for s in sites)}")
        m2 = m2_lines(v, a.goarch)
        by_func: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for s in sites:
            if s["function"].startswith("cmd/go/"):
                by_func[(Path(s["file"]).name, short(s["function"]))].append(s)
        checked = 0
        for key in sorted(by_func):
            ss = by_func[key]
            ours = [c for s in sorted(ss, key=lambda s: s["line"]) for c in caps(s)]
            theirs = m2.get(key, [])
            # One deferred closure, and no other closure of the function
            # captures anything: the compiler's lines then add up to ours.
            if not ours or not theirs:
                continue
            if sum(8 if r else w for _, r, w in theirs) != sum(c["bytes"] for c in ours):
                continue
            why = agree(ours, theirs)
            print(f"  {'ok ' if why is None else 'BAD'} {key[1]} ({key[0]}:{ss[0]['line']}): "
                  f"{[(t[0], 'ref' if t[1] else 'value', t[2]) for t in theirs]}" + (f" -- {why}" if why else ""))
            bad += why is not None
            checked += 1
            if checked == a.sample:
                break
        print(f"go{v}: {checked} sites compared with -m=2")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
