#!/usr/bin/env python3
"""Benchmark `deferscope trace`: cost per traced event, and slowdown.

    scripts/bench-trace.py [--go-version 1.22.10 ...] [--n 100000] [--runs 3]
                           [--single-step]

For each Go version it builds fixtures/go/trace (linux/amd64, GOTOOLCHAIN=
local, per-version GOCACHE, like the integration tests) and, in the same
run, times on this machine:

- `trace bench N`: a defer-heavy loop (N calls with an open-coded, a
  stack-allocated and, every other call, a heap-allocated defer), untraced
  and traced;
- `trace work`: the test workload (8 goroutines, panics, recovers),
  untraced and traced.

Per row: fastest wall time of the runs, untraced and traced (whole runs,
process start included), breakpoint hits (from the
JSON report), the cost per traced event, (traced - untraced) / hits in
microseconds, and the slowdown, traced / untraced. The program's own
`bench N defers` line is checked against the traced defer total (bench
mode counts its defers without runtime.Caller). With --single-step it also
times the fallback path (all threads stopped, one instruction stepped).

Timings are never asserted in tests; this script is where they are
measured. Needs Linux on amd64, the toolchains of
scripts/install-toolchains.sh, and a release build (it runs cargo build).
Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def goroot(version: str) -> Path:
    out = subprocess.run([str(REPO / "scripts/install-toolchains.sh"), version],
                         check=True, capture_output=True, text=True).stdout.split()
    return Path(out[1])


def build(version: str, out: Path) -> Path:
    gr = goroot(version)
    src = REPO / "fixtures/go/trace"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
    env.update({
        "PWD": str(src), "GOROOT": str(gr), "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod",
        "GOPROXY": "off", "GOCACHE": str(CACHE / "gocache" / f"go{version}-trace"),
        "GOOS": "linux", "GOARCH": "amd64", "CGO_ENABLED": "0",
    })
    binary = out / f"trace-go{version}"
    subprocess.run([str(gr / "bin/go"), "build", "-o", str(binary), "."], cwd=src, env=env, check=True)
    return binary


def wall(argv: list[str], runs: int) -> tuple[float, str, str]:
    """Fastest wall seconds of `runs` (the machine is shared: the minimum is
    the least disturbed run); stdout and stderr of the last run."""
    walls, out, err = [], "", ""
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit(f"{' '.join(argv)}: exit {p.returncode}\n{p.stderr[-2000:]}")
        out, err = p.stdout, p.stderr
    return min(walls), out, err


def row(ds: str, binary: Path, args: list[str], runs: int, extra: list[str]) -> dict:
    plain, plain_out, _ = wall([str(binary), *args], runs)
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        traced, traced_out, _ = wall([ds, "trace", *extra, "--format", "json", "--out", rep.name,
                                      "--", str(binary), *args], runs)
        r = json.load(open(rep.name))
    if traced_out != plain_out:
        sys.exit(f"{binary} {args}: traced stdout differs from untraced")
    hits = r["totals"]["breakpoint_hits"]
    main_defers = sum(s["count"] for s in r["sites"] if s["function"].startswith("main."))
    if args[0] == "bench":
        own = int(plain_out.split()[1])
        if own != main_defers:
            sys.exit(f"{binary}: the program counted {own} defers, the tracer {main_defers}")
    return {
        "plain": plain, "traced": traced, "hits": hits, "defers": r["totals"]["defers"],
        "us_per_event": (traced - plain) / hits * 1e6 if hits else float("nan"),
        "slowdown": traced / plain,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go-version", nargs="*", default=["1.22.10"])
    ap.add_argument("--n", type=int, default=100000, help="bench mode iterations (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--single-step", action="store_true", help="also time the stop-all single-step path")
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "deferscope"], cwd=REPO, check=True)
    ds = str(TARGET / "release/deferscope")
    tmp = Path(tempfile.mkdtemp(prefix="deferscope-bench-trace-"))
    print(f"{os.cpu_count()} CPUs; fastest of {a.runs} runs each; "
          f"cost per event = (traced - untraced) / breakpoint hits\n")
    print("| go | program | untraced | traced | breakpoint hits | defers | cost per event | slowdown |")
    print("|---|---|---|---|---|---|---|---|")
    for v in a.go_version:
        binary = build(v, tmp)
        cases = [(["bench", str(a.n)], [], f"bench {a.n}"), (["work"], [], "work")]
        if a.single_step:
            cases.append((["work", "2"], ["--single-step"], "work 2, --single-step"))
        for args, extra, name in cases:
            r = row(ds, binary, args, a.runs, extra)
            print(f"| go{v} | {name} | {r['plain']*1000:.0f} ms | {r['traced']*1000:.0f} ms | "
                  f"{r['hits']:,} | {r['defers']:,} | {r['us_per_event']:.1f} µs | {r['slowdown']:.0f}x |",
                  flush=True)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
