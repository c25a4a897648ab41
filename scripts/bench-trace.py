#!/usr/bin/env python3
"""Benchmark `deferscope trace`: cost per counted event, slowdowns, patching.

    scripts/bench-trace.py [--go-version 1.22.10 ...] [--runs 7] [--n 2000000]
                           [--mixed 150] [--breakpoints] [--no-fraction]

For each Go version it builds fixtures/go/trace (linux/amd64, GOTOOLCHAIN=
local, per-version GOCACHE, like the integration tests) and, in the same
run, alternating untraced and traced runs (`--runs` pairs, whole runs,
process start and deferscope's scan included), measures:

- `benchpar N 4`: the defer-heavy loop on 4 goroutines (N calls with an
  open-coded, a stack-allocated and, every other call, a heap-allocated
  defer). Cost per counted event = (traced wall - untraced wall) / events
  counted, per pair, median (target <= 10 ns). Also per CPU second
  (user+sys of the whole process tree), which a loaded machine disturbs
  less than wall time.
- `bench N`: the same loop on one goroutine: slowdown, median traced /
  median untraced (target <= 3x).
- `mixed M`: a mixed workload (JSON, sorting, maps, fmt; a defer every
  ~1 µs): slowdown (target <= 1.05x).
- `--breakpoints`: the same rows with `--mode breakpoints` (smaller N).

Every traced run's stdout must equal the untraced one's, and in bench modes
the program's own `bench N defers` must equal the traced main-package total.

Then the one-off cost of patching: `deferscope trace -- $GOROOT/bin/go
version` (cmd/go, ~2,300-3,300 points) per version, medians of the report's
`patch_ms` (the program stopped: block mapped, trampolines written, text
patched; target <= 50 ms) and `plan_ms` (decoding and checking the
functions, before the program starts).

And (unless --no-fraction) the fraction of points patched, `--plan-only`
(launch and attach rules), on every linux/amd64 binary of the matrix
(~/.cache/deferscope/matrix), and each toolchain's `go` and
`pkg/tool/linux_amd64/compile`, with every fallback reason (target >= 99%).

Timings are never asserted in tests; this script is where they are
measured. Needs Linux on amd64, the toolchains of
scripts/install-toolchains.sh, and a release build (it runs cargo build).
Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
VERSIONS = ["1.19", "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"]


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


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user+sys of the process tree) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit {p.returncode}\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout


def pairs(ds: str, binary: Path, args: list[str], runs: int, mode: str) -> dict:
    """Alternate untraced and traced runs; per-pair differences."""
    plain_w, plain_c, traced_w, traced_c, events, defers = [], [], [], [], [], []
    plain_out = None
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        for _ in range(runs):
            w, c, out = timed([str(binary), *args])
            plain_w.append(w)
            plain_c.append(c)
            plain_out = out if plain_out is None else plain_out
            if out != plain_out:
                sys.exit(f"{binary} {args}: untraced output varies")
            w, c, tout = timed([ds, "trace", "--mode", mode, "--format", "json", "--out", rep.name,
                                "--", str(binary), *args])
            traced_w.append(w)
            traced_c.append(c)
            if tout != plain_out:
                sys.exit(f"{binary} {args}: traced stdout differs from untraced")
            r = json.load(open(rep.name))
            p = r.get("patching") or {}
            events.append(p.get("counted", 0) + r["totals"]["breakpoint_hits"])
            main = sum(s["count"] for s in r["sites"] if s["function"].startswith("main."))
            defers.append(main)
            if args[0].startswith("bench"):
                own = int(plain_out.split()[1])
                if own != main:
                    sys.exit(f"{binary} {args}: the program counted {own} defers, the tracer {main}")
    n = statistics.median(events)
    return {
        "plain": statistics.median(plain_w), "traced": statistics.median(traced_w),
        "plain_cpu": statistics.median(plain_c), "traced_cpu": statistics.median(traced_c),
        "events": n, "defers": statistics.median(defers),
        "ns_per_event": statistics.median((t - p) / e * 1e9 for t, p, e in zip(traced_w, plain_w, events)),
        "ns_per_event_cpu": statistics.median((t - p) / e * 1e9 for t, p, e in zip(traced_c, plain_c, events)),
        "slowdown": statistics.median(traced_w) / statistics.median(plain_w),
        "slowdown_cpu": statistics.median(traced_c) / statistics.median(plain_c),
    }


def patch_cost(ds: str, gr: Path, runs: int) -> dict:
    go = gr / "go" / "bin" / "go" if (gr / "go" / "bin" / "go").exists() else gr / "bin" / "go"
    patch, plan, points = [], [], 0
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        for _ in range(runs):
            subprocess.run([ds, "trace", "--format", "json", "--out", rep.name, "--", str(go), "version"],
                           check=True, capture_output=True)
            p = json.load(open(rep.name))["patching"]
            patch.append(p["patch_ms"])
            plan.append(p["plan_ms"])
            points = p["points"]
    return {"points": points, "patch_ms": statistics.median(patch), "patch_min": min(patch),
            "plan_ms": statistics.median(plan), "plan_min": min(plan)}


def plan_only(ds: str, binary: Path) -> dict | None:
    p = subprocess.run([ds, "trace", "--plan-only", "--format", "json", "--", str(binary)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def fraction(ds: str, versions: list[str]) -> None:
    print("\n## Points patched (`--plan-only`)\n")
    print("| binaries | points | launch patched | attach patched | fallbacks (launch; attach) |")
    print("|---|---|---|---|---|")
    groups: dict[str, list[Path]] = {}
    for v in versions:
        mdir = CACHE / "matrix" / f"go{v}" / "linux-amd64"
        if mdir.is_dir():
            groups[f"go{v} matrix (linux-amd64, all variants)"] = sorted(mdir.glob("*/*/bin"))
        gr = goroot(v)
        for name, rel in (("go", "bin/go"), ("compile", "pkg/tool/linux_amd64/compile")):
            if (gr / rel).is_file():
                groups[f"go{v} {name}"] = [gr / rel]
    for name, bins in groups.items():
        tot = {"points": 0, "launch": 0, "attach": 0}
        reasons: dict[str, dict[str, int]] = {"launch": {}, "attach": {}}
        for b in bins:
            r = plan_only(ds, b)
            if r is None:
                continue
            tot["points"] += r["launch"]["points"]
            for m in ("launch", "attach"):
                tot[m] += r[m]["patched"]
                for k, n in r[m]["reasons"].items():
                    reasons[m][k] = reasons[m].get(k, 0) + n
        if not tot["points"]:
            continue
        why = "; ".join(", ".join(f"{k} {n}" for k, n in sorted(reasons[m].items())) or "none"
                        for m in ("launch", "attach"))
        print(f"| {name} ({len(bins)}) | {tot['points']:,} | {100 * tot['launch'] / tot['points']:.2f}% "
              f"| {100 * tot['attach'] / tot['points']:.2f}% | {why} |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go-version", nargs="*", default=VERSIONS)
    ap.add_argument("--n", type=int, default=2000000, help="bench iterations (default %(default)s)")
    ap.add_argument("--mixed", type=int, default=150, help="mixed rounds (default %(default)s)")
    ap.add_argument("--runs", type=int, default=7, help="untraced/traced pairs per row")
    ap.add_argument("--patch-runs", type=int, default=5)
    ap.add_argument("--breakpoints", action="store_true", help="also time --mode breakpoints")
    ap.add_argument("--no-fraction", action="store_true")
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "deferscope"], cwd=REPO, check=True)
    ds = str(TARGET / "release/deferscope")
    tmp = Path(tempfile.mkdtemp(prefix="deferscope-bench-trace-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; medians of {a.runs} "
          f"alternating untraced/traced pairs; cost per event = (traced - untraced) / events counted\n")
    print("| go | program | mode | untraced | traced | events | cost per event (wall) | (CPU) "
          "| slowdown (wall) | (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in a.go_version:
        binary = build(v, tmp)
        cases = [(["benchpar", str(a.n), "4"], "counters", f"benchpar {a.n} 4"),
                 (["bench", str(a.n)], "counters", f"bench {a.n}"),
                 (["mixed", str(a.mixed)], "counters", f"mixed {a.mixed}")]
        if a.breakpoints:
            cases += [(["bench", str(a.n // 100)], "breakpoints", f"bench {a.n // 100}"),
                      (["mixed", str(a.mixed // 10)], "breakpoints", f"mixed {a.mixed // 10}")]
        for args, mode, name in cases:
            r = pairs(ds, binary, args, a.runs, mode)
            print(f"| go{v} | {name} | {mode} | {r['plain'] * 1000:.0f} ms | {r['traced'] * 1000:.0f} ms | "
                  f"{r['events']:,.0f} | {r['ns_per_event']:.1f} ns | {r['ns_per_event_cpu']:.1f} ns | "
                  f"{r['slowdown']:.2f}x | {r['slowdown_cpu']:.2f}x |", flush=True)
    print("\n## One-off patching cost: `deferscope trace -- go version` (cmd/go)\n")
    print("| go | points | patch_ms median (min) | plan_ms median (min) |")
    print("|---|---|---|---|")
    for v in a.go_version:
        r = patch_cost(ds, goroot(v), a.patch_runs)
        print(f"| go{v} | {r['points']:,} | {r['patch_ms']:.1f} ({r['patch_min']:.1f}) | "
              f"{r['plan_ms']:.1f} ({r['plan_min']:.1f}) |", flush=True)
    if not a.no_fraction:
        fraction(ds, a.go_version)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
