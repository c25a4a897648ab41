#!/usr/bin/env python3
"""Write container image tarballs from a directory of files, without docker.

    scripts/make-image.py DIR --oci OUT.tar [--docker OUT.tar] [--bad]
                          [--oci-plain] [--prefix usr/local/bin]

Both layouts that `deferscope scan IMAGE` reads, from the same layers:

  --oci     an OCI image layout tarball (what `skopeo copy oci-archive:`
            writes): `oci-layout`, `index.json` -> image manifest ->
            config and layers in `blobs/sha256/<hex>`, layers as
            gzip-compressed tars (`application/vnd.oci.image.layer.v1.tar+gzip`),
            or with --oci-plain uncompressed (`...layer.v1.tar`);
  --docker  a `docker save` tarball: `manifest.json` (`Config`, `RepoTags`,
            `Layers`), `<diff id>/layer.tar` uncompressed with `VERSION` and
            `json` beside it, `<config digest>.json`, `repositories`.

Layer 1 holds every file of DIR under PREFIX/ (its relative paths kept),
plus decoys that the upper layer takes away again: a copy of DIR's first
file as `opt/decoy/deleted` and `opt/old/hidden`, and `etc/motd` (text).
Layer 2 deletes `opt/decoy/deleted` (whiteout `opt/decoy/.wh.deleted`),
makes `opt/old` opaque (`opt/old/.wh..wh..opq`) and adds
`opt/old/readme.txt`. So the image's visible executables are exactly
DIR's files: scanning the image must find the same binaries as scanning
DIR (scripts/bench-batch.py checks it).

--bad adds what a scan must report per entry without stopping: to layer 2
a binary cut to a third of its size (`opt/bad/truncated`), a copy of
/bin/ls (`opt/bad/not-go`, a non-Go ELF: skipped, not failed) and, as a
third layer, 64 KiB of random bytes (a layer that is not a tar).

Python 3.11, standard library only. Files are streamed; nothing but the
layers and the output is written to disk (in the output's directory).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def add_bytes(t: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = 0
    t.addfile(ti, io.BytesIO(data))


def add_dir(t: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = 0
    t.addfile(ti)


def add_file(t: tarfile.TarFile, name: str, src: Path, limit: int | None = None) -> None:
    size = src.stat().st_size if limit is None else limit
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o755
    ti.mtime = 0
    with open(src, "rb") as f:
        t.addfile(ti, f)


def files_of(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and not p.is_symlink())


def layer1(path: Path, src: Path, prefix: str) -> None:
    files = files_of(src)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        dirs: set[str] = set()
        for p in files:
            rel = f"{prefix}/{p.relative_to(src).as_posix()}"
            parts = rel.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    add_dir(t, d + "/")
            add_file(t, rel, p)
        add_dir(t, "opt/")
        add_dir(t, "opt/decoy/")
        add_file(t, "opt/decoy/deleted", files[0])
        add_dir(t, "opt/old/")
        add_file(t, "opt/old/hidden", files[0])
        add_dir(t, "etc/")
        add_bytes(t, "etc/motd", b"layer one\n")


def layer2(path: Path, src: Path, bad: bool) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        add_bytes(t, "opt/decoy/.wh.deleted", b"")
        add_dir(t, "opt/old/")
        add_bytes(t, "opt/old/.wh..wh..opq", b"")
        add_bytes(t, "opt/old/readme.txt", b"the old tools are gone\n")
        if bad:
            first = files_of(src)[0]
            add_dir(t, "opt/bad/")
            add_file(t, "opt/bad/truncated", first, limit=first.stat().st_size // 3)
            if Path("/bin/ls").exists():
                add_file(t, "opt/bad/not-go", Path("/bin/ls"))


def build(src: Path, oci: Path | None, docker: Path | None, bad: bool, prefix: str,
          oci_gzip: bool = True) -> None:
    out_dir = (oci or docker).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmpd = Path(tmp)
        plain = [tmpd / "l1.tar", tmpd / "l2.tar"]
        layer1(plain[0], src, prefix.strip("/"))
        layer2(plain[1], src, bad)
        junk = None
        if bad:
            junk = tmpd / "junk"
            junk.write_bytes(random.Random(15).randbytes(64 << 10))
        diff_ids = [sha256_file(p) for p in plain]
        if oci:
            write_oci(oci, plain, diff_ids, junk, tmpd, oci_gzip)
        if docker:
            write_docker(docker, plain, diff_ids, junk)


def config_json(diff_ids: list[str]) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
    }, sort_keys=True).encode()


def write_oci(out: Path, plain: list[Path], diff_ids: list[str], junk: Path | None, tmpd: Path,
              gzipped: bool) -> None:
    blobs: list[tuple[str, Path | bytes]] = []
    layers = []
    for i, p in enumerate(plain):
        if gzipped:
            blob = tmpd / f"l{i + 1}.tar.gz"
            with open(p, "rb") as f, gzip.GzipFile(blob, "wb", compresslevel=1, mtime=0) as g:
                shutil.copyfileobj(f, g, 1 << 20)
            d = sha256_file(blob)
        else:
            blob, d = p, diff_ids[i]
        blobs.append((d, blob))
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")
        layers.append({"mediaType": media, "digest": f"sha256:{d}", "size": blob.stat().st_size})
    ids = list(diff_ids)
    if junk is not None:
        d = sha256_file(junk)
        blobs.append((d, junk))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": f"sha256:{d}", "size": junk.stat().st_size})
        ids.append(d)
    cfg = config_json(ids)
    cfg_d = hashlib.sha256(cfg).hexdigest()
    blobs.append((cfg_d, cfg))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{cfg_d}", "size": len(cfg)},
        "layers": layers,
    }, sort_keys=True).encode()
    m_d = hashlib.sha256(manifest).hexdigest()
    blobs.append((m_d, manifest))
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": f"sha256:{m_d}", "size": len(manifest),
                       "platform": {"os": "linux", "architecture": "amd64"},
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    }, sort_keys=True).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        add_bytes(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(t, "index.json", index)
        add_dir(t, "blobs/")
        add_dir(t, "blobs/sha256/")
        for d, b in blobs:
            if isinstance(b, bytes):
                add_bytes(t, f"blobs/sha256/{d}", b)
            else:
                add_file(t, f"blobs/sha256/{d}", b)


def write_docker(out: Path, plain: list[Path], diff_ids: list[str], junk: Path | None) -> None:
    members = [(d, p) for d, p in zip(diff_ids, plain)]
    if junk is not None:
        members.append((sha256_file(junk), junk))
    cfg = config_json([d for d, _ in members])
    cfg_d = hashlib.sha256(cfg).hexdigest()
    manifest = json.dumps([{
        "Config": f"{cfg_d}.json", "RepoTags": ["deferscope-bench:latest"],
        "Layers": [f"{d}/layer.tar" for d, _ in members],
    }]).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for d, p in members:
            add_dir(t, f"{d}/")
            add_bytes(t, f"{d}/VERSION", b"1.0")
            add_bytes(t, f"{d}/json", json.dumps({"id": d}).encode())
            add_file(t, f"{d}/layer.tar", p)
        add_bytes(t, f"{cfg_d}.json", cfg)
        add_bytes(t, "manifest.json", manifest)
        add_bytes(t, "repositories", b'{"deferscope-bench":{"latest":"%s"}}' % members[-1][0].encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--oci", type=Path)
    ap.add_argument("--docker", type=Path)
    ap.add_argument("--bad", action="store_true")
    ap.add_argument("--oci-plain", action="store_true", help="uncompressed OCI layers")
    ap.add_argument("--prefix", default="usr/local/bin")
    a = ap.parse_args()
    if not a.oci and not a.docker:
        ap.error("give --oci and/or --docker")
    if not files_of(a.dir):
        ap.error(f"{a.dir}: no files")
    build(a.dir, a.oci, a.docker, a.bad, a.prefix, oci_gzip=not a.oci_plain)
    for p in (a.oci, a.docker):
        if p:
            print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
