#!/usr/bin/env python3
"""Prove that a change left deferscope's output alone: hash every output
of two builds on the same inputs and compare.

    scripts/same-output.py record --bin OLD/deferscope --out old.json [--matrix] [--jobs N]
    scripts/same-output.py record --bin NEW/deferscope --out new.json [--matrix] [--jobs N]
    scripts/same-output.py compare old.json new.json

`record` runs every command of the case list below on every input and keeps
the sha256 of stdout, of stderr and the exit status of each run. Inputs: the
committed fixture binaries (fixtures/bin), the bad inputs (fixtures/bad, a
missing file, a directory, an empty file, a text file) and, with --matrix,
every binary of the built matrix (${DEFERSCOPE_CACHE:-~/.cache/deferscope}/
matrix, scripts/build-matrix.py). Commands: scan, explain and scan --explain
in every format with and without filters, disasm in several modes (the whole
binary once per input, annotated), diff between pairs of inputs and from
saved JSON, check and check --verify on the fixture sources with the first
toolchain found (scripts/install-toolchains.sh), and every --help.

The cost table is pinned: DEFERSCOPE_CACHE points at an empty directory for
the runs, so explain uses the published figures. `compare` prints each case
whose hashes differ (with the first differing stream), the count compared
and the count that differ, and exits 1 when any differ or a case ran on
one side only.

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")

# Per binary: argument lists after the binary's position is filled in ({b}).
PER_BINARY = [
    ["scan", "{b}"],
    ["scan", "--format", "json", "{b}"],
    ["scan", "--format", "sarif", "{b}"],
    ["scan", "--format", "html", "{b}"],
    ["scan", "--no-std", "{b}"],
    ["scan", "--funcs", r"^main\.", "--format", "json", "{b}"],
    ["scan", "--explain", "{b}"],
    ["scan", "--explain", "--format", "sarif", "{b}"],
    ["explain", "{b}"],
    ["explain", "--format", "json", "{b}"],
    ["explain", "--format", "sarif", "--no-std", "{b}"],
    ["explain", "--format", "html", "{b}"],
    ["explain", "--published-costs", "--funcs", "main", "{b}"],
    ["disasm", "{b}"],
    ["disasm", "--defer-only", "{b}"],
    ["disasm", "--defer-only", "--no-symtab", "{b}"],
    ["disasm", "--no-annotate", "--funcs", r"^main\.", "{b}"],
    ["disasm", "--syntax", "intel", "--funcs", r"^main\.", "{b}"],
    ["disasm", "--source", "--funcs", r"^main\.", "{b}"],
    ["disasm", "--color", "always", "--defer-only", "--funcs", r"^main\.", "{b}"],
    ["disasm", "--pc", "0x401000", "{b}"],
    ["disasm", "--line", "main.go:20", "{b}"],
]
# Cheaper list for the (many) matrix binaries.
PER_MATRIX_BINARY = [
    ["scan", "{b}"],
    ["scan", "--format", "json", "{b}"],
    ["scan", "--format", "sarif", "{b}"],
    ["explain", "{b}"],
    ["explain", "--format", "json", "{b}"],
    ["explain", "--format", "sarif", "{b}"],
    ["explain", "--format", "html", "{b}"],
    ["disasm", "--defer-only", "{b}"],
    ["disasm", "--source", "--defer-only", "--funcs", r"^main\.", "{b}"],
]
HELP = [[], ["--help"], ["--version"]] + [
    [c, "--help"] for c in ["scan", "explain", "disasm", "diff", "check", "trace", "bench"]
] + [["scan"], ["nosuchcommand"], ["scan", "--format", "xml", "x"], ["scan", "--funcs", "(", "x"]]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def run(exe: str, args: list[str], env: dict, cwd: Path | None = None, timeout: int = 600) -> dict:
    try:
        p = subprocess.run([exe, *args], capture_output=True, env=env, cwd=cwd, timeout=timeout)
        return {"out": sha(p.stdout), "err": sha(p.stderr), "rc": p.returncode, "n": len(p.stdout)}
    except subprocess.TimeoutExpired:
        return {"out": "timeout", "err": "timeout", "rc": -1, "n": 0}


def fixture_binaries() -> list[Path]:
    return sorted((REPO / "fixtures" / "bin").glob("*/bin"))


def matrix_binaries() -> list[Path]:
    m = CACHE / "matrix"
    return sorted(p.parent / "bin" for p in m.glob("go*/*/*/*/meta.json") if (p.parent / "bin").exists())


def first_goroot() -> Path | None:
    tc = CACHE / "toolchains"
    for v in ["go1.22.10", "go1.27.3", "go1.19"]:
        g = tc / v / "go"
        if (g / "bin" / "go").exists():
            return g
    return None


def cases(args, tmp: Path) -> list[tuple[str, list[str], Path | None, dict]]:
    """(case id, argv, cwd, extra env) for every run."""
    out = []
    bins = fixture_binaries()
    for b in bins:
        rel = b.relative_to(REPO)
        for a in PER_BINARY:
            out.append((f"{rel} :: {' '.join(a)}", [x.replace("{b}", str(rel)) for x in a], REPO, {}))
    # Bad inputs.
    (tmp / "empty").write_bytes(b"")
    (tmp / "text").write_text("not a binary\n")
    bad = sorted((REPO / "fixtures" / "bad").glob("*"))
    bad = [p for p in bad if p.is_file()] + [tmp / "empty", tmp / "text", tmp / "missing", tmp]
    for b in bad:
        name = b.name if b.parent == tmp or b == tmp else str(b.relative_to(REPO))
        for a in (["scan", "{b}"], ["explain", "--format", "json", "{b}"], ["disasm", "{b}"], ["diff", "{b}", "{b}"]):
            out.append((f"bad {name} :: {' '.join(a)}", [x.replace("{b}", str(b)) for x in a], REPO, {}))
    # diff between fixture binaries, and from saved JSON.
    pairs = [(bins[i], bins[j]) for i in range(len(bins)) for j in range(len(bins)) if i != j][:12]
    for x, y in pairs:
        rx, ry = x.relative_to(REPO), y.relative_to(REPO)
        out.append((f"diff {rx} {ry}", ["diff", str(rx), str(ry)], REPO, {}))
        out.append((f"diff json {rx} {ry}", ["diff", "--format", "json", "--fail-on", "heap-allocated", str(rx), str(ry)], REPO, {}))
    for b in bins[:3]:
        rel = b.relative_to(REPO)
        saved = tmp / (str(rel).replace("/", "_") + ".json")
        out.append((f"saved {rel}", ["@save", str(rel), str(saved)], REPO, {}))
        out.append((f"diff saved {rel}", ["diff", "--no-std", str(saved), str(rel)], REPO, {}))
    for h in HELP:
        out.append((f"help {' '.join(h)}", h, REPO, {}))
    # check, with a toolchain on PATH.
    gr = first_goroot()
    if gr is not None:
        env = {
            "PATH": f"{gr}/bin:/usr/bin:/bin", "GOROOT": str(gr), "GOTOOLCHAIN": "local",
            "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0",
            "GOCACHE": str(CACHE / "gocache" / f"same-output-{gr.parent.name}"),
        }
        for prog in ["defers", "diff/base", "explain"]:
            d = REPO / "fixtures" / "go" / prog
            if not d.exists():
                continue
            env2 = dict(env, PWD=str(d))
            out.append((f"check {prog}", ["check", "."], d, env2))
            out.append((f"check --verify {prog}", ["check", "--verify", "--format", "json", "."], d, env2))
            out.append((f"check --verify --explain {prog}", ["check", "--verify", "--explain", "--no-std", "."], d, env2))
    if args.matrix:
        for b in matrix_binaries():
            rel = b.relative_to(CACHE)
            for a in PER_MATRIX_BINARY:
                out.append((f"matrix {rel} :: {' '.join(a)}", [x.replace("{b}", str(b)) for x in a], REPO, {}))
    return out


def record(args) -> None:
    exe = str(Path(args.bin).resolve())
    # A fixed directory: its path shows in error messages, which must not
    # differ between the two records (so run them one after the other).
    tmp = Path(tempfile.gettempdir()) / "deferscope-same-output"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        costs = tmp / "cache"
        costs.mkdir()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "NO_COLOR"))}
        base_env["DEFERSCOPE_CACHE"] = str(costs)
        all_cases = cases(args, tmp)
        # Saved JSON first: later diffs read it.
        results: dict[str, dict] = {}
        for cid, argv, cwd, extra in all_cases:
            if argv and argv[0] == "@save":
                p = subprocess.run([exe, "scan", "--format", "json", argv[1]], capture_output=True, env=base_env, cwd=cwd)
                Path(argv[2]).write_bytes(p.stdout)
                results[cid] = {"out": sha(p.stdout), "err": sha(p.stderr), "rc": p.returncode, "n": len(p.stdout)}
        todo = [c for c in all_cases if not (c[1] and c[1][0] == "@save")]

        def one(c):
            cid, argv, cwd, extra = c
            env = dict(base_env)
            env.update(extra)
            return cid, run(exe, argv, env, cwd)

        done = 0
        with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            for cid, r in ex.map(one, todo):
                results[cid] = r
                done += 1
                if done % 500 == 0:
                    print(f"  {done}/{len(todo)}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(results)} cases to {args.out}")


def compare(args) -> int:
    a = json.loads(Path(args.old).read_text())
    b = json.loads(Path(args.new).read_text())
    common = sorted(set(a) & set(b))
    only = sorted(set(a) ^ set(b))
    differ = []
    for cid in common:
        x, y = a[cid], b[cid]
        what = [k for k in ("out", "err", "rc") if x[k] != y[k]]
        if what:
            differ.append((cid, what))
    for cid, what in differ:
        print(f"DIFFERS ({', '.join(what)}): {cid}")
    for cid in only:
        print(f"ONE SIDE ONLY: {cid}")
    print(f"{len(common)} cases compared (3 streams each: stdout, stderr, exit status); "
          f"{len(differ)} differ; {len(only)} on one side only")
    return 1 if differ or only else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--bin", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--matrix", action="store_true")
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    c = sub.add_parser("compare")
    c.add_argument("old")
    c.add_argument("new")
    args = ap.parse_args()
    if args.cmd == "record":
        record(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
