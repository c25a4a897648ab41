#!/usr/bin/env bash
# Copy a small selection of matrix entries into fixtures/bin/ so that tests can
# run without building the matrix (scripts/build-matrix.py builds it).
#
#   scripts/collect-committed-fixtures.sh [--force]
#
# Each selected entry matrix/go<V>/<os>-<arch>/<variant>/<program>/ becomes
#   fixtures/bin/go<V>-<os>-<arch>-<variant>-<program>/{bin,defer.txt,meta.json}
# meta.json gets "matrix_entry" (where it came from) and its "twin" is rewritten
# to the twin's directory name under fixtures/bin, or null if the twin was not
# copied. Only our own fixture programs are copied, never cmd/go.
#
# bin + defer.txt + meta.json of the selection stay at or under BUDGET bytes
# (18 MB); optional entries are only added if they fit, and the script fails
# if the required ones do not.
#
# To avoid churning committed binaries, an entry already in fixtures/bin is
# kept as it is when the new build differs only in build IDs: same code and
# symbols (`go tool objdump` + `go tool nm`, minus go:buildid) and the same
# -d=defer lines per package (their package order varies from build to
# build). A stripped binary has no symbols to compare; it follows its
# unstripped twin when that is selected, else it is replaced. When an entry is
# replaced, other files in its directory (e.g. objdump-lines.txt, which the
# integration tests derive from the binary and cache there) are deleted as
# stale. --force replaces every entry.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
export MATRIX=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}/matrix
export OUT=$REPO/fixtures/bin
export BUDGET=${BUDGET:-18000000}
export FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# Required entries (matrix-relative), in order; then optional ones, added only
# while the budget allows.
export REQUIRED="
go1.22.10/linux-amd64/default/defers
go1.27.3/linux-arm64/stripped/defers
go1.19/windows-amd64/default/defers
go1.25.5/darwin-arm64/default/defers
go1.24.11/linux-amd64/default/rangefunc
go1.21.13/linux-amd64/noopt/defers
"
export OPTIONAL="
go1.27.3/linux-arm64/default/defers
"

exec python3 - <<'EOF'
import json, os, shutil, subprocess, sys
from pathlib import Path

matrix, out = Path(os.environ["MATRIX"]), Path(os.environ["OUT"])
budget, force = int(os.environ["BUDGET"]), os.environ["FORCE"] == "1"
required = os.environ["REQUIRED"].split()
optional = os.environ["OPTIONAL"].split()
FILES = ("bin", "defer.txt", "meta.json")

def die(msg):
    print(f"collect: {msg}", file=sys.stderr)
    sys.exit(1)

def name(e):
    return e.replace("/", "-")

def size(d):
    return sum((d / f).stat().st_size for f in FILES)

for e in required + optional:
    if e.endswith("/cmdgo"):
        die(f"refusing to copy cmd/go entry {e}")

selected, total = [], 0
for e in required:
    if not (matrix / e / "meta.json").exists():
        die(f"{matrix / e} is missing; run scripts/build-matrix.py first")
    total += size(matrix / e)
    selected.append(e)
if total > budget:
    die(f"required entries need {total} bytes > budget {budget}")
for e in optional:
    if not (matrix / e / "meta.json").exists():
        print(f"collect: optional {e} missing, skipped", file=sys.stderr)
    elif total + size(matrix / e) <= budget:
        total += size(matrix / e)
        selected.append(e)
    else:
        print(f"collect: optional {e} does not fit, skipped", file=sys.stderr)

def defer_blocks(p):
    blocks, cur = {}, None
    for line in p.read_text().splitlines():
        if line.startswith("# "):
            cur = line
            blocks.setdefault(cur, [])
        else:
            blocks.setdefault(cur, []).append(line)
    return blocks

def code(bin_path, goroot):
    """objdump + nm text without the build ID symbol, or None if unavailable."""
    go = Path(goroot) / "bin" / "go"
    env = {**os.environ, "GOROOT": goroot, "GOTOOLCHAIN": "local"}
    try:
        od = subprocess.run([go, "tool", "objdump", bin_path], env=env, capture_output=True, text=True)
        nm = subprocess.run([go, "tool", "nm", "-n", "-size", bin_path], env=env, capture_output=True, text=True)
    except OSError:
        return None
    if od.returncode or nm.returncode or not od.stdout:
        return None
    lines, skip = [], False
    for l in od.stdout.splitlines():
        if l.startswith("TEXT "):
            # go:buildid, go.buildid (<=1.19), _go:buildid (Mach-O)
            skip = "buildid(SB)" in l.split()[1] if len(l.split()) > 1 else False
        if not skip:
            lines.append(l)
    return "\n".join(lines) + "\n".join(l for l in nm.stdout.splitlines() if not l.endswith("buildid"))

verdict = {}  # entry -> True if the committed copy can be kept
def same_code(e):
    src, dst = matrix / e, out / name(e)
    if force or not all((dst / f).exists() for f in FILES):
        return False
    if defer_blocks(src / "defer.txt") != defer_blocks(dst / "defer.txt"):
        return False
    m_new = json.loads((src / "meta.json").read_text())
    m_old = json.loads((dst / "meta.json").read_text())
    if m_new.get("matrix_entry", e) != m_old.get("matrix_entry", e) or m_new["command"][1:-3] != m_old["command"][1:-3]:
        return False
    a, b = code(src / "bin", m_new["goroot"]), code(dst / "bin", m_new["goroot"])
    if a is not None and b is not None:
        return a == b
    twin = m_new.get("twin")
    if twin in selected and twin in verdict:
        return verdict[twin] and (src / "bin").stat().st_size == (dst / "bin").stat().st_size
    return False

# Unstripped entries first, so stripped ones can follow their twin's verdict.
for e in sorted(selected, key=lambda e: json.loads((matrix / e / "meta.json").read_text())["stripped"]):
    verdict[e] = same_code(e)

out.mkdir(parents=True, exist_ok=True)
for e in selected:
    src, dst = matrix / e, out / name(e)
    if verdict[e]:
        print(f"collect: {name(e)}: same code and -d=defer lines as the committed copy, kept", file=sys.stderr)
        continue
    if dst.exists():
        for f in dst.iterdir():
            if f.name not in FILES:
                print(f"collect: {name(e)}: replaced, removing derived {f.name}", file=sys.stderr)
                shutil.rmtree(f) if f.is_dir() else f.unlink()
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "bin", dst / "bin")
    os.chmod(dst / "bin", 0o755)
    shutil.copyfile(src / "defer.txt", dst / "defer.txt")
    m = json.loads((src / "meta.json").read_text())
    m["matrix_entry"] = e
    m["twin"] = name(m["twin"]) if m.get("twin") in selected else None
    (dst / "meta.json").write_text(json.dumps(m, indent=2) + "\n")
    print(f"collect: {name(e)}: copied", file=sys.stderr)

for d in sorted(out.iterdir()):
    if d.is_dir() and d.name not in {name(e) for e in selected}:
        print(f"collect: note: {d} is not in the selection (left alone)", file=sys.stderr)

grand = 0
print(f"{'entry':<45}{'bin+defer.txt+meta':>20}{'all files':>12}")
for e in selected:
    d = out / name(e)
    s3 = size(d)
    s_all = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    grand += s_all
    print(f"{name(e):<45}{s3:>20}{s_all:>12}")
print(f"{'total':<45}{sum(size(out / name(e)) for e in selected):>20}{grand:>12}  (budget {budget})")
EOF
