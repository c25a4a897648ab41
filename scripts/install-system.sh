#!/usr/bin/env bash
# Debian packages the test suite uses, each installed only when the command
# it provides is missing (a second run installs nothing and needs no
# network):
#
#   binutils         objdump, strip   real-binaries.py (x86-64 calls), build-matrix.py (strip twins)
#   llvm             llvm-objdump     real-binaries.py (arm64 ELF, Mach-O calls), llvm-strip for strip twins
#   qemu-user        qemu-aarch64     profile tests of linux/arm64 workloads
#   chromium         chromium         tests/html/run.sh (the HTML report in a real browser)
#   chromium-driver  chromedriver     tests/html/run.sh
#   bsdutils         script           progress tests (a pseudo-terminal)
#
# Debian's golang-1.19-go is installed by install-toolchains.sh, beside the
# PyPI toolchains. Without root (and no sudo) or without network, a missing
# package is reported and skipped: the tests that need it say so and skip.
#
#   scripts/install-system.sh
set -uo pipefail

# package:command pairs.
want=(
  binutils:objdump
  binutils:strip
  llvm:llvm-objdump
  qemu-user:qemu-aarch64
  chromium:chromium
  chromium-driver:chromedriver
  bsdutils:script
)

missing=()
for pc in "${want[@]}"; do
  pkg=${pc%%:*}
  cmd=${pc#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ ${#missing[@]} = 0 ]; then
  echo "system packages: all present"
  exit 0
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "system packages: missing ${missing[*]}; not root and no sudo: skipped" >&2
    exit 0
  fi
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
  # The package lists may be missing or stale on a fresh machine.
  if ! "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 ||
    ! "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "system packages: could not install ${missing[*]} (offline?): skipped" >&2
  fi
fi
exit 0
