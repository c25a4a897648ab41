#!/usr/bin/env python3
"""Compare `deferscope disasm` with `go tool objdump`, instruction by instruction.

    scripts/disasm-vs-objdump.py [--matrix DIR] [--bin PATH] [--filter SUBSTR]
                                 [--examples N] [--deferscope PATH]

For every fixture binary in the matrix (default ~/.cache/deferscope/matrix,
entries with bin + meta.json; stripped ones are skipped, objdump needs
symbols) it runs the entry's own toolchain's objdump
(`GOROOT=<goroot> <goroot>/bin/go tool objdump bin`) and
`deferscope disasm --no-annotate bin`, and compares, by PC, the file:line
column and the instruction text. Per (Go version, arch) it prints:

- identical: objdump's line and ours are the same, as a percentage of the
  lines where objdump decoded something (`better` lines are left out of the
  denominator and counted on their own);
- better: objdump printed `?` (an instruction its decoder does not know),
  or a PC that is inside one of our instructions (objdump lost sync after
  a `?`);
- the remaining differences, grouped by objdump's mnemonic, with examples.

Only the standard library is used. Needs a release build of deferscope
(`cargo build --release`; CARGO_TARGET_DIR is honoured).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")


def parse(text: str) -> dict[int, tuple[str, str, int]]:
    """pc -> (file:line, instruction, size, hex bytes) from objdump-format text."""
    out: dict[int, tuple[str, str, int]] = {}
    for line in text.splitlines():
        if not line.startswith("  "):
            continue
        cells = [c for c in line.split("\t") if c != ""]
        if len(cells) < 4:
            continue
        try:
            pc = int(cells[1], 16)
        except ValueError:
            continue
        hexb = cells[2].replace(" ", "")
        ins = cells[3]
        if ins.startswith("//"):
            ins = ""
        out[pc] = (cells[0].strip(), ins, len(hexb) // 2, hexb)
    return out


def entries(root: Path):
    for meta in sorted(root.rglob("meta.json")):
        d = meta.parent
        if not (d / "bin").is_file():
            continue
        try:
            m = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        yield d, m


def misdecoded_vex(hexb: str, ins: str) -> bool:
    """objdump before go1.27 reads an unknown VEX instruction's opcode as a
    legacy one (c5 .. 74 .. as JE): a VEX/EVEX prefix with a non-V mnemonic."""
    b = hexb.lstrip()
    while b[:2] in ("66", "f2", "f3", "2e", "3e", "26", "36", "64", "65", "67", "f0"):
        b = b[2:]
    return b[:2] in ("c4", "c5", "62") and not ins.startswith("V") and ins != "?"


def category(ob: str) -> str:
    return ob.split(" ")[0] if ob else "(empty)"


def compare(od: dict, ours: dict):
    """Counts and difference examples for one binary."""
    c = Counter()
    diffs = defaultdict(list)
    # Our instruction extents, to tell objdump's desynchronised PCs.
    starts = sorted(ours)
    covered = set()
    for pc in starts:
        n = ours[pc][2]
        for k in range(1, n):
            covered.add(pc + k)
    for pc, (pos, ins, _, hexb) in od.items():
        c["total"] += 1
        both_unknown = ins == "?" and pc in ours and ours[pc][1] == "?"
        if not both_unknown and (ins == "?" or (pc not in ours and pc in covered) or misdecoded_vex(hexb, ins)):
            c["better"] += 1
            continue
        if pc not in ours:
            c["missing"] += 1
            diffs["(pc missing in ours)"].append((pc, pos, ins, ""))
            continue
        opos, oins, _, _ = ours[pc]
        if oins == ins and opos == pos:
            c["same"] += 1
        else:
            key = category(ins) if opos == pos else "(file:line)"
            diffs[key].append((pc, pos, ins, oins if opos == pos else opos))
    c["extra"] = sum(1 for pc in ours if pc not in od)
    return c, diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix", default=str(CACHE / "matrix"))
    ap.add_argument("--bin", action="append", default=[], help="compare this binary (needs --goroot)")
    ap.add_argument("--goroot", help="GOROOT for --bin")
    ap.add_argument("--filter", default="", help="only entries whose path contains this")
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--top", type=int, default=12, help="difference categories shown per group")
    ap.add_argument("--deferscope", default=None)
    a = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    ds = a.deferscope or str(target / "release" / "deferscope")
    if not Path(ds).exists():
        print(f"no deferscope at {ds}; run cargo build --release", file=sys.stderr)
        return 2

    jobs = []
    if a.bin:
        for b in a.bin:
            jobs.append((Path(b), {"goroot": a.goroot, "go_version": "?", "goarch": "?", "stripped": False}))
    else:
        for d, m in entries(Path(a.matrix)):
            if m.get("stripped") or a.filter not in str(d):
                continue
            jobs.append((d / "bin", m))

    groups: dict[tuple[str, str], Counter] = defaultdict(Counter)
    gdiffs: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(list))
    for bin_path, m in jobs:
        goroot = Path(m["goroot"])
        go = goroot / "bin" / "go"
        if not go.exists():
            print(f"skip {bin_path}: no toolchain at {goroot}", file=sys.stderr)
            continue
        env = dict(os.environ, GOROOT=str(goroot), GOTOOLCHAIN="local")
        p = subprocess.run([str(go), "tool", "objdump", str(bin_path)], env=env,
                           capture_output=True, text=True, errors="replace")
        if p.returncode != 0:
            print(f"skip {bin_path}: objdump failed: {p.stderr.strip()[:200]}", file=sys.stderr)
            continue
        q = subprocess.run([ds, "disasm", "--no-annotate", str(bin_path)],
                           capture_output=True, text=True, errors="replace")
        if q.returncode != 0:
            print(f"FAIL {bin_path}: deferscope: {q.stderr.strip()[:200]}", file=sys.stderr)
            continue
        c, diffs = compare(parse(p.stdout), parse(q.stdout))
        key = (m.get("go_version", "?"), m.get("goarch", "?"))
        groups[key] += c
        for k, v in diffs.items():
            gdiffs[key][k].extend((str(bin_path), *x) for x in v)
        denom = c["total"] - c["better"]
        pct = 100.0 * c["same"] / denom if denom else 100.0
        print(f"{bin_path}: {pct:.3f}% identical ({c['same']}/{denom}), better {c['better']}, missing {c['missing']}")

    print()
    print("| Go | arch | lines | identical | better | differ |")
    print("|---|---|---|---|---|---|")
    worst = 100.0
    for key in sorted(groups):
        c = groups[key]
        denom = c["total"] - c["better"]
        pct = 100.0 * c["same"] / denom if denom else 100.0
        worst = min(worst, pct)
        print(f"| {key[0]} | {key[1]} | {c['total']} | {pct:.3f}% | {c['better']} | {denom - c['same']} |")
    for key in sorted(groups):
        d = gdiffs[key]
        if not d:
            continue
        print(f"\n{key[0]} {key[1]}: differences by category")
        for cat, v in sorted(d.items(), key=lambda kv: -len(kv[1]))[: a.top]:
            print(f"  {len(v):7d}  {cat}")
            for ex in v[: a.examples]:
                b, pc, pos, ob, us = ex
                print(f"           {pc:#x} {pos}: objdump {ob!r} ours {us!r}")
    return 0 if worst >= 99.9 else 1


if __name__ == "__main__":
    sys.exit(main())
