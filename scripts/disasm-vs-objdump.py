#!/usr/bin/env python3
"""Compare `deferscope disasm` with `go tool objdump`, instruction by instruction.

    scripts/disasm-vs-objdump.py [--matrix DIR] [--filter SUBSTR] [--jobs N]
                                 [--baseline FILE | --update-baseline]
                                 [--bin PATH --goroot DIR] [--examples N]

For every unstripped binary of the matrix (default ~/.cache/deferscope/matrix,
its index.json: every fixture program, every platform, cmd/go) it takes the
text of `go tool objdump BIN` from the binary's own toolchain and
`deferscope disasm --no-annotate BIN`, and compares them by PC: the
file:line column and the instruction text. objdump's instructions are
cached under $DEFERSCOPE_CACHE/objdump/ (pc, file:line and text, gzipped;
about 0.8 MB for a fixture, 10 MB for cmd/go), keyed by the binary's
SHA-256 and the toolchain's version: a warm run does not start objdump.
DEFERSCOPE_VERSIONS / DEFERSCOPE_PLATFORMS narrow the matrix as in
scripts/test-all.sh.

Per (Go version, arch) it prints:

- identical: objdump's line and ours are the same, as a percentage of the
  lines where objdump decoded something (the `better` lines are left out of
  the denominator and counted on their own);
- better, by category:
  - `?`: objdump printed `?` (an instruction its decoder does not know);
  - `desync`: a PC inside one of our instructions (objdump lost sync after
    a `?`);
  - `vex`: objdump before go1.27 reads an unknown VEX/EVEX instruction as a
    legacy opcode (`c5 .. 74` as JE);
  - `adrp-sym`: arm64, the instruction completing an ADRP pair, where
    objdump leaves the data address as an offset from the page and we
    print `sym+off(SB)`;
  - `rip-sym`: amd64 go1.27, an EVEX instruction whose RIP-relative
    operand objdump prints as the bare displacement (`0xa9576`) where we
    print `sym(SB)`;
  - `noline` (counted apart, the instruction text is still compared):
    objdump found no function for the pc (file:line `:0`; go1.19's
    objdump on arm64 PIE binaries) and we print its file:line;
- the remaining differences, by category (objdump's mnemonic, or
  `(file:line)`, `(pc missing)`), with examples.

Exit status 1 when a (version, arch) is below --min (99.9%), or, with
--baseline, when a difference category has more lines than the baseline
records for that group, plus a margin of 10% or 10 lines (a category
absent from the baseline allows none): what was identical stays
identical. --update-baseline rewrites the baseline
from this run.

Only the standard library is used. Needs a release build of deferscope
(`cargo build --release`; CARGO_TARGET_DIR is honoured).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
BETTER = ("?", "desync", "vex", "adrp-sym", "rip-sym")


def parse(text: str) -> dict[int, tuple[str, str, int, str]]:
    """pc -> (file:line, instruction, size, hex bytes) from objdump-format text."""
    out: dict[int, tuple[str, str, int, str]] = {}
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
        ins = cells[3].rstrip()
        if ins.startswith("//"):
            ins = ""
        out[pc] = (cells[0].strip(), ins, len(hexb) // 2, hexb)
    return out


def buildid_pcs(text: str) -> set[int]:
    """The pcs our listing puts under `TEXT go:buildid` (`go.buildid` up to
    go1.19, `_go:buildid` on Mach-O): the linker writes the build ID string
    at the start of the text on darwin and windows. Those bytes are data that changes with every
    build, so how two decoders read them says nothing about either; they are
    counted apart ("buildid") and not compared."""
    out: set[int] = set()
    inside = False
    for line in text.splitlines():
        if line.startswith("TEXT "):
            inside = line[5:].split("(SB)")[0].endswith(("go:buildid", "go.buildid"))
        elif inside and line.startswith("  "):
            cells = [c for c in line.split("\t") if c != ""]
            if len(cells) >= 2:
                try:
                    out.add(int(cells[1], 16))
                except ValueError:
                    pass
    return out


def misdecoded_vex(hexb: str, ins: str) -> bool:
    """objdump before go1.27 reads an unknown VEX instruction's opcode as a
    legacy one (c5 .. 74 .. as JE): a VEX/EVEX prefix with a non-V mnemonic."""
    b = hexb
    while b[:2] in ("66", "f2", "f3", "2e", "3e", "26", "36", "64", "65", "67", "f0"):
        b = b[2:]
    return b[:2] in ("c4", "c5", "62") and not ins.startswith("V") and ins != "?"


ADRP = re.compile(r"^ADRP -?\d+\(PC\), (R\d+)$")


def adrp_symbolized(od: dict, pc: int, ins: str, oins: str) -> bool:
    """Ours names the data address that objdump leaves as an offset from the
    page an ADRP at pc-4 loaded (ADRP+ADD/LDR/STR)."""
    prev = od.get(pc - 4)
    if not prev:
        return False
    m = ADRP.match(prev[1])
    return bool(m) and "(SB)" in oins and "(SB)" not in ins and m.group(1) in ins


HEXADDR = re.compile(r"^0x[0-9a-f]+$")


def rip_symbolized(ins: str, oins: str) -> bool:
    """go1.27's EVEX decoder prints a RIP-relative operand as its bare
    displacement (`VMOVDQU64 0xa9576, Z0`); ours names the address."""
    a, b = ins.split(", "), oins.split(", ")
    if len(a) != len(b) or a[0].split(" ")[0] != b[0].split(" ")[0]:
        return False
    a[0], b[0] = a[0].split(" ", 1)[-1], b[0].split(" ", 1)[-1]
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    return bool(diff) and all(HEXADDR.match(x) and y.endswith("(SB)") for x, y in diff)


def category(ob: str) -> str:
    return ob.split(" ")[0] if ob else "(empty)"


def compare(od: dict, ours: dict, arch: str, examples: int, skip: set[int] = frozenset()):
    """Counters and difference examples for one binary; pcs in `skip` (the
    build ID's bytes) are only counted."""
    c: Counter = Counter()
    ex: dict[str, list] = defaultdict(list)
    covered = set()
    for pc, (_, _, n, _) in ours.items():
        for k in range(1, n):
            covered.add(pc + k)

    def note(cat, item):
        c["cat:" + cat] += 1
        if len(ex[cat]) < examples:
            ex[cat].append(item)

    for pc, (pos, ins, _, _) in od.items():
        if pc in skip:
            c["buildid"] += 1
            continue
        c["total"] += 1
        at = ours.get(pc)
        # The bytes at pc are the binary's: take them from our line.
        hexb = at[3] if at else ""
        if ins == "?" and not (at and at[1] == "?"):
            c["better:?"] += 1
            continue
        if at is None and pc in covered:
            c["better:desync"] += 1
            continue
        if arch == "amd64" and misdecoded_vex(hexb, ins):
            c["better:vex"] += 1
            continue
        if at is None:
            note("(pc missing)", (pc, pos, ins, ""))
            continue
        opos, oins = at[0], at[1]
        if pos == ":0" and opos != pos:
            # objdump found no function for the pc (go1.19 on an arm64
            # PIE); ours has the line. Counted apart; the text is compared.
            c["noline"] += 1
            if len(ex["better:noline"]) < examples:
                ex["better:noline"].append((pc, pos, ins, opos))
            pos = opos
        if opos != pos:
            note("(file:line)", (pc, pos, ins, opos))
        elif oins == ins:
            c["same"] += 1
        elif arch == "arm64" and adrp_symbolized(od, pc, ins, oins):
            c["better:adrp-sym"] += 1
            if len(ex["better:adrp-sym"]) < examples:
                ex["better:adrp-sym"].append((pc, pos, ins, oins))
        elif arch == "amd64" and ins.startswith("V") and rip_symbolized(ins, oins):
            c["better:rip-sym"] += 1
            if len(ex["better:rip-sym"]) < examples:
                ex["better:rip-sym"].append((pc, pos, ins, oins))
        else:
            note(category(ins), (pc, pos, ins, oins))
    c["extra"] = sum(1 for pc in ours if pc not in od)
    return c, ex


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compact(text: str) -> str:
    """objdump's instruction lines as `pc delta<TAB>file:line<TAB>text`, hex,
    one a line: what the comparison needs (the bytes are the binary's, and
    our listing has them), at about half the compressed size."""
    out = []
    last = 0
    for pc, (pos, ins, _, _) in parse(text).items():
        out.append(f"{pc - last:x}\t{pos}\t{ins}")
        last = pc
    return "\n".join(out) + "\n"


def parse_compact(text: str) -> dict[int, tuple[str, str, int, str]]:
    out: dict[int, tuple[str, str, int, str]] = {}
    pc = 0
    for line in text.splitlines():
        d, pos, ins = line.split("\t", 2)
        pc += int(d, 16)
        out[pc] = (pos, ins, 0, "")
    return out


def objdump_lines(bin_path: Path, goroot: Path, version: str, cache: Path | None) -> tuple[dict, bool]:
    """objdump's instructions by pc, and whether they came from the cache."""
    key = None
    if cache is not None:
        key = cache / f"{sha256(bin_path)[:40]}-go{version}.od.gz"
        if key.exists():
            try:
                return parse_compact(gzip.decompress(key.read_bytes()).decode("utf-8", "replace")), True
            except (OSError, EOFError, ValueError):
                pass
    go = goroot / "bin" / "go"
    env = dict(os.environ, GOROOT=str(goroot), GOTOOLCHAIN="local")
    p = subprocess.run([str(go), "tool", "objdump", str(bin_path)], env=env, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"objdump failed: {p.stderr.decode(errors='replace').strip()[:300]}")
    text = compact(p.stdout.decode("utf-8", "replace"))
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(gzip.compress(text.encode(), compresslevel=6))
        tmp.replace(key)
    return parse_compact(text), False


def job(args):
    bin_path, m, ds, cache, examples = args
    t0 = time.time()
    goroot = Path(m["goroot"])
    if not (goroot / "bin" / "go").exists():
        return bin_path, m, None, f"no toolchain at {goroot}", 0.0, False
    try:
        od, cached = objdump_lines(Path(bin_path), goroot, m.get("go_version", "?"), cache)
    except RuntimeError as e:
        return bin_path, m, None, str(e), 0.0, False
    q = subprocess.run([ds, "disasm", "--no-annotate", bin_path], capture_output=True)
    if q.returncode != 0:
        return bin_path, m, None, "deferscope: " + q.stderr.decode(errors="replace").strip()[:300], 0.0, cached
    text = q.stdout.decode("utf-8", "replace")
    c, ex = compare(od, parse(text), m.get("goarch", "?"), examples, buildid_pcs(text))
    return bin_path, m, (c, dict(ex)), None, time.time() - t0, cached


def slack(n: int) -> int:
    """The most differences allowed in a category the baseline counts n
    in: none for a category that was identical; else a margin for the
    matrix being rebuilt elsewhere (other paths move data, and so which
    symbol a few addresses fall in)."""
    return 0 if n == 0 else n + max(10, n // 10)


def short(bin_path: str) -> str:
    """go<ver>/<platform>/<variant>/<program> of a matrix binary."""
    p = Path(bin_path).parent.parts
    return "/".join(p[-4:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix", default=str(CACHE / "matrix"))
    ap.add_argument("--bin", action="append", default=[], help="compare this binary (needs --goroot)")
    ap.add_argument("--goroot", help="GOROOT for --bin")
    ap.add_argument("--filter", default="", help="only entries whose path contains this")
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--top", type=int, default=15, help="difference categories shown per group")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--min", type=float, default=99.9, help="lowest identical %% per (version, arch)")
    ap.add_argument("--baseline", help="fail when a difference category grows past this file's counts")
    ap.add_argument("--update-baseline", help="write this run's difference counts to this file")
    ap.add_argument("--no-cache", action="store_true", help="run objdump, do not read or write the cache")
    ap.add_argument("--verbose", action="store_true", help="one line per binary")
    ap.add_argument("--deferscope", default=None)
    a = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    ds = a.deferscope or str(target / "release" / "deferscope")
    if not Path(ds).exists():
        print(f"no deferscope at {ds}; run cargo build --release", file=sys.stderr)
        return 2
    cache = None if a.no_cache else CACHE / "objdump"

    jobs = []
    if a.bin:
        if not a.goroot:
            print("--bin needs --goroot", file=sys.stderr)
            return 2
        ver = subprocess.run([str(Path(a.goroot) / "bin" / "go"), "env", "GOVERSION"], capture_output=True,
                             text=True, env=dict(os.environ, GOROOT=a.goroot, GOTOOLCHAIN="local")).stdout.strip()
        for b in a.bin:
            p = subprocess.run(["file", "-b", b], capture_output=True, text=True).stdout
            arch = "arm64" if ("aarch64" in p or "arm64" in p) else "amd64"
            jobs.append((b, {"goroot": a.goroot, "go_version": ver.removeprefix("go"), "goarch": arch}))
    else:
        root = Path(a.matrix)
        index = json.loads((root / "index.json").read_text())
        versions = set(filter(None, os.environ.get("DEFERSCOPE_VERSIONS", "").split(",")))
        platforms = set(filter(None, os.environ.get("DEFERSCOPE_PLATFORMS", "").split(",")))
        for e in index["entries"]:
            if e["stripped"] or a.filter not in e["path"]:
                continue
            if versions and e["go_version"] not in versions:
                continue
            if platforms and f"{e['goos']}/{e['goarch']}" not in platforms:
                continue
            d = root / e["path"]
            try:
                m = json.loads((d / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if (d / "bin").is_file():
                jobs.append((str(d / "bin"), m))
    # Largest first, so cmd/go does not finish last alone.
    jobs.sort(key=lambda j: -os.path.getsize(j[0]))

    t0 = time.time()
    groups: dict[tuple[str, str], Counter] = defaultdict(Counter)
    gex: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(list))
    platforms_seen: dict[tuple[str, str], set] = defaultdict(set)
    failed = 0
    ncached = 0
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        work = [(b, m, ds, cache, a.examples) for b, m in jobs]
        for bin_path, m, res, err, secs, cached in pool.map(job, work):
            ncached += cached
            if err:
                print(f"FAIL {bin_path}: {err}", file=sys.stderr)
                failed += 1
                continue
            c, ex = res
            key = (m.get("go_version", "?"), m.get("goarch", "?"))
            platforms_seen[key].add(m.get("goos", "?"))
            groups[key] += c
            for k, v in ex.items():
                if len(gex[key][k]) < a.examples:
                    gex[key][k].extend((bin_path, *x) for x in v[: a.examples - len(gex[key][k])])
            if a.verbose:
                better = sum(c["better:" + b] for b in BETTER)
                denom = c["total"] - better
                pct = 100.0 * c["same"] / denom if denom else 100.0
                print(f"{bin_path}: {pct:.4f}% ({c['same']}/{denom}) better {better} [{secs:.1f}s]")

    print(f"\n{len(jobs)} binaries, {ncached} objdump texts from the cache, {time.time() - t0:.0f}s")
    print("\n| Go | arch | platforms | instructions | identical | differ | better (?/desync/vex/adrp-sym/rip-sym) | noline |")
    print("|---|---|---|---|---|---|---|---|")
    worst = 100.0
    counts: dict[str, dict[str, int]] = {}
    for key in sorted(groups, key=lambda k: ([int(x) for x in k[0].split(".")], k[1])):
        c = groups[key]
        better = [c["better:" + b] for b in BETTER]
        denom = c["total"] - sum(better)
        pct = 100.0 * c["same"] / denom if denom else 100.0
        worst = min(worst, pct)
        plats = ",".join(sorted(platforms_seen[key]))
        print(f"| {key[0]} | {key[1]} | {plats} | {denom} | {pct:.4f}% | {denom - c['same']} | "
              f"{sum(better)} ({'/'.join(map(str, better))}) | {c['noline']} |")
        counts[f"{key[0]} {key[1]}"] = {k[4:]: v for k, v in sorted(c.items()) if k.startswith("cat:")}
    for key in sorted(groups, key=lambda k: ([int(x) for x in k[0].split(".")], k[1])):
        d = gex[key]
        cats = {k[4:]: v for k, v in groups[key].items() if k.startswith("cat:")}
        if not cats and not any(d.get("better:" + b) for b in ("adrp-sym", "rip-sym", "noline")):
            continue
        print(f"\n{key[0]} {key[1]}: differences by category")
        for cat, n in sorted(cats.items(), key=lambda kv: -kv[1])[: a.top]:
            print(f"  {n:7d}  {cat}")
            for b, pc, pos, ob, us in d.get(cat, [])[: a.examples]:
                print(f"           {pc:#x} {pos}: objdump {ob!r} ours {us!r}  [{short(b)}]")
        for cat in ("adrp-sym", "rip-sym", "noline"):
            for b, pc, pos, ob, us in d.get("better:" + cat, [])[:1]:
                n = groups[key]["noline" if cat == "noline" else "better:" + cat]
                print(f"  better {cat}: {n}, e.g. {pc:#x}: objdump {ob!r} ours {us!r}")

    status = 0
    if failed:
        print(f"\n{failed} binaries could not be compared", file=sys.stderr)
        status = 1
    if worst < a.min:
        print(f"\nbelow {a.min}% identical: worst group {worst:.4f}%", file=sys.stderr)
        status = 1
    if a.baseline:
        base = json.loads(Path(a.baseline).read_text())
        for g, cats in counts.items():
            allowed = base.get(g)
            if allowed is None:
                continue
            for cat, n in cats.items():
                limit = slack(allowed.get(cat, 0))
                if n > limit:
                    print(f"regression: {g} {cat}: {n} differences, baseline {allowed.get(cat, 0)}", file=sys.stderr)
                    status = 1
    if a.update_baseline:
        Path(a.update_baseline).write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
