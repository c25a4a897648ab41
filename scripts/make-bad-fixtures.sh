#!/usr/bin/env bash
# Rebuild fixtures/bad/hello-386, the 32-bit Go binary of the bad-input tests.
set -euo pipefail
cd "$(dirname "$0")/.."
goroot=$(scripts/install-toolchains.sh 1.22.10 | awk '{print $2}')
cd fixtures/bad/src
GOROOT=$goroot GOTOOLCHAIN=local GO111MODULE=off GOOS=linux GOARCH=386 CGO_ENABLED=0 \
    GOCACHE=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}/gocache/go1.22.10 \
    "$goroot/bin/go" build -trimpath -ldflags='-s -w' -o ../hello-386 hello.go
ls -l ../hello-386
