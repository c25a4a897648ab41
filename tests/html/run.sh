#!/usr/bin/env bash
# Browser test of the HTML report (`deferscope scan --format html`, and
# the page of many binaries of `deferscope scan --format html DIR`):
# installs Debian's chromium (scripts/install-system.sh, if missing) and
# playwright-core from npm into the cache, writes reports and JSON for a
# few binaries, and runs report.test.mjs with node's test runner.
#
#   tests/html/run.sh [DEFERSCOPE-BINARY]
#
# Binaries: from the matrix (scripts/build-matrix.py) go1.22.10
# linux-amd64 default/defers, default/explain, stripped/defers, cmd/go,
# go1.27.3 linux-arm64 stripped/defers; the committed fixtures when the
# matrix is absent; and, with a Go toolchain, a program built in a
# directory whose name is markup (escaping) and the program in
# tests/html/layout (long package paths, names and file names). Screenshots and reports go to
# $CARGO_TARGET_DIR/html-test (default target/html-test).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}
target=${CARGO_TARGET_DIR:-$root/target}
bin=${1:-$target/release/deferscope}
out=$target/html-test
mkdir -p "$out"

[ -x /usr/bin/chromium ] || "$root/scripts/install-system.sh"
[ -x /usr/bin/chromium ] || { echo "tests/html: no /usr/bin/chromium (Debian's chromium)" >&2; exit 1; }

npmdir=$CACHE/html-test/npm
mkdir -p "$npmdir"
if ! cmp -s "$here/package-lock.json" "$npmdir/package-lock.json" || [ ! -d "$npmdir/node_modules/playwright-core" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$npmdir/"
  (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error)
fi

[ -x "$bin" ] || (cd "$root" && cargo build --release -p deferscope)

cases=()
add() { # name binary [extra scan flags...]
  [ -f "$2" ] || { echo "skip $1: no $2"; return 0; }
  local name=$1 b=$2 start end
  shift 2
  start=$(date +%s%N)
  "$bin" scan --format html "$@" "$b" > "$out/$name.html"
  end=$(date +%s%N)
  "$bin" scan --format json "$@" "$b" > "$out/$name.json"
  "$bin" explain --format json "$@" "$b" > "$out/$name.explain.json"
  printf '%-28s %8d bytes html in %5d ms\n' "$name" "$(stat -c %s "$out/$name.html")" $(( (end - start) / 1000000 ))
  cases+=("$name")
}
m=$CACHE/matrix
add amd64-defers "$m/go1.22.10/linux-amd64/default/defers/bin"
add amd64-explain "$m/go1.22.10/linux-amd64/default/explain/bin"
add amd64-stripped-defers "$m/go1.22.10/linux-amd64/stripped/defers/bin"
add arm64-stripped-defers "$m/go1.27.3/linux-arm64/stripped/defers/bin"
add cmdgo "$m/go1.22.10/linux-amd64/default/cmdgo/bin"
if [ ${#cases[@]} = 0 ]; then
  add committed-amd64-defers "$root/fixtures/bin/go1.22.10-linux-amd64-default-defers/bin"
  add committed-arm64-stripped "$root/fixtures/bin/go1.27.3-linux-arm64-stripped-defers/bin"
fi

hostile=""
goroot=$CACHE/toolchains/go1.22.10/go
gobuild() { # source-dir output
  (cd "$1" && GOROOT=$goroot GOTOOLCHAIN=local GOFLAGS= GOCACHE=$CACHE/gocache/html-test \
    PATH=$goroot/bin:$PATH go build -o "$2" .)
}
if [ -x "$goroot/bin/go" ]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  src="$dir/a</script><img src=x onerror=\"window.pwned=1\">&amp;"
  mkdir -p "$src"
  cat > "$src/main.go" <<'GO'
package main

import "fmt"

func loop(n int) {
	for i := 0; i < n; i++ {
		defer fmt.Println(i)
	}
}

func main() {
	defer fmt.Println("bye")
	loop(2)
}
GO
  printf 'module example.com/hostile\n\ngo 1.22\n' > "$src/go.mod"
  gobuild "$src" "$dir/bin"
  # --full-paths: the recorded paths, which hold the markup directory
  # (module-relative ones start at the module path).
  add hostile-path "$dir/bin" --full-paths
  hostile=hostile-path
  # Long package paths, function names and file names (the layout test).
  cp -r "$here/layout" "$dir/layout"
  gobuild "$dir/layout" "$dir/layout.bin"
  add long-names "$dir/layout.bin"
fi

# A page of many binaries (scan of a directory): the committed fixtures.
batchdir=$out/batch-input
rm -rf "$batchdir" && mkdir -p "$batchdir"
for f in "$root"/fixtures/bin/*/bin; do cp "$f" "$batchdir/$(basename "$(dirname "$f")")"; done
"$bin" scan --format html "$batchdir" > "$out/batch.html"
"$bin" scan --format json "$batchdir" > "$out/batch.json"
printf '%-28s %8d bytes html\n' batch "$(stat -c %s "$out/batch.html")"

python3 - "$out" "$hostile" "${cases[@]}" > "$out/manifest.json" <<'PY'
import json, sys
out, hostile, names = sys.argv[1], sys.argv[2], sys.argv[3:]
print(json.dumps({"cases": [
    {"name": n, "html": f"{out}/{n}.html", "json": f"{out}/{n}.json",
     "explain": f"{out}/{n}.explain.json",
     "screenshot": f"{out}/{n}.png", "hostile": n == hostile} for n in names],
    "batch": [{"name": "batch", "html": f"{out}/batch.html", "json": f"{out}/batch.json",
               "screenshot": f"{out}/batch.png"}]}))
PY

HTML_TEST_MANIFEST=$out/manifest.json HTML_TEST_NODE_MODULES=$npmdir/node_modules \
  node --test --test-reporter=spec "$here/report.test.mjs"
