#!/usr/bin/env bash
# Copy a small selection of matrix entries into fixtures/bin/ so that tests can
# run without building the matrix (scripts/build-matrix.py builds it).
#
#   scripts/collect-committed-fixtures.sh
#
# Each selected entry matrix/go<V>/<os>-<arch>/<variant>/<program>/ becomes
#   fixtures/bin/go<V>-<os>-<arch>-<variant>-<program>/{bin,defer.txt,meta.json}
# meta.json gets "matrix_entry" (where it came from) and its "twin" is rewritten
# to the twin's directory name under fixtures/bin, or null if the twin was not
# copied. Only our own fixture programs are copied, never cmd/go.
# The total stays at or under BUDGET bytes (18 MB); optional entries are only
# added if they fit, and the script fails if the required ones do not.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
MATRIX=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}/matrix
OUT=$REPO/fixtures/bin
BUDGET=${BUDGET:-18000000}

# Required entries (matrix-relative), in order.
REQUIRED=(
    go1.22.10/linux-amd64/default/defers
    go1.27.3/linux-arm64/stripped/defers
    go1.19/windows-amd64/default/defers
    go1.25.5/darwin-arm64/default/defers
    go1.24.11/linux-amd64/default/rangefunc
    go1.21.13/linux-amd64/noopt/defers
)
# Optional entries, added only while the budget allows.
OPTIONAL=(
    go1.27.3/linux-arm64/default/defers # unstripped twin of the stripped one above
)

name_of() { echo "${1//\//-}"; }

size_of() { # total bytes of the three files of a matrix entry
    local d=$MATRIX/$1
    stat -c %s "$d/bin" "$d/defer.txt" "$d/meta.json" | awk '{s+=$1} END {print s}'
}

for e in "${REQUIRED[@]}" "${OPTIONAL[@]}"; do
    case $e in */cmdgo) echo "collect: refusing to copy cmd/go entry $e" >&2; exit 1 ;; esac
done

selected=()
total=0
for e in "${REQUIRED[@]}"; do
    if [ ! -f "$MATRIX/$e/meta.json" ]; then
        echo "collect: $MATRIX/$e is missing; run scripts/build-matrix.py first" >&2
        exit 1
    fi
    total=$((total + $(size_of "$e")))
    selected+=("$e")
done
if [ "$total" -gt "$BUDGET" ]; then
    echo "collect: required entries need $total bytes > budget $BUDGET" >&2
    exit 1
fi
for e in "${OPTIONAL[@]}"; do
    [ -f "$MATRIX/$e/meta.json" ] || { echo "collect: optional $e missing, skipped" >&2; continue; }
    s=$(size_of "$e")
    if [ $((total + s)) -le "$BUDGET" ]; then
        total=$((total + s))
        selected+=("$e")
    else
        echo "collect: optional $e ($s bytes) does not fit, skipped" >&2
    fi
done

rm -rf "$OUT"
mkdir -p "$OUT"
for e in "${selected[@]}"; do
    n=$(name_of "$e")
    mkdir -p "$OUT/$n"
    cp "$MATRIX/$e/bin" "$MATRIX/$e/defer.txt" "$OUT/$n/"
    python3 - "$MATRIX/$e/meta.json" "$OUT/$n/meta.json" "$e" "${selected[@]}" <<'EOF'
import json, sys
src, dst, entry, *selected = sys.argv[1:]
m = json.load(open(src))
m["matrix_entry"] = entry
twin = m.get("twin")
m["twin"] = twin.replace("/", "-") if twin and twin in selected else None
open(dst, "w").write(json.dumps(m, indent=2) + "\n")
EOF
done

printf '%-45s %10s\n' entry bytes
for e in "${selected[@]}"; do
    n=$(name_of "$e")
    printf '%-45s %10s\n' "$n" "$(du -cb "$OUT/$n"/* | tail -1 | cut -f1)"
done
printf '%-45s %10s\n' total "$(du -cb "$OUT"/*/* | tail -1 | cut -f1)"
