//! `deferscope bench`: measure what each kind of defer costs on this
//! machine, with the Go toolchain at hand, and save the table for
//! `deferscope explain`.
//!
//! It writes a small module into a temporary directory: package `deferbench`
//! with one benchmark per row (a direct call; an open-coded defer; a heap
//! defer, made by a loop that runs once; a heap defer whose closure captures
//! a variable, so the closure is heap-allocated too; panic + recover) and
//! package `deferbench/stack`, compiled with `-d=noopendefer`, whose one
//! top-level defer is therefore stack-allocated. `go test -bench` runs them
//! with `-d=defer` on both packages; the compiler's own lines confirm each
//! function got the intended kind before any figure is trusted. A third
//! package, `deferbench/cgocall`, built with `CGO_ENABLED=1`, times a call
//! into C against a call of a Go function: the crossing a deferred C call
//! adds (design.md §7.4).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use deferscope_analyze::cost::{CostTable, PendingCost};

use crate::cli::{BenchArgs, OutputFormat};

const GO_MOD: &str = "module deferbench\n\ngo 1.19\n";

const STACK_GO: &str = r#"// Package stack is compiled with -d=noopendefer: its defer is stack-allocated.
package stack

var Sink int

//go:noinline
func F() { Sink++ }

//go:noinline
func StackAllocated() {
	defer F()
}
"#;

const BENCH_GO: &str = r#"package deferbench

import (
	"errors"
	"strconv"
	"testing"

	"deferbench/stack"
)

var sink int

var errBench = errors.New("bench")

//go:noinline
func noDefer() { stack.F() }

//go:noinline
func openCoded() {
	defer stack.F()
}

//go:noinline
func heapAllocated(n int) {
	for i := 0; i < n; i++ {
		defer stack.F()
	}
}

//go:noinline
func heapClosure(n int) {
	for i := 0; i < n; i++ {
		x := n
		defer func() { sink += x }()
	}
}

//go:noinline
func panicRecover() {
	defer func() { recover() }()
	panic(errBench)
}

func BenchmarkDirectCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		noDefer()
	}
}

func BenchmarkOpenCoded(b *testing.B) {
	for i := 0; i < b.N; i++ {
		openCoded()
	}
}

func BenchmarkStackAllocated(b *testing.B) {
	for i := 0; i < b.N; i++ {
		stack.StackAllocated()
	}
}

func BenchmarkHeapAllocated(b *testing.B) {
	for i := 0; i < b.N; i++ {
		heapAllocated(1)
	}
}

func BenchmarkHeapClosure(b *testing.B) {
	for i := 0; i < b.N; i++ {
		heapClosure(1)
	}
}

func BenchmarkPanicRecover(b *testing.B) {
	for i := 0; i < b.N; i++ {
		panicRecover()
	}
}

// heapAllocated(n) leaves n records pending at its return: the cost per
// defer as a function of n.
func BenchmarkHeapPending(b *testing.B) {
	for _, n := range pendingCounts {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				heapAllocated(n)
			}
		})
	}
}

var pendingCounts = []int{1, 10, 100, 1000}

// heapMoved's closure captures total by reference and escapes with the
// record: total is moved to the heap, one more allocation per call.
//
//go:noinline
func heapMoved(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		defer func() { total++ }()
	}
	return total
}

func BenchmarkHeapMoved(b *testing.B) {
	for i := 0; i < b.N; i++ {
		heapMoved(1)
	}
}
"#;

const CGO_GO: &str = r#"// Package cgocall measures a call into C (cgo) against a call of a Go
// function: the crossing a deferred C call adds.
package cgocall

/*
static void cnoop(void) {}
*/
import "C"

//go:noinline
func goNoop() {}

// GoCall calls a Go function.
//
//go:noinline
func GoCall() { goNoop() }

// CgoCall calls a C function through its _Cfunc_ wrapper and runtime.cgocall.
//
//go:noinline
func CgoCall() { C.cnoop() }
"#;

const CGO_TEST_GO: &str = r#"package cgocall

import "testing"

func BenchmarkGoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		GoCall()
	}
}

func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		CgoCall()
	}
}
"#;

/// Runs of each benchmark; the fastest is kept ([`parse_bench`]).
const COUNT: &str = "3";

/// The trip counts of `BenchmarkHeapPending` (records pending at return).
const PENDING_COUNTS: [u32; 4] = [1, 10, 100, 1000];

/// (function, expected -d=defer kind): what the benchmark relies on.
const EXPECTED_KINDS: [(&str, &str); 6] = [
    ("stack.go:11", "stack-allocated"),
    ("bench_test.go:20", "open-coded"),
    ("bench_test.go:26", "heap-allocated"),
    ("bench_test.go:34", "heap-allocated"),
    ("bench_test.go:40", "open-coded"),
    ("bench_test.go:101", "heap-allocated"),
];

/// The compiler's `-m` line that the heap-moved row relies on.
const MOVED: &str = "bench_test.go:99:2: moved to heap: total";

fn write_module(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("stack"))?;
    std::fs::write(dir.join("go.mod"), GO_MOD)?;
    std::fs::write(dir.join("stack/stack.go"), STACK_GO)?;
    std::fs::write(dir.join("bench_test.go"), BENCH_GO)?;
    std::fs::create_dir_all(dir.join("cgocall"))?;
    std::fs::write(dir.join("cgocall/cgo.go"), CGO_GO)?;
    std::fs::write(dir.join("cgocall/cgo_test.go"), CGO_TEST_GO)?;
    Ok(())
}

/// The cgo crossing: `BenchmarkCgoCall - BenchmarkGoCall` of package
/// `deferbench/cgocall`, built with `CGO_ENABLED=1` (a C compiler must be
/// installed; without one the table has no cgo row and a line on stderr
/// says why).
fn cgo_crossing(go: &Path, dir: &Path, benchtime: &str) -> Option<f64> {
    let out = Command::new(go)
        .args(["test", "-run", "^$", "-bench", ".", "-benchtime", benchtime])
        .arg("./cgocall")
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "1")
        .output();
    let m = match out {
        Ok(o) if o.status.success() => parse_bench(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            eprintln!(
                "deferscope bench: no cgo figure (go test with CGO_ENABLED=1 failed: {})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return None;
        }
        Err(e) => {
            eprintln!("deferscope bench: no cgo figure ({e})");
            return None;
        }
    };
    Some((m.get("CgoCall")? - m.get("GoCall")?).max(0.0))
}

/// `BenchmarkX-4   123   5.60 ns/op` -> ("X", 5.6); of a benchmark run
/// several times (`-count`), the fastest run: the one least disturbed by
/// other load on the machine.
fn parse_bench(out: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 4 && f[0].starts_with("Benchmark") && f[3] == "ns/op" {
            let name = f[0].trim_start_matches("Benchmark");
            let name = name.rsplit_once('-').map_or(name, |(n, _)| n);
            if let Ok(v) = f[2].parse::<f64>() {
                let e = m.entry(name.to_owned()).or_insert(v);
                *e = e.min(v);
            }
        }
    }
    m
}

pub fn run(args: BenchArgs) -> Result<()> {
    let go: PathBuf = args.go.clone().unwrap_or_else(|| PathBuf::from("go"));
    let version = Command::new(&go)
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .with_context(|| format!("cannot run {} (install Go or pass --go)", go.display()))?;
    let version = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or("unknown")
        .to_owned();
    let dir = std::env::temp_dir().join(format!("deferscope-bench-{}", std::process::id()));
    write_module(&dir)?;
    let result = (|| -> Result<CostTable> {
        let out = Command::new(&go)
            .args([
                "test",
                "-run",
                "^$",
                "-bench",
                ".",
                "-benchtime",
                &args.benchtime,
                "-count",
                COUNT,
                "-gcflags=deferbench=-d=defer -m",
                "-gcflags=deferbench/stack=-d=defer,noopendefer",
                ".",
            ])
            .current_dir(&dir)
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("CGO_ENABLED", "0")
            .output()
            .context("go test")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("go test -bench failed: {}{}", stderr.trim(), stdout.trim());
        }
        // -d=defer lines come on stderr (compile) or stdout (go test
        // merges them for test packages): check both.
        let all = format!("{stderr}\n{stdout}");
        for (pos, kind) in EXPECTED_KINDS {
            let ok = all
                .lines()
                .any(|l| l.contains(&format!("{pos}:")) && l.ends_with(&format!("{kind} defer")));
            if !ok {
                bail!(
                    "the compiler did not make {pos} a {kind} defer; the benchmark would \
                     measure the wrong thing (-d=defer output: {})",
                    all.trim()
                );
            }
        }
        if !all.lines().any(|l| l.ends_with(MOVED)) {
            bail!(
                "the compiler did not move heapMoved's total to the heap ({MOVED}); \
                 the benchmark would measure the wrong thing"
            );
        }
        let m = parse_bench(&stdout);
        let get = |k: &str| {
            m.get(k)
                .copied()
                .with_context(|| format!("no ns/op for Benchmark{k} in: {stdout}"))
        };
        Ok(CostTable {
            origin: "measured".into(),
            source: format!(
                "deferscope bench on this machine with {version}, go test -benchtime {} -count {COUNT} (fastest run)",
                args.benchtime
            ),
            go_version: Some(version.clone()),
            direct_call_ns: get("DirectCall")?,
            open_coded_ns: get("OpenCoded")?,
            stack_allocated_ns: get("StackAllocated")?,
            heap_allocated_ns: get("HeapAllocated")?,
            heap_closure_ns: Some(get("HeapClosure")?),
            panic_recover_ns: Some(get("PanicRecover")?),
            cgo_call_ns: cgo_crossing(&go, &dir, &args.benchtime),
            heap_pending_ns: PENDING_COUNTS
                .iter()
                .map(|&n| {
                    Ok(PendingCost {
                        pending: n,
                        ns: get(&format!("HeapPending/N={n}"))? / f64::from(n),
                    })
                })
                .collect::<Result<_>>()?,
            heap_moved_ns: Some(get("HeapMoved")?),
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let table = result?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Json => {
            writeln!(out, "{}", serde_json_like(&table, &CostTable::published()))?;
        }
        OutputFormat::Text => text_table(&mut out, &table)?,
    }
    if !args.no_save {
        let path = deferscope_analyze::cost::save(&table)?;
        if args.format == OutputFormat::Text {
            writeln!(
                out,
                "saved to {} (deferscope explain uses it)",
                path.display()
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The measured table beside the published one, one row per figure.
fn text_table(out: &mut impl Write, table: &CostTable) -> io::Result<()> {
    let p = CostTable::published();
    writeln!(out, "ns per executed defer, including the call")?;
    writeln!(out, "{:<18}{:>12}{:>12}", "", "this machine", "published")?;
    let row = |o: &mut dyn Write, k: &str, a: Option<f64>, b: Option<f64>| {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        writeln!(o, "{k:<18}{:>12}{:>12}", f(a), f(b))
    };
    row(
        &mut *out,
        "direct call",
        Some(table.direct_call_ns),
        Some(p.direct_call_ns),
    )?;
    row(
        &mut *out,
        "open-coded",
        Some(table.open_coded_ns),
        Some(p.open_coded_ns),
    )?;
    row(
        &mut *out,
        "stack-allocated",
        Some(table.stack_allocated_ns),
        Some(p.stack_allocated_ns),
    )?;
    row(
        &mut *out,
        "heap-allocated",
        Some(table.heap_allocated_ns),
        Some(p.heap_allocated_ns),
    )?;
    row(
        &mut *out,
        "heap + closure",
        table.heap_closure_ns,
        p.heap_closure_ns,
    )?;
    row(
        &mut *out,
        "panic + recover",
        table.panic_recover_ns,
        p.panic_recover_ns,
    )?;
    row(
        &mut *out,
        "+ cgo crossing",
        table.cgo_call_ns,
        p.cgo_call_ns,
    )?;
    for pc in &table.heap_pending_ns {
        let k = format!("heap, {} pending", pc.pending);
        row(&mut *out, &k, Some(pc.ns), p.pending_ns(pc.pending))?;
    }
    row(
        &mut *out,
        "heap + moved var",
        table.heap_moved_ns,
        p.heap_moved_ns,
    )?;
    writeln!(out, "this machine: {}", table.source)?;
    writeln!(out, "published: {}", p.source)?;
    Ok(())
}

/// `{"measured": ..., "published": ...}` without a serde_json dependency
/// in this crate: the report crate prints each table.
fn serde_json_like(measured: &CostTable, published: &CostTable) -> String {
    format!(
        "{{\"measured\": {}, \"published\": {}}}",
        deferscope_report::explain::cost_table_json(measured),
        deferscope_report::explain::cost_table_json(published)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_test_output() {
        let m = parse_bench(
            "goos: linux\nBenchmarkOpenCoded-2   \t212345678\t         5.60 ns/op\nPASS\n",
        );
        assert_eq!(m.get("OpenCoded"), Some(&5.6));
        let m = parse_bench(
            "BenchmarkHeapPending/N=10-2 \t 100 \t 35.1 ns/op\n\
             BenchmarkHeapPending/N=10-2 \t 100 \t 37.5 ns/op\n",
        );
        assert_eq!(m.get("HeapPending/N=10"), Some(&35.1));
    }
}
