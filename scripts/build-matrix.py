#!/usr/bin/env python3
"""Build the deferscope test matrix: Go binaries plus the compiler's -d=defer output.

    scripts/build-matrix.py [--versions 1.22.10,1.27.3] [--platforms linux/amd64,...]
                            [--only-fixtures | --only-cmdgo] [--jobs N]

Every entry lands in

    ${DEFERSCOPE_CACHE:-~/.cache/deferscope}/matrix/go<VERSION>/<goos>-<goarch>/<variant>/<program>/
        bin         the binary (ELF, PE or Mach-O)
        defer.txt   the stderr of `go build -gcflags=all=-d=defer ...`, exactly as printed
        meta.json   how it was built (see Entry.meta below)

meta.json is written last, so an entry is complete iff meta.json exists. An
entry is skipped when its meta.json exists and its "hash" (fixture sources,
argv, env, toolchain version) matches; otherwise it is rebuilt.

Toolchains come from scripts/install-toolchains.sh ("VERSION GOROOT" lines).
Each toolchain gets its own GOCACHEs, one per build-directory parent
(<gocache-root>/go<VERSION>-<dir>-<hash>): the build cache replays compiler
output with paths already made relative to the directory of the build that
first compiled the package, so cmd/go (built in GOROOT/src/cmd/go) must not
share a cache with the fixtures. As a guard, every path in defer.txt must name
an existing file, else the entry fails. Builds of one toolchain run one after
the other (the `strip`/`stripped` twins depend on `default`); up to --jobs
toolchains are built in parallel.

Combinations that cannot work are excluded up front (listed in
matrix/index.json with the reason), never counted as failures.

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "go"
INSTALL = REPO / "scripts" / "install-toolchains.sh"

CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
MATRIX = CACHE / "matrix"

ALL_VERSIONS = ["1.19", "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"]
ALL_PLATFORMS = ["linux/amd64", "linux/arm64", "windows/amd64", "darwin/arm64"]
FIXTURE_PROGRAMS = ["defers", "rangefunc", "cgo", "explain", "semantics"]
FIXTURE_VARIANTS = ["default", "stripped", "strip", "trimpath", "pie", "noopt", "noopendefer", "race"]
CMDGO_PLATFORMS = ["linux/amd64", "linux/arm64"]

D = "-gcflags=all=-d=defer"
# variant -> extra `go build` flags (before -o). "strip" is not a go build.
VARIANT_FLAGS = {
    "default": [D],
    "stripped": [D, "-ldflags=-s -w"],
    "trimpath": ["-trimpath", D],
    "pie": ["-buildmode=pie", D],
    "noopt": ["-gcflags=all=-N -l -d=defer"],
    # Two -d keys are comma separated (cmd/compile/internal/base/flag.go, Go 1.17+).
    "noopendefer": ["-gcflags=all=-d=defer,noopendefer"],
    "race": ["-race", D],
}

# Bump to force a rebuild of everything (e.g. after changing how entries are made).
RECIPE_VERSION = 1


def vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def tree_hash(root: Path) -> dict[str, str]:
    """sha256 of every regular file under root, keyed by relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = sha256_bytes(p.read_bytes())
    return out


# --------------------------------------------------------------------------
# strip tools


@dataclasses.dataclass
class StripTool:
    path: str
    version: str


def _tool_version(path: str) -> str:
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        return (r.stdout.splitlines() or ["?"])[0].strip()
    except OSError:
        return "?"


def _gnu_strip_targets(path: str) -> set[str]:
    try:
        r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    except OSError:
        return set()
    for line in (r.stdout + r.stderr).splitlines():
        if "supported targets:" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def find_strip_tools(allow_llvm: bool) -> dict[str, StripTool | None]:
    """Which strip can handle each platform's binary format.

    GNU strip from Debian's x86-64 binutils knows elf64-x86-64 and pe-x86-64,
    but not aarch64 ELF ("Unable to recognise the format") nor Mach-O. For those
    llvm-strip is used when it is installed (and --no-llvm-strip is not given).
    """
    tools: dict[str, StripTool | None] = {p: None for p in ALL_PLATFORMS}
    gnu = shutil.which("strip")
    if gnu:
        targets = _gnu_strip_targets(gnu)
        ver = _tool_version(gnu)
        if "elf64-x86-64" in targets:
            tools["linux/amd64"] = StripTool(gnu, ver)
        if "pe-x86-64" in targets or "pei-x86-64" in targets:
            tools["windows/amd64"] = StripTool(gnu, ver)
        if "elf64-littleaarch64" in targets:
            tools["linux/arm64"] = StripTool(gnu, ver)
        if "mach-o-arm64" in targets:
            tools["darwin/arm64"] = StripTool(gnu, ver)
    if allow_llvm:
        llvm = shutil.which("llvm-strip") or next(
            (shutil.which(f"llvm-strip-{n}") for n in range(30, 10, -1) if shutil.which(f"llvm-strip-{n}")),
            None,
        )
        if llvm:
            ver = _tool_version(llvm)
            ver2 = subprocess.run([llvm, "--version"], capture_output=True, text=True).stdout
            ver = " ".join(l.strip() for l in ver2.splitlines() if l.strip())[:120] or ver
            for p in ("linux/arm64", "darwin/arm64"):
                if tools[p] is None:
                    tools[p] = StripTool(llvm, ver)
    return tools


# --------------------------------------------------------------------------
# entries


@dataclasses.dataclass
class Toolchain:
    version: str
    goroot: str


@dataclasses.dataclass
class Entry:
    tc: Toolchain
    platform: str  # goos/goarch
    variant: str
    program: str  # defers | rangefunc | cgo | explain | semantics | cmdgo
    phase: str  # fixtures | cmdgo
    gocache_root: Path
    strip_tool: StripTool | None = None

    @property
    def goos(self) -> str:
        return self.platform.split("/")[0]

    @property
    def goarch(self) -> str:
        return self.platform.split("/")[1]

    @property
    def rel(self) -> str:
        return f"go{self.tc.version}/{self.goos}-{self.goarch}/{self.variant}/{self.program}"

    @property
    def dir(self) -> Path:
        return MATRIX / self.rel

    @property
    def twin_rel(self) -> str | None:
        if self.variant in ("stripped", "strip"):
            return f"go{self.tc.version}/{self.goos}-{self.goarch}/default/{self.program}"
        return None

    @property
    def stripped(self) -> bool:
        return self.variant in ("stripped", "strip")

    # -- how to build ------------------------------------------------------

    def build_dir(self) -> Path:
        if self.program == "cmdgo":
            return Path(self.tc.goroot) / "src" / "cmd" / "go"
        if self.program == "rangefunc" and vtuple(self.tc.version) < (1, 23):
            # go.mod says `go 1.23`; a 1.22 toolchain with GOTOOLCHAIN=local refuses it.
            # Build a persistent copy whose go.mod says `go 1.22` (with GOEXPERIMENT=rangefunc).
            return MATRIX / "_src" / f"go{self.tc.version}" / self.program
        return FIXTURES / self.program

    def gocache_dir(self) -> Path:
        """One GOCACHE per toolchain *and* build-directory parent.

        The build cache stores a package's compiler output with paths already
        shortened relative to the cwd of the build that first compiled it, and
        replays it verbatim: std lines first compiled by the cmd/go build
        (cwd GOROOT/src/cmd/go) come back as "../../internal/poll/fd_unix.go"
        in a fixture build whose cwd is elsewhere, and vice versa. Builds whose
        directories are siblings (fixtures/go/{defers,rangefunc,cgo}) shorten
        identically, so they may share a cache; anything else gets its own.
        """
        parent = self.build_dir().parent
        tag = hashlib.sha256(str(parent).encode()).hexdigest()[:8]
        return self.gocache_root / f"go{self.tc.version}-{parent.name}-{tag}"

    def env(self) -> dict[str, str]:
        e = {
            "GOROOT": self.tc.goroot,
            "GOTOOLCHAIN": "local",
            "GOFLAGS": "-mod=mod",
            "GOPROXY": "off",
            "GOCACHE": str(self.gocache_dir()),
            "GOOS": self.goos,
            "GOARCH": self.goarch,
            "CGO_ENABLED": "1" if (self.program == "cgo" or self.variant == "race") else "0",
        }
        if self.program == "rangefunc" and vtuple(self.tc.version) < (1, 23):
            e["GOEXPERIMENT"] = "rangefunc"
        return e

    def argv(self) -> list[str]:
        if self.variant == "strip":
            assert self.strip_tool
            return [self.strip_tool.path, "-o", str(self.dir / "bin"), str(MATRIX / self.twin_rel / "bin")]
        go = str(Path(self.tc.goroot) / "bin" / "go")
        pkg = "cmd/go" if self.program == "cmdgo" else "."
        return [go, "build", *VARIANT_FLAGS[self.variant], "-o", str(self.dir / "bin"), pkg]

    def hash(self) -> str:
        h = {
            "recipe": RECIPE_VERSION,
            "go_version": self.tc.version,
            "rel": self.rel,
            "argv": self.argv(),
            # GOCACHE only changes speed, not output.
            "env": {k: v for k, v in self.env().items() if k != "GOCACHE"},
            "build_dir": str(self.build_dir()),
        }
        if self.program != "cmdgo":
            h["sources"] = tree_hash(FIXTURES / self.program)
        if self.variant == "strip":
            h["strip_tool"] = dataclasses.asdict(self.strip_tool)
            twin_meta = MATRIX / self.twin_rel / "meta.json"
            h["twin_hash"] = json.loads(twin_meta.read_text())["hash"] if twin_meta.exists() else None
            # The twin's recipe hash alone can match a bin rebuilt since
            # (an interrupted run, a cache restored in part): the strip is
            # of these exact bytes.
            twin_bin = MATRIX / self.twin_rel / "bin"
            h["twin_bin"] = sha256_bytes(twin_bin.read_bytes()) if twin_bin.exists() else None
        return sha256_bytes(json.dumps(h, sort_keys=True).encode())

    def up_to_date(self) -> bool:
        meta = self.dir / "meta.json"
        if not meta.exists() or not (self.dir / "bin").exists() or not (self.dir / "defer.txt").exists():
            return False
        try:
            return json.loads(meta.read_text()).get("hash") == self.hash()
        except (OSError, ValueError):
            return False

    # -- doing it ----------------------------------------------------------

    def prepare_src(self) -> None:
        bd = self.build_dir()
        if self.program == "rangefunc" and vtuple(self.tc.version) < (1, 23):
            if bd.exists():
                shutil.rmtree(bd)
            shutil.copytree(FIXTURES / self.program, bd)
            gomod = bd / "go.mod"
            lines = ["go 1.22" if l.strip().startswith("go 1.") else l for l in gomod.read_text().splitlines()]
            gomod.write_text("\n".join(lines) + "\n")

    def build(self) -> tuple[bool, float, str]:
        t0 = time.monotonic()
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        for f in ("meta.json", "FAILED", "bin", "defer.txt"):
            (d / f).unlink(missing_ok=True)
        env_over = self.env()
        argv = self.argv()
        meta_extra: dict = {}
        if self.variant == "strip":
            twin = MATRIX / self.twin_rel
            if not (twin / "meta.json").exists():
                (d / "FAILED").write_text(f"twin {self.twin_rel} missing (its build failed?)\n")
                return False, time.monotonic() - t0, "twin missing"
            twin_meta = json.loads((twin / "meta.json").read_text())
            r = subprocess.run(argv, capture_output=True, text=True)
            ok = r.returncode == 0
            if not ok:
                (d / "FAILED").write_text(f"$ {argv}\n{r.stdout}{r.stderr}")
                return False, time.monotonic() - t0, (r.stderr.strip().splitlines() or ["?"])[-1]
            shutil.copyfile(twin / "defer.txt", d / "defer.txt")
            build_dir = twin_meta["build_dir"]
            env_over = {}
            meta_extra = {
                "unresolved_paths": twin_meta.get("unresolved_paths", []),
                "strip_tool": self.strip_tool.version,
                "go_build_command": twin_meta["command"],
                "go_build_env": twin_meta["env"],
            }
        else:
            self.prepare_src()
            build_dir = str(self.build_dir())
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
            env.update(env_over)
            # The go command prints paths relative to os.Getwd(), which trusts $PWD.
            env["PWD"] = build_dir
            r = subprocess.run(argv, cwd=build_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            (d / "defer.txt").write_bytes(r.stderr)
            ok = r.returncode == 0 and (d / "bin").exists()
            if ok:
                bad = unresolved_paths(r.stderr, Path(build_dir), Path(self.tc.goroot))
                meta_extra["unresolved_paths"] = bad
                if bad:
                    # Most likely replayed compiler output from a GOCACHE shared
                    # with a build run from another directory (see gocache_dir).
                    (d / "FAILED").write_text(
                        f"defer.txt names {len(bad)} files that do not exist relative to {build_dir}:\n"
                        + "".join(f"  {b}\n" for b in bad)
                        + f"GOCACHE={env_over['GOCACHE']} was probably also used by a build in another directory.\n"
                    )
                    return False, time.monotonic() - t0, f"{len(bad)} unresolvable paths in defer.txt, e.g. {bad[0]}"
            if not ok:
                (d / "FAILED").write_bytes(
                    f"$ cd {build_dir} && {' '.join(f'{k}={v}' for k, v in env_over.items())} {argv}\n".encode()
                    + r.stdout
                    + r.stderr
                )
                tail = r.stderr.decode(errors="replace").strip().splitlines()
                return False, time.monotonic() - t0, (tail or ["?"])[-1]
        meta = {
            "go_version": self.tc.version,
            "goos": self.goos,
            "goarch": self.goarch,
            "variant": self.variant,
            "program": self.program,
            "build_dir": build_dir,
            "goroot": self.tc.goroot,
            "goroot_real": os.path.realpath(self.tc.goroot),
            "gcflags_scope": "all",
            "stripped": self.stripped,
            "twin": self.twin_rel,
            "command": argv,
            "env": env_over,
            "hash": self.hash(),
            **meta_extra,
            "seconds": round(time.monotonic() - t0, 2),
            "bin_size": (d / "bin").stat().st_size,
        }
        tmp = d / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        tmp.replace(d / "meta.json")
        return True, time.monotonic() - t0, ""


# --------------------------------------------------------------------------
# the matrix


def exclusion(version: str, platform: str, variant: str, program: str, strip_tools) -> str | None:
    """Why this combination cannot be built, or None if it can."""
    v = vtuple(version)
    goos = platform.split("/")[0]
    if program == "cmdgo":
        if platform not in CMDGO_PLATFORMS:
            return "cmd/go is only built for linux/amd64 and linux/arm64"
        if variant not in ("default", "stripped"):
            return "cmd/go is only built as default + stripped"
        return None
    if program == "rangefunc" and v < (1, 22):
        return "range-over-func needs Go 1.22 (GOEXPERIMENT=rangefunc) or 1.23+"
    if program == "cgo":
        if platform != "linux/amd64":
            return "cgo fixture is linux/amd64 only (no cross C toolchain)"
        if variant not in ("default", "stripped"):
            return "cgo fixture is only built as default + stripped"
    if program == "semantics" and variant not in ("default", "stripped"):
        return "semantics fixture is only built as default + stripped"
    if variant == "race" and platform != "linux/amd64":
        return "-race is only built on linux/amd64 (needs cgo + a C toolchain for the target)"
    if variant == "pie" and goos != "linux":
        return "pie is only built for linux"
    if variant == "strip" and strip_tools.get(platform) is None:
        return f"no strip tool on this machine handles {platform} binaries"
    return None


def plan(versions, platforms, toolchains, phases, gocache_root, strip_tools):
    entries: list[Entry] = []
    excluded: list[dict] = []
    for v in versions:
        tc = toolchains[v]
        if "fixtures" in phases:
            for prog in FIXTURE_PROGRAMS:
                for plat in platforms:
                    for var in FIXTURE_VARIANTS:
                        why = exclusion(v, plat, var, prog, strip_tools)
                        if why:
                            excluded.append({"go_version": v, "platform": plat, "variant": var, "program": prog, "reason": why})
                            continue
                        entries.append(Entry(tc, plat, var, prog, "fixtures", gocache_root, strip_tools.get(plat)))
        if "cmdgo" in phases:
            for plat in platforms:
                for var in ("default", "stripped"):
                    why = exclusion(v, plat, var, "cmdgo", strip_tools)
                    if why:
                        continue
                    entries.append(Entry(tc, plat, var, "cmdgo", "cmdgo", gocache_root))
    return entries, excluded


def get_toolchains(versions: list[str]) -> dict[str, Toolchain]:
    r = subprocess.run(["bash", str(INSTALL), *versions], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"build-matrix: {INSTALL} failed (exit {r.returncode})")
    tcs = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            tcs[parts[0]] = Toolchain(parts[0], parts[1])
    return tcs


DEFER_LINE = re.compile(rb"^(.+?):(\d+)(?::(\d+))?: (open-coded|stack-allocated|heap-allocated) defer$")


def unresolved_paths(defer_txt: bytes, build_dir: Path, goroot: Path) -> list[str]:
    """Paths in -d=defer lines that do not name an existing file.

    Relative paths are relative to build_dir; with -trimpath they are import
    paths (std: GOROOT/src/<path>; main module: <module path>/<file>).
    """
    modpath = None
    gomod = build_dir / "go.mod"
    if gomod.exists():
        m = re.search(r"^module\s+(\S+)", gomod.read_text(), re.M)
        modpath = m.group(1) if m else None
    bad: set[str] = set()
    seen: set[bytes] = set()
    for line in defer_txt.splitlines():
        m = DEFER_LINE.match(line)
        if not m or m.group(1) in seen:
            continue
        seen.add(m.group(1))
        f = os.fsdecode(m.group(1))
        cands = [Path(f)] if os.path.isabs(f) else [build_dir / f, goroot / "src" / f]
        if modpath and f.startswith(modpath + "/"):
            cands.append(build_dir / f[len(modpath) + 1:])
        if not any(c.is_file() for c in cands):
            bad.add(f)
    return sorted(bad)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", default=",".join(ALL_VERSIONS))
    ap.add_argument("--platforms", default=",".join(ALL_PLATFORMS))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--only-fixtures", action="store_true")
    g.add_argument("--only-cmdgo", action="store_true")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="toolchains built in parallel (default: min(2, cores))")
    ap.add_argument("--gocache-root", type=Path, default=CACHE / "gocache",
                    help="GOCACHEs are DIR/go<VERSION>-<build-dir parent>-<hash> (default: %(default)s)")
    ap.add_argument("--no-llvm-strip", action="store_true",
                    help="use GNU strip only (skips the strip variant for linux/arm64 and darwin/arm64)")
    ap.add_argument("--force", action="store_true", help="rebuild entries even if up to date")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    versions = [v for v in args.versions.split(",") if v]
    platforms = [p for p in args.platforms.split(",") if p]
    for p in platforms:
        if p not in ALL_PLATFORMS:
            sys.exit(f"build-matrix: unknown platform {p} (known: {', '.join(ALL_PLATFORMS)})")
    phases = ["fixtures", "cmdgo"]
    if args.only_fixtures:
        phases = ["fixtures"]
    if args.only_cmdgo:
        phases = ["cmdgo"]

    phase_secs: dict[str, float] = {}
    t0 = time.monotonic()
    toolchains = get_toolchains(versions)
    phase_secs["toolchains"] = time.monotonic() - t0
    missing = [v for v in versions if v not in toolchains]
    if missing:
        sys.exit(f"build-matrix: no toolchain for {', '.join(missing)}")
    strip_tools = find_strip_tools(not args.no_llvm_strip)

    entries, excluded = plan(versions, platforms, toolchains, phases, args.gocache_root, strip_tools)
    MATRIX.mkdir(parents=True, exist_ok=True)

    lock = threading.Lock()
    results: dict[str, dict] = {}  # rel -> {status, seconds, phase, why}

    def log(msg: str) -> None:
        with lock:
            print(msg, flush=True)

    def run_chain(chain: list[Entry]) -> None:
        for e in chain:
            if not args.force and e.up_to_date():
                results[e.rel] = {"status": "skipped", "seconds": 0.0, "phase": e.phase}
                if args.verbose:
                    log(f"  up to date  {e.rel}")
                continue
            ok, secs, why = e.build()
            results[e.rel] = {"status": "built" if ok else "failed", "seconds": secs, "phase": e.phase, "why": why}
            log(f"  {'built ' if ok else 'FAILED'} {secs:6.1f}s  {e.rel}{'  (' + why + ')' if why else ''}")

    for phase in phases:
        pe = [e for e in entries if e.phase == phase]
        if not pe:
            continue
        chains: dict[str, list[Entry]] = {}
        for e in pe:
            chains.setdefault(e.tc.version, []).append(e)
        # Longest chains first so the last worker is not left alone with a big one.
        order = sorted(chains.values(), key=len, reverse=True)
        log(f"== phase {phase}: {len(pe)} entries, {len(chains)} toolchains, {args.jobs} in parallel")
        t = time.monotonic()
        with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            for f in [ex.submit(run_chain, c) for c in order]:
                f.result()
        phase_secs[phase] = time.monotonic() - t

    # index.json: everything that exists in the matrix plus the exclusions.
    index = {"entries": [], "excluded": excluded}
    for meta in sorted(MATRIX.glob("go*/*/*/*/meta.json")):
        m = json.loads(meta.read_text())
        index["entries"].append({"path": meta.parent.relative_to(MATRIX).as_posix(),
                                 **{k: m[k] for k in ("go_version", "goos", "goarch", "variant", "program", "stripped", "twin")}})
    (MATRIX / "index.json").write_text(json.dumps(index, indent=1) + "\n")

    # Summary.
    print()
    print(f"{'phase':<12}{'built':>7}{'skipped':>9}{'failed':>8}{'excluded':>10}{'seconds':>10}")
    print(f"{'toolchains':<12}{'':>7}{'':>9}{'':>8}{'':>10}{phase_secs['toolchains']:>10.1f}")
    nfail = 0
    for phase in phases:
        rs = [r for r in results.values() if r["phase"] == phase]
        b = sum(r["status"] == "built" for r in rs)
        s = sum(r["status"] == "skipped" for r in rs)
        f = sum(r["status"] == "failed" for r in rs)
        x = len(excluded) if phase == "fixtures" else 0
        nfail += f
        print(f"{phase:<12}{b:>7}{s:>9}{f:>8}{x:>10}{phase_secs.get(phase, 0):>10.1f}")
    print(f"{'total':<12}{'':>7}{'':>9}{nfail:>8}{'':>10}{time.monotonic() - t0:>10.1f}")
    # Where the time went, per (program, variant).
    agg: dict[str, list[float]] = {}
    for rel, r in results.items():
        if r["status"] != "skipped":
            _, plat, var, prog = rel.split("/")
            agg.setdefault(f"{prog}/{var}", []).append(r["seconds"])
    if agg:
        print("\nbuild seconds by program/variant (sum, n):")
        for k, v in sorted(agg.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {k:<24}{sum(v):>8.1f}  {len(v):>4}")
    if excluded:
        reasons: dict[str, int] = {}
        for x in excluded:
            reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
        print("\nexcluded up front:")
        for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  {n:>4}  {r}")
    if nfail:
        print("\nfailed (see FAILED in each entry dir):")
        for rel, r in sorted(results.items()):
            if r["status"] == "failed":
                print(f"  {rel}: {r['why']}")
    print(f"\nmatrix: {MATRIX}")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
