//! `deferscope trace`: traced counts against the program's own counters.
//!
//! `fixtures/go/trace` counts its own defers: every deferred call adds one
//! to a counter keyed by its defer statement's `file:line` (from
//! `runtime.Caller`), and the program prints the counters, its panics, its
//! `recover()` calls and the recoveries at the end. Those lines are the
//! oracle: the traced counts of every `main.*` site must equal them exactly,
//! with 8 goroutines on GOMAXPROCS >= 2.
//!
//! The fixture is built here with every toolchain installed under
//! `~/.cache/deferscope/toolchains` (`scripts/install-toolchains.sh`, run by
//! `scripts/test-all.sh`), for linux/amd64, with `GOTOOLCHAIN=local` and a
//! per-version `GOCACHE`. Without a toolchain those trials are skipped with a
//! message; the committed-fixture and error trials still run.
//!
//! Per toolchain:
//! - `counts`: launch, exact counts (emulated step-over);
//! - `single_step`: the same with every hit single-stepped with all threads
//!   stopped (the fallback path);
//! - `attach_exact`: attach to a waiting process, let it run its workload,
//!   detach on SIGINT to deferscope; exact counts, and the process finishes
//!   normally;
//! - `detach`: attach to a running process for one second; its output is
//!   the same as untraced;
//! - `transparent::{exit_code,signal,stdin,sigint}`: stdout and exit status
//!   are the same with and without tracing;
//! - `exitkill`: a launched program dies with a SIGKILLed tracer;
//! - `cleanup::*`: when deferscope fails mid-trace (`--fail-after-hits`),
//!   the breakpoints come out and the program runs on to the same output.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{cache_root, committed_root, entries, go_cmd, repo_root, toolchains};

/// Longest any traced run may take before the trial fails.
pub(crate) const LIMIT: Duration = Duration::from_secs(120);

/// `fixtures/go/trace` built with one toolchain, once per test run.
pub(crate) fn fixture(version: &str, goroot: &Path) -> Result<PathBuf, Failed> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    // One build at a time: they are CPU-bound and the machine is small.
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    let r = built
        .entry(version.to_owned())
        .or_insert_with(|| build_fixture(version, goroot));
    r.clone().map_err(Failed::from)
}

fn build_fixture(version: &str, goroot: &Path) -> Result<PathBuf, String> {
    let src = repo_root().join("fixtures/go/trace");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("trace-fixtures")
        .join(format!("go{version}"));
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let bin = out.join("trace");
    let r = go_cmd(goroot, version, "trace", &src)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .env("GOFLAGS", "-mod=mod")
        .env("GOOS", "linux")
        .env("GOARCH", "amd64")
        .output()
        .map_err(|e| format!("go{version}: cannot run go build: {e}"))?;
    if !r.status.success() {
        return Err(format!(
            "go{version}: go build failed: {}",
            String::from_utf8_lossy(&r.stderr)
        ));
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------
// Processes with time limits.

/// Run `cmd` with `input` on stdin; fail if it takes longer than `limit`.
pub(crate) fn output_within(
    mut cmd: Command,
    input: &[u8],
    limit: Duration,
) -> Result<Output, Failed> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_within(&mut child, limit)?;
    let _ = w.join();
    Ok(Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

pub(crate) fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

pub(crate) fn wait_within(child: &mut Child, limit: Duration) -> Result<ExitStatus, Failed> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("pid {} still running after {limit:?}; killed", child.id()).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of a child's stderr, as they come.
pub(crate) fn lines_of(r: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for a line containing `want`; the lines seen are returned on failure.
pub(crate) fn expect_line(
    rx: &mpsc::Receiver<String>,
    want: &str,
    what: &str,
) -> Result<(), Failed> {
    let end = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(want) => return Ok(()),
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    Err(format!("{what}: no line with {want:?}; saw {seen:?}").into())
}

pub(crate) fn kill(pid: u32, sig: &str) -> Result<(), Failed> {
    let s = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    if !s.success() {
        return Err(format!("kill {sig} {pid} failed").into());
    }
    Ok(())
}

/// The signal that killed the process, on Unix.
pub(crate) fn signal_of(s: ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        s.signal()
    }
    #[cfg(not(unix))]
    {
        let _ = s;
        None
    }
}

pub(crate) fn describe(s: ExitStatus) -> String {
    match (s.code(), signal_of(s)) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(sig)) => format!("signal {sig}"),
        _ => format!("{s:?}"),
    }
}

// ---------------------------------------------------------------------------
// The oracle.

/// The program's own counters.
#[derive(Debug, Default)]
pub(crate) struct Own {
    pub(crate) sites: BTreeMap<String, u64>,
    pub(crate) panics: u64,
    pub(crate) recovers: u64,
    pub(crate) recovered: u64,
}

pub(crate) fn parse_own(stdout: &[u8]) -> Result<Own, Failed> {
    let text = String::from_utf8_lossy(stdout);
    let mut own = Own::default();
    for line in text.lines() {
        // Counter lines are "file.go:LINE N", "panics N", "recovers N",
        // "recovered N"; other modes print other lines too.
        let Some((k, n)) = line.rsplit_once(' ') else {
            continue;
        };
        let counter = k.contains(".go:") || matches!(k, "panics" | "recovers" | "recovered");
        if !counter {
            continue;
        }
        let n: u64 = n.parse().map_err(|_| format!("bad count in {line:?}"))?;
        // A program that execs itself prints its counters once per image:
        // they add up.
        match k {
            "panics" => own.panics += n,
            "recovers" => own.recovers += n,
            "recovered" => own.recovered += n,
            _ => *own.sites.entry(k.to_owned()).or_default() += n,
        }
    }
    if own.sites.is_empty() {
        return Err(format!("the program printed no counters: {text:?}").into());
    }
    Ok(own)
}

/// Traced counts of the main package's sites that ran, by `file:line`.
pub(crate) fn traced_main(report: &Value) -> Result<BTreeMap<String, u64>, Failed> {
    let mut m = BTreeMap::new();
    for s in report["sites"].as_array().ok_or("no sites array")? {
        let f = s["function"].as_str().ok_or("site without function")?;
        let n = s["count"].as_u64().ok_or("site without count")?;
        if f.starts_with("main.") && n > 0 {
            let key = format!("{}:{}", s["file"].as_str().unwrap_or("?"), s["line"]);
            *m.entry(key).or_default() += n;
        }
    }
    Ok(m)
}

/// `recover()` calls made by the main package.
pub(crate) fn main_recovers(report: &Value) -> u64 {
    report["recovers_by_function"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| {
            b["function"]
                .as_str()
                .is_some_and(|f| f.starts_with("main."))
        })
        .filter_map(|b| b["count"].as_u64())
        .sum()
}

/// Every traced count equals the program's own; `exact_runtime` also
/// requires panics and recoveries to match (they do when the whole run
/// was traced).
pub(crate) fn compare(own: &Own, report: &Value, whole_run: bool) -> Result<(), Failed> {
    let traced = traced_main(report)?;
    let mut diffs = Vec::new();
    for k in own.sites.keys().chain(traced.keys()) {
        let (a, b) = (own.sites.get(k), traced.get(k));
        if a != b && !diffs.iter().any(|d: &String| d.starts_with(k.as_str())) {
            diffs.push(format!("{k}: program {a:?}, traced {b:?}"));
        }
    }
    if !diffs.is_empty() {
        return Err(format!("{} sites differ:\n  {}", diffs.len(), diffs.join("\n  ")).into());
    }
    let get = |k: &str| report[k].as_u64().unwrap_or(u64::MAX);
    let checks = [
        ("panics", own.panics, get("panics")),
        ("recovered", own.recovered, get("recovered")),
        ("recover() in main", own.recovers, main_recovers(report)),
    ];
    for (what, o, t) in checks {
        if o != t {
            return Err(format!("{what}: program {o}, traced {t}").into());
        }
    }
    // The report is consistent with itself.
    let t = &report["totals"];
    let sum: u64 = report["sites"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["count"].as_u64())
        .sum();
    if t["defers"].as_u64() != Some(sum) {
        return Err(format!("totals.defers {} != sum of sites {sum}", t["defers"]).into());
    }
    let kinds = ["open-coded", "stack-allocated", "heap-allocated"];
    let by_kind: u64 = kinds.iter().filter_map(|k| t[*k].as_u64()).sum();
    if by_kind != sum {
        return Err(format!("totals by kind {by_kind} != {sum}").into());
    }
    if whole_run {
        // The workload covers all three kinds in the main package.
        for k in kinds {
            let ran = report["sites"].as_array().unwrap().iter().any(|s| {
                s["kind"] == k
                    && s["count"].as_u64() > Some(0)
                    && s["function"]
                        .as_str()
                        .is_some_and(|f| f.starts_with("main."))
            });
            if !ran {
                return Err(format!("no {k} defer of the main package ran").into());
            }
        }
        if own.panics == 0 || own.recovered == 0 {
            return Err("the workload had no panics or no recoveries".into());
        }
    }
    Ok(())
}

pub(crate) fn report_file(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace-reports");
    let _ = std::fs::create_dir_all(&d);
    d.join(format!("{tag}-{}.json", std::process::id()))
}

pub(crate) fn read_report(p: &Path) -> Result<Value, Failed> {
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("no report at {}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("bad JSON report: {e}: {text}").into())
}

/// `deferscope trace [extra] --format json --out FILE -- bin args...`
pub(crate) fn traced(bin: &Path, args: &[&str], extra: &[&str], tag: &str) -> (Command, PathBuf) {
    let out = report_file(tag);
    let mut c = deferscope();
    c.arg("trace")
        .args(extra)
        .args(["--format", "json", "--out"])
        .arg(&out)
        .arg("--")
        .arg(bin)
        .args(args);
    (c, out)
}

pub(crate) fn untraced(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args);
    c
}

// ---------------------------------------------------------------------------
// Trials.

/// Launch, count, compare with the program's counters.
pub(crate) fn check_counts(
    bin: &Path,
    args: &[&str],
    extra: &[&str],
    tag: &str,
) -> Result<(), Failed> {
    let (cmd, rep) = traced(bin, args, extra, tag);
    let out = output_within(cmd, b"", LIMIT)?;
    if out.status.code() != Some(0) {
        return Err(format!(
            "deferscope trace: {}; stderr: {}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let report = read_report(&rep)?;
    let _ = std::fs::remove_file(&rep);
    if report["exit_code"] != 0 || !report["signal"].is_null() {
        return Err(format!(
            "report: exit_code {} signal {}",
            report["exit_code"], report["signal"]
        )
        .into());
    }
    compare(&parse_own(&out.stdout)?, &report, true)
}

/// Attach to a process that waits on stdin, let it run its whole workload
/// while attached, detach on SIGINT to deferscope, then let it finish.
pub(crate) fn check_attach_exact(bin: &Path, tag: &str) -> Result<(), Failed> {
    check_attach_exact_env(bin, tag, &[])
}

/// [`check_attach_exact`] with the program's environment extended.
pub(crate) fn check_attach_exact_env(
    bin: &Path,
    tag: &str,
    env: &[(&str, &str)],
) -> Result<(), Failed> {
    let mut prog = Command::new(bin)
        .args(["gated", "5"])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let res = (|| -> Result<(Output, Value), Failed> {
        let prog_err = lines_of(prog.stderr.take().unwrap());
        let prog_out = drain(prog.stdout.take().unwrap());
        let mut stdin = prog.stdin.take().unwrap();
        let rep = report_file(tag);
        let mut ds = deferscope()
            .args(["trace", "--format", "json", "--out"])
            .arg(&rep)
            .args(["--pid", &prog.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let ds_err = lines_of(ds.stderr.take().unwrap());
        expect_line(&ds_err, "deferscope: tracing pid", "deferscope")?;
        stdin.write_all(b"go\n")?;
        expect_line(&prog_err, "workload done", "the program")?;
        kill(ds.id(), "-INT")?;
        let st = wait_within(&mut ds, LIMIT)?;
        let ds_rest: Vec<String> = ds_err.try_iter().collect();
        if !st.success() {
            return Err(format!("deferscope: {}; stderr: {ds_rest:?}", describe(st)).into());
        }
        let report = read_report(&rep)?;
        let _ = std::fs::remove_file(&rep);
        // Detached: the program goes on and prints its counters.
        stdin.write_all(b"end\n")?;
        drop(stdin);
        let status = wait_within(&mut prog, LIMIT)?;
        Ok((
            Output {
                status,
                stdout: prog_out.join().unwrap(),
                stderr: prog_err.try_iter().collect::<Vec<_>>().join("\n").into(),
            },
            report,
        ))
    })();
    let (out, report) = match res {
        Ok(x) => x,
        Err(e) => {
            let _ = prog.kill();
            let _ = prog.wait();
            return Err(e);
        }
    };
    if !out.status.success() {
        return Err(format!(
            "the program after detach: {}; stderr: {}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if report["detached"] != true {
        return Err(format!("report says detached = {}", report["detached"]).into());
    }
    compare(&parse_own(&out.stdout)?, &report, true)
}

/// Attach for one second to a program that runs for about three; it must
/// finish with the same output as untraced, and the counts must be a
/// non-empty part of its own.
fn check_detach(bin: &Path, tag: &str) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, &["long", "3"]), b"", LIMIT)?;
    if !plain.status.success() {
        return Err(format!("untraced run: {}", describe(plain.status)).into());
    }
    let mut prog = Command::new(bin)
        .args(["long", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let prog_out = drain(prog.stdout.take().unwrap());
    let prog_err = drain(prog.stderr.take().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let rep = report_file(tag);
    let mut c = deferscope();
    c.args(["trace", "--format", "json", "--duration", "1", "--out"])
        .arg(&rep)
        .args(["--pid", &prog.id().to_string()]);
    let ds = output_within(c, b"", LIMIT);
    let status = wait_within(&mut prog, LIMIT)?;
    let ds = ds?;
    if !ds.status.success() {
        return Err(format!(
            "deferscope: {}; {}",
            describe(ds.status),
            String::from_utf8_lossy(&ds.stderr)
        )
        .into());
    }
    let stdout = prog_out.join().unwrap();
    if !status.success() || stdout != plain.stdout {
        return Err(format!(
            "after detach: {} (untraced exit 0), stdout {} (untraced {}); stderr: {}",
            describe(status),
            if stdout == plain.stdout {
                "same"
            } else {
                "differs"
            },
            String::from_utf8_lossy(&plain.stdout).lines().count(),
            String::from_utf8_lossy(&prog_err.join().unwrap())
        )
        .into());
    }
    let report = read_report(&rep)?;
    let _ = std::fs::remove_file(&rep);
    let own = parse_own(&stdout)?;
    let traced = traced_main(&report)?;
    if traced.is_empty() {
        return Err("nothing counted in one second".into());
    }
    for (k, n) in &traced {
        let o = own.sites.get(k).copied().unwrap_or(0);
        if *n > o {
            return Err(format!("{k}: traced {n} > the program's own {o}").into());
        }
    }
    Ok(())
}

/// stdout and exit status with and without tracing.
pub(crate) fn check_transparent(
    bin: &Path,
    args: &[&str],
    input: &[u8],
    tag: &str,
) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, args), input, LIMIT)?;
    let (cmd, rep) = traced(bin, args, &[], tag);
    let tr = output_within(cmd, input, LIMIT)?;
    let want = plain
        .status
        .code()
        .or_else(|| signal_of(plain.status).map(|s| 128 + s));
    if tr.status.code() != want {
        return Err(format!(
            "untraced {}, traced deferscope {}; stderr: {}",
            describe(plain.status),
            describe(tr.status),
            String::from_utf8_lossy(&tr.stderr)
        )
        .into());
    }
    if tr.stdout != plain.stdout {
        return Err(format!(
            "stdout differs:\nuntraced: {}\ntraced: {}",
            String::from_utf8_lossy(&plain.stdout),
            String::from_utf8_lossy(&tr.stdout)
        )
        .into());
    }
    let report = read_report(&rep)?;
    let _ = std::fs::remove_file(&rep);
    match (plain.status.code(), signal_of(plain.status)) {
        (Some(c), _) if report["exit_code"] != c => {
            return Err(format!("report exit_code {} != {c}", report["exit_code"]).into())
        }
        (None, Some(s)) if report["signal"] != s => {
            return Err(format!("report signal {} != {s}", report["signal"]).into())
        }
        _ => {}
    }
    // Whatever the program printed as counters matches too.
    if let Ok(own) = parse_own(&plain.stdout) {
        compare(&own, &report, false)?;
    }
    Ok(())
}

/// The pid of the program deferscope launched, once it runs `bin`.
pub(crate) fn traced_child(ds: &Child, bin: &Path) -> Result<u32, Failed> {
    let children = format!("/proc/{0}/task/{0}/children", ds.id());
    let want = bin.canonicalize()?;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(p) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
            // Past the exec: the program is the fixture.
            let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
            if exe == want {
                return Ok(p);
            }
        }
        if Instant::now() >= end {
            return Err("the traced program never started".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT sent to deferscope (not from a terminal) reaches the program,
/// which dies of it; deferscope exits 128 + 2.
///
/// deferscope starts with SIGINT at its default disposition (`env
/// --default-signal`, which execs, so the pid is deferscope's): a test
/// runner started in the background inherits SIGINT ignored, and then the
/// program, launched directly or traced, rightly ignores it too.
fn check_sigint(bin: &Path, tag: &str) -> Result<(), Failed> {
    let (traced_cmd, rep) = traced(bin, &["long", "20"], &[], tag);
    let mut cmd = Command::new("env");
    cmd.arg("--default-signal=INT")
        .arg(traced_cmd.get_program())
        .args(traced_cmd.get_args());
    let mut ds = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = drain(ds.stdout.take().unwrap());
    let err = drain(ds.stderr.take().unwrap());
    if let Err(e) = traced_child(&ds, bin) {
        let _ = ds.kill();
        return Err(e);
    }
    std::thread::sleep(Duration::from_millis(300));
    kill(ds.id(), "-INT")?;
    let st = wait_within(&mut ds, Duration::from_secs(30))?;
    let stdout = out.join().unwrap();
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    if st.code() != Some(130) || !stdout.is_empty() {
        return Err(format!(
            "deferscope {} (want exit 130), stdout {} bytes; stderr: {stderr}",
            describe(st),
            stdout.len()
        )
        .into());
    }
    let report = read_report(&rep)?;
    let _ = std::fs::remove_file(&rep);
    if report["signal"] != 2 || report["signal_name"] != "SIGINT" {
        return Err(format!(
            "report signal {} {}",
            report["signal"], report["signal_name"]
        )
        .into());
    }
    Ok(())
}

/// deferscope fails (on purpose, `--fail-after-hits`) in the middle of a
/// launched run: it says so, takes the breakpoints out, and the program
/// runs on untraced to the same output; deferscope exits 2.
fn check_cleanup_launch(bin: &Path, extra: &[&str], tag: &str) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, &["work", "5"]), b"", LIMIT)?;
    let mut args = vec!["--fail-after-hits", "700"];
    args.extend_from_slice(extra);
    let (cmd, _rep) = traced(bin, &["work", "5"], &args, tag);
    let tr = output_within(cmd, b"", LIMIT)?;
    let stderr = String::from_utf8_lossy(&tr.stderr);
    if tr.status.code() != Some(2)
        || !stderr.contains("runs on untraced")
        || !stderr.contains("failing on purpose")
    {
        return Err(format!("deferscope {}; stderr: {stderr}", describe(tr.status)).into());
    }
    if tr.stdout != plain.stdout {
        return Err(format!(
            "the program's output changed after the failure:\n{}",
            String::from_utf8_lossy(&tr.stdout)
        )
        .into());
    }
    Ok(())
}

/// The same when attached: the process finishes as if never traced.
fn check_cleanup_attach(bin: &Path, _tag: &str) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, &["long", "2"]), b"", LIMIT)?;
    let mut prog = Command::new(bin)
        .args(["long", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let prog_out = drain(prog.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let mut c = deferscope();
    c.args(["trace", "--fail-after-hits", "500", "--pid"])
        .arg(prog.id().to_string());
    let ds = output_within(c, b"", LIMIT);
    let status = wait_within(&mut prog, LIMIT)?;
    let ds = ds?;
    let stderr = String::from_utf8_lossy(&ds.stderr);
    if ds.status.code() != Some(2) || !stderr.contains("failing on purpose") {
        return Err(format!("deferscope {}; stderr: {stderr}", describe(ds.status)).into());
    }
    let stdout = prog_out.join().unwrap();
    if !status.success() || stdout != plain.stdout {
        return Err(format!(
            "after the failed trace: {}, stdout same: {}",
            describe(status),
            stdout == plain.stdout
        )
        .into());
    }
    Ok(())
}

/// Killing deferscope (SIGKILL: no cleanup runs) kills the launched
/// program too: it never runs on with breakpoints and no tracer.
fn check_exitkill(bin: &Path, tag: &str) -> Result<(), Failed> {
    let (mut cmd, _rep) = traced(bin, &["long", "20"], &[], tag);
    let mut ds = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let child = match traced_child(&ds, bin) {
        Ok(c) => c,
        Err(e) => {
            let _ = ds.kill();
            return Err(e);
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    kill(ds.id(), "-KILL")?;
    let _ = ds.wait();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        // Gone, or a zombie waiting for init to reap it.
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
        if stat.is_empty() || state == Some(Some('Z')) || state == Some(Some('X')) {
            return Ok(());
        }
        if Instant::now() >= end {
            let _ = kill(child, "-KILL");
            return Err(format!("pid {child} outlived its tracer ({stat})").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A committed linux/amd64 fixture (no toolchain needed): tracing changes
/// neither its output nor its status, and the kinds of defer it has are
/// seen running.
fn check_committed(bin: &Path, program: &str, variant: &str, tag: &str) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, &[]), b"", LIMIT)?;
    let (cmd, rep) = traced(bin, &[], &[], tag);
    let tr = output_within(cmd, b"", LIMIT)?;
    if tr.status.code() != plain.status.code() || tr.stdout != plain.stdout {
        return Err(format!(
            "untraced {} / traced {}; stdout same: {}; stderr: {}",
            describe(plain.status),
            describe(tr.status),
            tr.stdout == plain.stdout,
            String::from_utf8_lossy(&tr.stderr)
        )
        .into());
    }
    let report = read_report(&rep)?;
    let _ = std::fs::remove_file(&rep);
    // Every fixture program runs each kind its compiler chose for it; the
    // defers program also panics and recovers.
    let kinds: Vec<&str> = match (program, variant) {
        ("defers", "default") => vec!["open-coded", "stack-allocated", "heap-allocated"],
        // -N -l: nothing is open-coded.
        (_, "noopt") => vec!["stack-allocated", "heap-allocated"],
        _ => vec!["open-coded", "heap-allocated"],
    };
    for k in kinds {
        if report["totals"][k].as_u64().unwrap_or(0) == 0 {
            return Err(format!("no {k} defer counted: {}", report["totals"]).into());
        }
    }
    if program == "defers"
        && (report["panics"].as_u64().unwrap_or(0) == 0
            || report["recovered"].as_u64().unwrap_or(0) == 0)
    {
        return Err("the defers fixture panics and recovers; none counted".into());
    }
    Ok(())
}

/// Errors: one line, status 2, and the program is not run.
fn check_error(args: &[&str], must_contain: &str) -> Result<(), Failed> {
    let out = output_within(
        {
            let mut c = deferscope();
            c.arg("trace").args(args);
            c
        },
        b"",
        LIMIT,
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    if out.status.code() != Some(2)
        || lines.len() != 1
        || !lines[0].starts_with("deferscope: ")
        || !lines[0].contains(must_contain)
        || !out.stdout.is_empty()
    {
        return Err(format!(
            "{}; stdout {:?}; stderr {stderr:?} (want one line with {must_contain:?})",
            describe(out.status),
            String::from_utf8_lossy(&out.stdout)
        )
        .into());
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        eprintln!("trace: not Linux on amd64; only the platform error is checked");
        return vec![Trial::test("trace::error::unsupported_platform", || {
            check_error(&["--", "whatever"], "needs Linux on amd64")
        })];
    }
    let mut v = vec![
        Trial::test("trace::error::not_go", || {
            check_error(&["--", "/bin/sh", "-c", "echo ran"], "pclntab")
        }),
        Trial::test("trace::error::missing_program", || {
            check_error(&["--", "./no/such/program"], "no such file")
        }),
        Trial::test("trace::error::not_in_path", || {
            check_error(&["--", "deferscope-no-such-program"], "not found in PATH")
        }),
        Trial::test("trace::error::no_such_pid", || {
            check_error(&["--pid", "999999999"], "999999999")
        }),
    ];
    // A committed Go binary for another platform is refused before it runs.
    if let Some(e) = entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.goarch != "amd64" || e.meta.goos != "linux")
    {
        let (bin, name) = (e.bin(), e.name());
        v.push(Trial::test(
            format!("trace::error::foreign_binary::{name}"),
            move || check_error(&["--", bin.to_str().unwrap()], "runs linux/amd64"),
        ));
    }
    for e in entries(&committed_root()) {
        if e.meta.goos == "linux" && e.meta.goarch == "amd64" {
            let name = e.name();
            let bin = e.bin();
            let tag = format!("committed-{}", name.replace('/', "_"));
            v.push(Trial::test(
                format!("trace::committed::{name}"),
                move || check_committed(&bin, &e.meta.program, &e.meta.variant, &tag),
            ));
        }
    }
    let tcs = toolchains();
    if tcs.is_empty() {
        eprintln!(
            "trace: no Go toolchain under {}/toolchains (scripts/install-toolchains.sh \
             installs them; scripts/test-all.sh does); the fixture trace trials are skipped",
            cache_root().display()
        );
        v.push(
            Trial::test("trace::fixture (no Go toolchain installed)", || Ok(()))
                .with_ignored_flag(true),
        );
        return v;
    }
    for (ver, goroot) in tcs {
        let t = |what: &str| format!("trace::{what}::go{ver}");
        let mk = |f: fn(&Path, &str) -> Result<(), Failed>, what: &str| {
            let (ver, goroot, tag) = (ver.clone(), goroot.clone(), format!("{what}-go{ver}"));
            Trial::test(t(what), move || f(&fixture(&ver, &goroot)?, &tag))
        };
        v.push(mk(|b, tag| check_counts(b, &["work"], &[], tag), "counts"));
        v.push(mk(
            |b, tag| check_counts(b, &["work"], &["--mode", "breakpoints"], tag),
            "breakpoints::counts",
        ));
        v.push(mk(
            |b, tag| {
                check_counts(
                    b,
                    &["work", "2"],
                    &["--mode", "breakpoints", "--single-step"],
                    tag,
                )
            },
            "breakpoints::single_step",
        ));
        v.push(mk(check_attach_exact, "attach_exact"));
        v.push(mk(check_detach, "detach"));
        v.push(mk(
            |b, tag| check_transparent(b, &["exit", "3"], b"", tag),
            "transparent::exit_code",
        ));
        v.push(mk(
            |b, tag| check_transparent(b, &["signal"], b"", tag),
            "transparent::signal",
        ));
        v.push(mk(
            |b, tag| {
                let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
                check_transparent(b, &["cat"], &input, tag)
            },
            "transparent::stdin",
        ));
        v.push(mk(check_sigint, "transparent::sigint"));
        v.push(mk(check_exitkill, "exitkill"));
        v.push(mk(
            |b, tag| check_cleanup_launch(b, &[], tag),
            "cleanup::launch",
        ));
        v.push(mk(
            |b, tag| check_cleanup_launch(b, &["--mode", "breakpoints", "--single-step"], tag),
            "cleanup::launch_single_step",
        ));
        v.push(mk(check_cleanup_attach, "cleanup::attach"));
    }
    v
}
