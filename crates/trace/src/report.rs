//! The result of a trace, and its text and JSON printers.

use std::io::{self, Write};

use deferscope_analyze::Kind;
use serde::Serialize;

/// How the traced program ended, or that it was left running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// deferscope detached and it kept running (`--pid`).
    Detached,
}

/// Executions of one defer site.
#[derive(Clone, Debug, Serialize)]
pub struct SiteCount {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    /// The site's pc as `deferscope scan` gives it (link-time address).
    pub pc: u64,
    pub count: u64,
    /// How it was counted: `counter` (by the program itself, in patched
    /// code) or `breakpoint`.
    pub method: &'static str,
    /// Counters mode, a site on a breakpoint: why it was not patched
    /// (`branch-target` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<&'static str>,
}

/// The counters mode's patching.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Patching {
    /// Points that count: defer sites, the three runtime probes, and every
    /// call of `runtime.gopanic` and `runtime.gorecover`.
    pub points: usize,
    /// Points the program counts itself.
    pub patched: usize,
    /// Points left on a breakpoint.
    pub breakpoints: usize,
    /// Breakpoints by reason, most first.
    pub fallbacks: Vec<ReasonCount>,
    /// Milliseconds spent planning the patches (decoding the functions,
    /// before the program starts).
    pub plan_ms: f64,
    /// Milliseconds with the program stopped while the block was mapped
    /// and the text patched.
    pub patch_ms: f64,
    /// Events the program counted itself.
    pub counted: u64,
    /// Why no point could be patched (the block could not be mapped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the trampoline block was mapped in the process, and its size
    /// (unmapped again at a detach).
    pub block_addr: Option<u64>,
    pub block_bytes: Option<u64>,
}

/// How many points fell back to a breakpoint for one reason.
#[derive(Clone, Debug, Serialize)]
pub struct ReasonCount {
    pub reason: &'static str,
    pub count: usize,
}

/// The most `_defer` records one call of a function had pending at once
/// (counters mode; docs/design.md §3.7).
#[derive(Clone, Debug, Serialize)]
pub struct PendingMax {
    pub function: String,
    /// The largest number of the frame's records pending at one of its
    /// `CALL runtime.deferreturn`, over every call that returned through
    /// one; `null` when its sites ran but no such call could be patched.
    pub max_pending: Option<u64>,
}

/// Calls of a runtime entry point made by one function.
#[derive(Clone, Debug, Serialize)]
pub struct ByFunction {
    pub function: String,
    pub count: u64,
}

/// Executed defers per kind, and the tracer's own work.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Totals {
    /// All defers executed.
    pub defers: u64,
    #[serde(rename = "open-coded")]
    pub open_coded: u64,
    #[serde(rename = "stack-allocated")]
    pub stack_allocated: u64,
    #[serde(rename = "heap-allocated")]
    pub heap_allocated: u64,
    /// Defer sites in the binary, and how many of them ran at least once.
    pub sites: usize,
    pub sites_run: usize,
    /// Breakpoint hits: defers plus runtime entry points (counters mode:
    /// those of the points left on breakpoints).
    pub breakpoint_hits: u64,
    /// Hits stepped over by emulating the instruction.
    pub emulated: u64,
    /// Hits stepped over by single-stepping with all threads stopped.
    pub single_stepped: u64,
}

impl Totals {
    pub fn add(&mut self, k: Kind, n: u64) {
        self.defers += n;
        match k {
            Kind::OpenCoded => self.open_coded += n,
            Kind::StackAllocated => self.stack_allocated += n,
            Kind::HeapAllocated => self.heap_allocated += n,
        }
    }
}

/// Everything a trace found. The JSON form is this value.
#[derive(Clone, Debug, Serialize)]
pub struct TraceReport {
    /// The traced binary.
    pub program: String,
    /// The process id (of the launched program, or the one attached to).
    pub pid: i32,
    /// `launch` or `attach`.
    pub mode: &'static str,
    /// `counters` or `breakpoints` (`--mode`).
    pub method: &'static str,
    pub go_version: Option<String>,
    /// Seconds from the first breakpoint planted to the end.
    pub elapsed_s: f64,
    /// Exit status, when the program exited.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal killed the program.
    pub signal: Option<i32>,
    /// Its name (`SIGTERM`).
    pub signal_name: Option<String>,
    /// deferscope detached and left the program running.
    pub detached: bool,
    pub totals: Totals,
    /// Calls of `runtime.gopanic`: every panic, explicit or from the runtime.
    pub panics: u64,
    /// Calls of `runtime.gorecover`: every call of `recover()`, whether or
    /// not a panic was in flight.
    pub recovers: u64,
    /// Calls of `runtime.recovery`: panics that a `recover()` stopped.
    pub recovered: u64,
    /// `panics` by the function that called `runtime.gopanic` (the runtime's
    /// own panics show as `runtime.sigpanic`, `runtime.panicIndex` ...).
    pub panics_by_function: Vec<ByFunction>,
    /// `recovers` by the function that called `recover()`.
    pub recovers_by_function: Vec<ByFunction>,
    /// Counters mode: per function with stack- or heap-allocated sites
    /// that had a record pending at a return (or whose returns could not
    /// be patched), the most records pending at once in one call, most
    /// first. Empty in breakpoints mode.
    pub pending_by_function: Vec<PendingMax>,
    /// Counters mode: what was patched (null in breakpoints mode).
    pub patching: Option<Patching>,
    /// Every defer site, hottest first (then by file and line).
    pub sites: Vec<SiteCount>,
    /// Estimated nanoseconds spent in defer machinery: each site's count
    /// times the cost of its kind (see [`TraceReport::estimate`]).
    pub est_defer_ns: Option<f64>,
    /// The cost table the estimate used, in words.
    pub cost_table: Option<String>,
}

impl TraceReport {
    /// Fill in the estimated time in defer machinery from a cost per
    /// executed defer of each kind, given the most records its function
    /// had pending at once when known ([`TraceReport::pending_by_function`]),
    /// and name the table it came from.
    pub fn estimate(&mut self, ns_per_defer: impl Fn(Kind, Option<u32>) -> f64, table: String) {
        let pending = |f: &str| {
            self.pending_by_function
                .iter()
                .find(|p| p.function == f)
                .and_then(|p| p.max_pending)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let ns = self
            .sites
            .iter()
            .map(|s| s.count as f64 * ns_per_defer(s.kind, pending(&s.function)))
            .sum();
        self.est_defer_ns = Some(ns);
        self.cost_table = Some(table);
    }

    /// deferscope's own exit status for this result: the launched
    /// program's exit status, or 128 + the signal that killed it; 0 in
    /// attach mode (the process is not ours).
    pub fn exit_status(&self) -> i32 {
        if self.mode == "attach" {
            0
        } else if let Some(c) = self.exit_code {
            c
        } else if let Some(s) = self.signal {
            128 + s
        } else {
            0
        }
    }

    pub fn end(&self) -> End {
        match (self.exit_code, self.signal) {
            (Some(c), _) => End::Exited(c),
            (None, Some(s)) => End::Signaled(s),
            _ => End::Detached,
        }
    }

    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self)?;
        writeln!(w)
    }

    /// The text report, in the compiler's location style:
    ///
    /// ```text
    /// trace: ./server (pid 4242), go1.22.10
    /// exit status 0 after 1.23 s; 21 614 defers executed at 30 of 312 sites
    ///   open-coded 18 826, stack-allocated 2 548, heap-allocated 240
    ///
    ///   count  kind             site
    ///   8 000  open-coded       /src/server/main.go:234  main.openSimple
    ///     240  heap-allocated   /src/server/main.go:260  main.loopDefers
    ///   (282 sites never ran)
    ///
    /// panics: 224 (192 recovered); recover() called 512 times
    ///   panics in main.recoverPanic 80, runtime.sigpanic 80
    ///   recover() in main.recoverInt 352, main.recoverErr 160
    /// tracing: counters: 2 320 of 2 320 points patched in 2.1 ms, 0 on breakpoints
    ///   22 312 events counted by the program; 0 breakpoint hits, 0 emulated
    /// ```
    ///
    /// (breakpoints mode: `tracing: breakpoints: 22 312 breakpoint hits,
    /// 22 312 emulated`.)
    pub fn write_text(&self, w: &mut impl Write) -> io::Result<()> {
        let t = &self.totals;
        let go = self
            .go_version
            .as_deref()
            .map(|v| format!(", {v}"))
            .unwrap_or_default();
        writeln!(w, "trace: {} (pid {}){go}", self.program, self.pid)?;
        let end = match self.end() {
            End::Exited(c) => format!("exit status {c}"),
            End::Signaled(s) => format!(
                "killed by {} (exit status {})",
                self.signal_name.as_deref().unwrap_or("a signal"),
                128 + s
            ),
            End::Detached => format!("detached from pid {}, still running,", self.pid),
        };
        writeln!(
            w,
            "{end} after {}; {} defers executed at {} of {} sites",
            seconds(self.elapsed_s),
            group(t.defers),
            group(t.sites_run as u64),
            group(t.sites as u64),
        )?;
        writeln!(
            w,
            "  open-coded {}, stack-allocated {}, heap-allocated {}",
            group(t.open_coded),
            group(t.stack_allocated),
            group(t.heap_allocated)
        )?;
        if let (Some(ns), Some(table)) = (self.est_defer_ns, &self.cost_table) {
            writeln!(
                w,
                "  about {} in defer machinery ({table})",
                duration_ns(ns)
            )?;
        }
        let run: Vec<&SiteCount> = self.sites.iter().filter(|s| s.count > 0).collect();
        if !run.is_empty() {
            let counts: Vec<String> = run.iter().map(|s| group(s.count)).collect();
            let locs: Vec<String> = run
                .iter()
                .map(|s| format!("{}:{}", s.file, s.line))
                .collect();
            let cw = counts.iter().map(String::len).max().unwrap_or(0).max(5);
            let lw = locs.iter().map(String::len).max().unwrap_or(0);
            // Counters mode names each site's method.
            let via = self.patching.is_some();
            let mw = if via { 12 } else { 0 };
            writeln!(w)?;
            let head = if via { "method" } else { "" };
            writeln!(w, "  {:>cw$}  {:<15}  {head:<mw$}site", "count", "kind")?;
            for ((s, c), l) in run.iter().zip(&counts).zip(&locs) {
                let m = if via { s.method } else { "" };
                writeln!(
                    w,
                    "  {c:>cw$}  {:<15}  {m:<mw$}{l:<lw$}  {}",
                    s.kind.as_str(),
                    s.function
                )?;
            }
            let idle = self.sites.len() - run.len();
            if idle > 0 {
                writeln!(w, "  ({} sites never ran)", group(idle as u64))?;
            }
            writeln!(w)?;
        }
        writeln!(
            w,
            "panics: {} ({} recovered); recover() called {} times",
            group(self.panics),
            group(self.recovered),
            group(self.recovers)
        )?;
        for (what, v) in [
            ("panics in", &self.panics_by_function),
            ("recover() in", &self.recovers_by_function),
        ] {
            if v.is_empty() {
                continue;
            }
            let mut parts: Vec<String> = v
                .iter()
                .take(6)
                .map(|b| format!("{} {}", b.function, group(b.count)))
                .collect();
            if v.len() > 6 {
                parts.push(format!("{} more", v.len() - 6));
            }
            writeln!(w, "  {what} {}", parts.join(", "))?;
        }
        self.write_pending(w)?;
        self.write_tracing(w)
    }

    /// `records pending at return, most in one call: main.f 100, ...`.
    fn write_pending(&self, w: &mut impl Write) -> io::Result<()> {
        let v = &self.pending_by_function;
        if v.is_empty() {
            return Ok(());
        }
        let mut parts: Vec<String> = v
            .iter()
            .take(6)
            .map(|p| {
                let n = p.max_pending.map_or("?".to_string(), group);
                format!("{} {n}", p.function)
            })
            .collect();
        if v.len() > 6 {
            parts.push(format!("{} more", v.len() - 6));
        }
        writeln!(
            w,
            "records pending at return, most in one call: {}",
            parts.join(", ")
        )
    }

    /// The last lines: how the counting went.
    fn write_tracing(&self, w: &mut impl Write) -> io::Result<()> {
        let t = &self.totals;
        let stepped = if t.single_stepped > 0 {
            format!(
                ", {} single-stepped with the other threads stopped",
                group(t.single_stepped)
            )
        } else {
            String::new()
        };
        match &self.patching {
            None => writeln!(
                w,
                "tracing: breakpoints: {} breakpoint hits, {} emulated{stepped}",
                group(t.breakpoint_hits),
                group(t.emulated)
            )?,
            Some(p) => {
                let why: Vec<String> = p
                    .fallbacks
                    .iter()
                    .map(|r| format!("{} {}", r.reason, group(r.count as u64)))
                    .collect();
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join(", "))
                };
                writeln!(
                    w,
                    "tracing: counters: {} of {} points patched in {:.1} ms, {} on breakpoints{why}",
                    group(p.patched as u64),
                    group(p.points as u64),
                    p.patch_ms,
                    group(p.breakpoints as u64),
                )?;
                writeln!(
                    w,
                    "  {} events counted by the program; {} breakpoint hits, {} emulated{stepped}",
                    group(p.counted),
                    group(t.breakpoint_hits),
                    group(t.emulated)
                )?;
            }
        }
        Ok(())
    }
}

/// `1234567` as `1 234 567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    let head = match s.len() % 3 {
        0 => 3,
        r => r,
    };
    for (i, c) in s.chars().enumerate() {
        if i >= head && (i - head) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A short duration for people: µs, ms or s.
fn duration_ns(ns: f64) -> String {
    if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        seconds(ns / 1e9)
    }
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1 000");
        assert_eq!(group(3412907), "3 412 907");
    }

    fn report(exit_code: Option<i32>, signal: Option<i32>) -> TraceReport {
        let mut totals = Totals::default();
        totals.add(Kind::OpenCoded, 8000);
        totals.add(Kind::HeapAllocated, 2);
        totals.sites = 3;
        totals.sites_run = 2;
        TraceReport {
            program: "./prog".into(),
            pid: 42,
            mode: "launch",
            method: "counters",
            go_version: Some("go1.22.10".into()),
            elapsed_s: 1.5,
            exit_code,
            signal,
            signal_name: signal.map(|_| "SIGTERM".into()),
            detached: false,
            totals,
            panics: 3,
            recovers: 5,
            recovered: 2,
            panics_by_function: vec![ByFunction {
                function: "main.boom".into(),
                count: 3,
            }],
            recovers_by_function: vec![],
            pending_by_function: vec![PendingMax {
                function: "main.loop".into(),
                max_pending: Some(100),
            }],
            patching: Some(Patching {
                points: 6,
                patched: 5,
                breakpoints: 1,
                fallbacks: vec![ReasonCount {
                    reason: "branch-target",
                    count: 1,
                }],
                plan_ms: 1.0,
                patch_ms: 0.5,
                counted: 8000,
                error: None,
                block_addr: Some(0x2160_0000),
                block_bytes: Some(8192),
            }),
            sites: vec![
                SiteCount {
                    function: "main.hot".into(),
                    file: "/src/main.go".into(),
                    line: 10,
                    kind: Kind::OpenCoded,
                    pc: 0x401000,
                    count: 8000,
                    method: "counter",
                    fallback: None,
                },
                SiteCount {
                    function: "main.loop".into(),
                    file: "/src/main.go".into(),
                    line: 20,
                    kind: Kind::HeapAllocated,
                    pc: 0x402000,
                    count: 2,
                    method: "breakpoint",
                    fallback: Some("branch-target"),
                },
                SiteCount {
                    function: "main.cold".into(),
                    file: "/src/main.go".into(),
                    line: 30,
                    kind: Kind::StackAllocated,
                    pc: 0x403000,
                    count: 0,
                    method: "counter",
                    fallback: None,
                },
            ],
            est_defer_ns: None,
            cost_table: None,
        }
    }

    #[test]
    fn text_lists_sites_that_ran() {
        let mut out = Vec::new();
        report(Some(0), None).write_text(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("exit status 0 after 1.50 s; 8 002 defers executed at 2 of 3 sites"));
        assert!(s.contains("panics: 3 (2 recovered); recover() called 5 times"));
        assert!(s.contains("  panics in main.boom 3\n"), "{s}");
        assert!(
            s.contains("8 000  open-coded       counter     /src/main.go:10  main.hot"),
            "{s}"
        );
        assert!(
            s.contains("tracing: counters: 5 of 6 points patched in 0.5 ms, 1 on breakpoints: branch-target 1"),
            "{s}"
        );
        assert!(s.contains("  8 000 events counted by the program; 0 breakpoint hits"));
        assert!(!s.contains("main.cold"));
        assert!(s.contains("(1 sites never ran)"));
        // Summary first, then the sites hottest first, then panics.
        let at = |needle: &str| s.find(needle).unwrap();
        assert!(at("exit status") < at("main.hot") && at("main.hot") < at("main.loop"));
        assert!(at("main.loop") < at("panics:"));
    }

    #[test]
    fn exit_status_follows_the_program() {
        assert_eq!(report(Some(3), None).exit_status(), 3);
        let mut attached = report(Some(3), None);
        attached.mode = "attach";
        assert_eq!(attached.exit_status(), 0);
        let r = report(None, Some(15));
        assert_eq!(r.exit_status(), 143);
        let mut out = Vec::new();
        r.write_text(&mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("killed by SIGTERM (exit status 143)"));
    }

    #[test]
    fn json_shape() {
        let mut out = Vec::new();
        report(Some(0), None).write_json(&mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["exit_code"], 0);
        assert!(v["signal"].is_null());
        assert_eq!(v["totals"]["open-coded"], 8000);
        assert_eq!(v["sites"][0]["count"], 8000);
        assert_eq!(v["sites"][0]["kind"], "open-coded");
        for k in ["function", "file", "line", "kind", "pc", "count", "method"] {
            assert!(v["sites"][1].get(k).is_some(), "{k}");
        }
        assert_eq!(v["sites"][1]["fallback"], "branch-target");
        assert!(v["sites"][0].get("fallback").is_none());
        assert_eq!(v["method"], "counters");
        assert_eq!(v["patching"]["fallbacks"][0]["reason"], "branch-target");
        assert_eq!(v["panics"], 3);
        assert_eq!(v["recovers"], 5);
    }
}
