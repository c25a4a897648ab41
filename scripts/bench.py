#!/usr/bin/env python3
"""Benchmarks: deferscope against `go tool objdump`, in the same run.

    scripts/bench.py [--go-version 1.22.10] [--runs N] [--extra BIN ...]

For each input it reports the median wall time and peak RSS (GNU time's %M)
of `deferscope scan --format json` and, where it can run, of the Go
toolchain's objdump on the same file, and their ratio. Inputs: cmd/go (the
toolchain's own `go` binary), the same stripped, cmd/compile, and any
--extra binaries. Timings are never asserted in tests: this script is
where speed is measured. Needs a release build (it runs cargo build).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")


def goroot(version: str) -> Path:
    out = subprocess.run([str(REPO / "scripts/install-toolchains.sh"), version],
                         check=True, capture_output=True, text=True).stdout.split()
    return Path(out[1])


def timed(argv: list[str], runs: int) -> tuple[float, int, bool]:
    """Median wall seconds, max peak RSS in KiB, success."""
    walls, rss, ok = [], [], True
    for _ in range(runs):
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        last = p.stderr.strip().splitlines()[-1].split()
        walls.append(float(last[0]))
        rss.append(int(last[1]))
        ok = ok and p.returncode == 0
    return statistics.median(walls), max(rss), ok


def timed_precise(argv: list[str], runs: int) -> float:
    """Median wall seconds with sub-10ms resolution (GNU time rounds)."""
    import time
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go-version", default="1.22.10")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--objdump-runs", type=int, default=3)
    ap.add_argument("--extra", nargs="*", default=[])
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "deferscope"], cwd=REPO, check=True)
    ds = str(REPO / "target/release/deferscope")
    gr = goroot(a.go_version)
    tooldir = next((gr / "pkg/tool").iterdir())
    objdump = str(tooldir / "objdump")

    tmp = Path(tempfile.mkdtemp(prefix="deferscope-bench-"))
    inputs = [("cmd/go", gr / "bin/go")]
    stripped = tmp / "go-stripped"
    shutil.copy(gr / "bin/go", stripped)
    subprocess.run(["strip", "-s", str(stripped)], check=True)
    inputs.append(("cmd/go stripped", stripped))
    inputs.append(("cmd/compile", tooldir / "compile"))
    inputs += [(Path(x).name, Path(x)) for x in a.extra]

    print(f"go{a.go_version} binaries; {a.runs} runs of deferscope, {a.objdump_runs} of objdump; median wall, peak RSS\n")
    print(f"| input | size | deferscope scan | RSS | go tool objdump | RSS | ratio |")
    print(f"|---|---|---|---|---|---|---|")
    for name, path in inputs:
        size = path.stat().st_size / 1e6
        _, ds_rss, ok = timed([ds, "scan", "--format", "json", str(path)], a.runs)
        if not ok:
            print(f"| {name} | deferscope failed |")
            continue
        ds_wall = timed_precise([ds, "scan", "--format", "json", str(path)], a.runs)
        od_wall, od_rss, od_ok = timed([objdump, str(path)], a.objdump_runs)
        if od_ok:
            od = f"{od_wall:.2f} s | {od_rss/1024:.0f} MB | {od_wall/ds_wall:.0f}x"
        else:
            od = "fails | - | -"
        print(f"| {name} | {size:.1f} MB | {ds_wall*1000:.1f} ms | {ds_rss/1024:.0f} MB | {od} |")
    # Whole-binary listing: deferscope disasm vs go tool objdump, same file.
    gobin = str(gr / "bin/go")
    dis_wall, dis_rss, dis_ok = timed([ds, "disasm", gobin], a.objdump_runs)
    od_wall, od_rss, od_ok = timed([objdump, gobin], a.objdump_runs)
    if dis_ok and od_ok:
        print(f"| cmd/go disasm (whole binary, to /dev/null) | {gr.joinpath('bin/go').stat().st_size/1e6:.1f} MB "
              f"| {dis_wall:.2f} s | {dis_rss/1024:.0f} MB | {od_wall:.2f} s | {od_rss/1024:.0f} MB | {od_wall/max(dis_wall, 1e-3):.1f}x |")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
