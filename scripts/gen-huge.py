#!/usr/bin/env python3
"""Generate, and build, a huge Go program for scale benchmarks.

    scripts/gen-huge.py [--packages 170] [--funcs 250] [--stmts 40] [--go 1.22.10] [--out DIR]

The program has PACKAGES packages of FUNCS functions each. Function i of a
package holds, by i % 4: one open-coded defer; nine stack-allocated defers
(more than 8 disables open-coding); a heap-allocated defer in a loop plus a
stack-allocated top-level one; or no defer. STMTS arithmetic statements per
function set the code size. main calls every package's Run, so the linker
keeps everything. Prints the binary's path and size; the defaults give a
binary of about 100 MB. Used by scripts/bench.py --extra, never by tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DEFERSCOPE_CACHE") or Path.home() / ".cache" / "deferscope")


def body(i: int, stmts: int) -> str:
    lines = []
    for s in range(stmts):
        k = (i * 31 + s * 17) % 97 + 3
        lines.append(f"\ta = a*{k} + {s + i % 13}")
        if s % 5 == 0:
            lines.append(f"\tif a%{k} == {s % k} {{\n\t\ta ^= {k * 7}\n\t}}")
    return "\n".join(lines)


def func(i: int, stmts: int) -> str:
    kind = i % 4
    if kind == 0:
        d = "\tdefer func() { r += 1 }()\n"
    elif kind == 1:
        d = "".join(f"\tdefer add(&r, {j})\n" for j in range(9))
    elif kind == 2:
        d = "\tdefer add(&r, 1)\n\tfor j := 0; j < x%3; j++ {\n\t\tdefer add(&r, j)\n\t}\n"
    else:
        d = ""
    return f"func F{i}(x int) (r int) {{\n{d}\ta := x\n{body(i, stmts)}\n\treturn a + r\n}}\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=170)
    ap.add_argument("--funcs", type=int, default=250)
    ap.add_argument("--stmts", type=int, default=40)
    ap.add_argument("--go", default="1.22.10")
    ap.add_argument("--out", type=Path, default=CACHE / "huge")
    a = ap.parse_args()

    src = a.out / "src"
    (src / "p").mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text("module example.com/huge\n\ngo 1.21\n")
    for p in range(a.packages):
        d = src / "p" / f"p{p}"
        d.mkdir(exist_ok=True)
        funcs = "\n".join(func(i, a.stmts) for i in range(a.funcs))
        calls = "\n".join(f"\ts += F{i}(n + {i})" for i in range(a.funcs))
        (d / "p.go").write_text(
            f"package p{p}\n\nfunc add(p *int, v int) {{ *p += v }}\n\n{funcs}\n"
            f"// Run calls every function so the linker keeps them.\nfunc Run(n int) int {{\n\ts := 0\n{calls}\n\treturn s\n}}\n")
    imports = "\n".join(f'\tp{p} "example.com/huge/p/p{p}"' for p in range(a.packages))
    runs = "\n".join(f"\ts += p{p}.Run(len(os.Args))" for p in range(a.packages))
    (src / "main.go").write_text(f'package main\n\nimport (\n\t"os"\n{imports}\n)\n\nfunc main() {{\n\ts := 0\n{runs}\n\tos.Exit(s & 1)\n}}\n')

    goroot = subprocess.run([str(REPO / "scripts/install-toolchains.sh"), a.go], check=True,
                            capture_output=True, text=True).stdout.split()[1]
    env = dict(os.environ, GOROOT=goroot, GOTOOLCHAIN="local", GOFLAGS="-mod=mod",
               GOCACHE=str(CACHE / "gocache" / f"go{a.go}"), CGO_ENABLED="0")
    out = a.out / "huge"
    t = time.time()
    subprocess.run([f"{goroot}/bin/go", "build", "-o", str(out), "."], cwd=src, env=env, check=True)
    print(f"{out} {out.stat().st_size / 1e6:.1f} MB, built in {time.time() - t:.0f} s", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
