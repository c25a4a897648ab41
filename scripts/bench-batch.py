#!/usr/bin/env python3
"""Many binaries in one command against one command per binary, same run.

    scripts/bench-batch.py [--deferscope PATH] [--jobs 2] [--runs 3] [--rt]
                           [--command scan|explain] [--min 30] [--out DIR]

Gathers every Go binary already cached by scripts/real-binaries.py (Debian
packages, npm, PyPI under ${DEFERSCOPE_CACHE:-~/.cache/deferscope}/real; run
that script first for the full set) and by scripts/install-toolchains.sh
(each toolchain's bin/* and pkg/tool/*/*), hard-links them into one
directory (OUT/dir, default target/bench-batch), and writes three image
tarballs of it with scripts/make-image.py: OCI layouts with gzip and with
plain layers, and a `docker save` archive (plain layers), each with
whiteouts in a second layer (so the image holds exactly the directory's
binaries). A gzip layer must be inflated whole, on one thread, before its
binaries reach the workers: that cost is the image's, not deferscope's,
and the single scans (of the extracted files) do not pay it.

Then, `--runs` times, alternating: `deferscope COMMAND --format json BIN`
once per binary (the sum of their wall and CPU times; their largest peak
RSS), and `deferscope COMMAND --format json -j JOBS` once on the directory,
once on each image, and once on the directory with one worker (a
reference: the gain of the workers alone). Wall from the clock, CPU (user
+ system) from the children's rusage, peak RSS from GNU time
(/usr/bin/time %M). Medians are printed with the targets of
issue 15: batch wall <= sum of single walls / 1.8, and batch peak RSS <=
the largest binary + 64 MB per worker.

Each batch report is also checked against the single ones: every binary's
document in the batch JSON must equal its single JSON (but for the path).
The last line reads "bench-batch: N passed, M failed" (the checks and the
targets); exit status 1 if any failed. Wall times need a quiet machine:
with sched_autogroup on (the Linux default) each session gets one share
of the CPUs when others are busy, so two workers cannot beat one process
at a time by more than the CPU they save; the load average is printed.
--rt runs every measured command (single scans and batches alike) at
real-time priority 1, ahead of the others' work, as on a quiet machine
(root; the kernel still leaves 5% of the CPUs to the rest).

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
# --rt: the prefix that runs every measured command at real-time priority.
RT: list[str] = []


def load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / file)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def gather() -> list[tuple[str, Path]]:
    """(name in the directory, file) for every cached Go binary."""
    rb = load("real_binaries", "real-binaries.py")
    out: list[tuple[str, Path]] = []
    real = CACHE / "real"
    for pkg in rb.DEBIAN:
        d = real / "deb" / pkg
        if rb.is_done(d):
            out += [(f"deb/{pkg}/{p.name}", p) for p in rb.go_executables(d)]
    for spec, rel in rb.NPM.items():
        d = real / "npm" / spec.lstrip("@").replace("/", "-")
        if rb.is_done(d) and (d / rel).is_file():
            out.append((f"npm/{d.name}", d / rel))
    for req, exe in rb.PYPI.items():
        d = real / "pypi" / req.split("==")[0]
        if rb.is_done(d):
            p = next((p for p in d.rglob(exe) if p.is_file()), None)
            if p:
                out.append((f"pypi/{exe}", p))
    for tc in sorted((CACHE / "toolchains").glob("go*/go")):
        ver = tc.parent.name
        tools = sorted((tc / "bin").glob("*")) + sorted(tc.glob("pkg/tool/*/*"))
        out += [(f"{ver}/{t.name}", t) for t in tools if t.is_file()]
    seen: set[Path] = set()
    uniq = []
    for name, p in out:
        r = p.resolve()
        if r not in seen and r.stat().st_size > 100_000:
            seen.add(r)
            uniq.append((name, r))
    return uniq


def link_dir(bins: list[tuple[str, Path]], d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)
    for name, p in bins:
        dst = d / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(p, dst)
        except OSError:
            shutil.copy2(p, dst)


def timed(argv: list[str], tmp: Path) -> tuple[float, float, int, int, bytes]:
    """(wall s, cpu s, peak RSS KiB, exit status, stdout). CPU (user +
    system, microseconds) from this process' children's rusage; peak RSS
    from GNU time, since the rusage of a child forked from this (large)
    Python process counts the parent's pages in its peak RSS."""
    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    p = subprocess.run([*RT, "/usr/bin/time", "-f", "%M", "-o", str(tmp), *argv],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rss = tmp.read_text().split()[-1]
    return wall, cpu() - c0, int(rss), p.returncode, p.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deferscope", default=str(REPO / "target/release/deferscope"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--command", choices=["scan", "explain"], default="scan")
    ap.add_argument("--min", type=int, default=30)
    ap.add_argument("--out", type=Path, default=REPO / "target/bench-batch")
    ap.add_argument("--rt", action="store_true",
                    help="run the single scans and the batches alike at real-time priority 1 "
                         "(chrt -f 1; root), as on a quiet machine")
    a = ap.parse_args()
    if a.rt:
        RT[:] = ["chrt", "-f", "1"]
    ds = a.deferscope
    bins = gather()
    if len(bins) < a.min:
        print(f"only {len(bins)} Go binaries cached (want {a.min}): run scripts/real-binaries.py "
              "and scripts/install-toolchains.sh first", file=sys.stderr)
        return 1
    d = a.out / "dir"
    stamp = a.out / "stamp.json"
    want = json.dumps(sorted((n, str(p), p.stat().st_size) for n, p in bins))
    oci, oci_plain, docker = a.out / "oci.tar", a.out / "oci-plain.tar", a.out / "docker.tar"
    images = (oci, oci_plain, docker)
    if not (stamp.exists() and stamp.read_text() == want and all(p.exists() for p in images)):
        print(f"linking {len(bins)} binaries into {d} and writing the images", file=sys.stderr)
        link_dir(bins, d)
        mi = load("make_image", "make-image.py")
        mi.build(d, oci, docker, False, "usr/local/bin")
        mi.build(d, oci_plain, None, False, "usr/local/bin", oci_gzip=False)
        stamp.write_text(want)
    files = sorted((n, d / n) for n, _ in bins)
    sizes = {n: p.stat().st_size for n, p in files}
    largest = max(sizes, key=sizes.get)
    total = sum(sizes.values())
    for _, p in files:  # warm the page cache
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass
    for img in images:
        with open(img, "rb") as f:
            while f.read(1 << 22):
                pass

    cmd = [ds, a.command, "--format", "json"]
    batches = (("directory", d), ("OCI image, gzip layers", oci),
               ("OCI image, plain layers", oci_plain), ("docker save, plain layers", docker))
    rows: dict[str, list[tuple[float, float, int]]] = {}
    singles: dict[str, bytes] = {}
    batch_out: dict[str, bytes] = {}
    results: list[tuple[str, bool]] = []  # (check, passed)
    for r in range(a.runs):
        walls, cpus, rss = 0.0, 0.0, 0
        for n, p in files:
            w, c, m, code, out = timed(cmd + [str(p)], a.out / "time.txt")
            results.append((f"single {n}: exit {code}", code == 0))
            walls, cpus, rss = walls + w, cpus + c, max(rss, m)
            singles[n] = out
        rows.setdefault("single scans, summed", []).append((walls, cpus, rss))
        for label, target in batches:
            w, c, m, code, out = timed(cmd + ["-j", str(a.jobs), str(target)], a.out / "time.txt")
            results.append((f"{label}: exit {code}", code == 0))
            rows.setdefault(label, []).append((w, c, m))
            batch_out[label] = out
        # The same directory on one worker: what the workers themselves gain.
        w, c, m, code, _ = timed(cmd + ["-j", "1", str(d)], a.out / "time.txt")
        rows.setdefault("directory, -j 1 (reference)", []).append((w, c, m))
        print(f"  run {r + 1}/{a.runs} done", file=sys.stderr)

    # Every binary's document in each batch equals its single document.
    for label, target in batches:
        doc = json.loads(batch_out[label])
        got = {b["binary"]["path"]: b for b in doc["binaries"]}
        for n, _ in files:
            path = str(d / n) if target == d else f"{target}:usr/local/bin/{n}"
            one = json.loads(singles[n])
            one["binary"]["path"] = path
            results.append((f"{label}: {n} as its single report", got.get(path) == one))
        results.append((f"{label}: {len(got)} binaries, {len(doc['failed'])} failed, "
                        f"{len(doc['skipped'])} skipped (want {len(files)}, 0, 0)",
                        len(got) == len(files) and not doc["failed"] and not doc["skipped"]))

    med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
    single_wall = med["single scans, summed"][0]
    limit_rss = sizes[largest] / 2**20 + 64 * a.jobs
    print(f"\n`deferscope {a.command}`: {len(files)} Go binaries, {total / 2**20:.0f} MiB "
          f"(largest {largest}, {sizes[largest] / 2**20:.1f} MiB); {a.jobs} workers; "
          f"median of {a.runs} runs; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f}{'; real-time priority (--rt)' if a.rt else ''}")
    print(f"{'':28}{'wall s':>8}{'cpu s':>8}{'peak RSS MiB':>13}{'sum/wall':>10}")
    for k, (w, c, m) in med.items():
        ratio = "" if k.startswith("single") else f"{single_wall / w:>10.2f}"
        print(f"{k:<28}{w:>8.2f}{c:>8.2f}{m / 1024:>13.1f}{ratio}")
    print(f"targets: sum/wall >= 1.8 (but for gzip layers, which are inflated whole on one "
          f"thread); peak RSS <= {limit_rss:.0f} MiB (largest binary + 64 MiB x {a.jobs} workers)")
    for k, (w, _, m) in med.items():
        if k.startswith("single") or "reference" in k:
            continue
        if "gzip" not in k:
            results.append((f"{k}: wall {w:.2f} s <= single sum {single_wall:.2f} s / 1.8",
                            single_wall / w >= 1.8))
        results.append((f"{k}: peak RSS {m / 1024:.0f} MiB <= {limit_rss:.0f} MiB",
                         m / 1024 <= limit_rss))
    failed = [c for c, ok in results if not ok]
    for c in failed:
        print(f"FAIL: {c}")
    print(f"bench-batch: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
