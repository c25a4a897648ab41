//! `deferscope trace` in counters mode (the default): exactness under the
//! runtime's own machinery, transparency, and what a detach leaves behind.
//!
//! The oracles are the fixture's own counters (`fixtures/go/trace`), the
//! untraced run's stdout, stderr and exit status, and the binary file's
//! bytes. Per toolchain:
//!
//! - `exact::gomaxprocs1`, `exact::pprof_gomaxprocs8`: launch, exact counts
//!   with GOMAXPROCS=1, and with GOMAXPROCS=8 and the CPU profiler on
//!   (SIGPROF landing in trampolines);
//! - `exact::attach_pprof_gomaxprocs8`: the same attached;
//! - `exact::reexec`: the program execs itself; both images' counts add up
//!   (the first image's counters are read at `syscall.runtime_BeforeExec`);
//! - `exact::pending`: the most `_defer` records pending at once per
//!   function equals the program's own figure (loops of 1 to 1000 defers,
//!   nine stack defers, a range-over-func loop);
//! - `transparent::preempt`: tight loops of defers on 2 x GOMAXPROCS
//!   goroutines, preempted asynchronously (SIGURG) while registering
//!   defers, with the profiler on: same output, exact counts;
//! - `transparent::stack`: recursion 20 000 deep through patched functions
//!   (the stack grows and is copied), `runtime.Callers` / `runtime.Caller`
//!   (function + offset of every frame) and a panic unwinding every frame:
//!   same output, exact counts;
//! - `transparent::crash`: an unrecovered panic through patched frames:
//!   stdout, stderr (the runtime's traceback, byte for byte: its pcs are
//!   return addresses, which the patches do not change) and exit status 2
//!   the same;
//! - `transparent::saved_flags`: a site whose trampoline saves the flags
//!   (PUSHFQ/POPFQ; go1.21.13 to go1.27.3) runs, output unchanged;
//! - `detach_restores_text`: after `--pid P --duration 1` the text read
//!   from `/proc/P/mem` equals the file's bytes, the block is unmapped, and
//!   the program finishes with its untraced output;
//! - `interval`: `--interval` lines on the report stream, then the report;
//! - `plan::patched_fraction`: `--plan-only` on the fixture, `go` and
//!   `compile` of the toolchain: at least 99% of points patched.
//!
//! And once: `out_not_a_file`: `--out /dev/null` and `--out` a pipe
//! (`/dev/stderr` piped) work and keep the program's exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries, toolchains};
use crate::trace::{
    compare, describe, drain, fixture, output_within, parse_own, read_report, report_file,
    signal_of, traced, untraced, wait_within, LIMIT,
};

type Env<'a> = &'a [(&'a str, &'a str)];

/// The untraced and the traced run of `bin args` with `env`, and the
/// report.
fn both(
    bin: &Path,
    args: &[&str],
    env: Env,
    extra: &[&str],
    tag: &str,
) -> Result<(Output, Output, Value), Failed> {
    let mut plain = untraced(bin, args);
    plain.envs(env.iter().copied());
    let plain = output_within(plain, b"", LIMIT)?;
    let (mut cmd, rep) = traced(bin, args, extra, tag);
    cmd.envs(env.iter().copied());
    let tr = output_within(cmd, b"", LIMIT)?;
    let report = read_report(&rep).map_err(|e| {
        format!(
            "{}; deferscope {}: {}",
            e.message().unwrap_or("no report"),
            describe(tr.status),
            String::from_utf8_lossy(&tr.stderr)
        )
    })?;
    let _ = std::fs::remove_file(&rep);
    Ok((plain, tr, report))
}

/// Same exit status (deferscope's is the program's), stdout and, when
/// `stderr`, stderr.
fn same_run(plain: &Output, tr: &Output, stderr: bool) -> Result<(), Failed> {
    let want = plain
        .status
        .code()
        .or_else(|| signal_of(plain.status).map(|s| 128 + s));
    if tr.status.code() != want {
        return Err(format!(
            "untraced {}, traced {}; traced stderr: {}",
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
    if stderr && tr.stderr != plain.stderr {
        return Err(format!(
            "stderr differs:\nuntraced: {}\ntraced: {}",
            String::from_utf8_lossy(&plain.stderr),
            String::from_utf8_lossy(&tr.stderr)
        )
        .into());
    }
    Ok(())
}

/// The report counted in counters mode, with every point of the main
/// package patched.
fn counted_by_counters(report: &Value) -> Result<(), Failed> {
    if report["method"] != "counters" {
        return Err(format!("method {}", report["method"]).into());
    }
    let p = &report["patching"];
    if p["patched"].as_u64().unwrap_or(0) == 0 || p["counted"].as_u64().unwrap_or(0) == 0 {
        return Err(format!("nothing patched or counted: {p}").into());
    }
    for s in report["sites"].as_array().ok_or("no sites")? {
        if s["function"]
            .as_str()
            .is_some_and(|f| f.starts_with("main."))
            && s["method"] != "counter"
        {
            return Err(format!("a main site kept a breakpoint: {s}").into());
        }
    }
    Ok(())
}

/// Launch with `env`: same output as untraced, counts equal the
/// program's own.
fn check_exact(bin: &Path, args: &[&str], env: Env, whole: bool, tag: &str) -> Result<(), Failed> {
    let (plain, tr, report) = both(bin, args, env, &[], tag)?;
    same_run(&plain, &tr, true)?;
    counted_by_counters(&report)?;
    if env.contains(&("TRACE_PPROF", "1"))
        && !String::from_utf8_lossy(&tr.stdout).contains("cpu profile ok")
    {
        return Err("the CPU profile is empty".into());
    }
    compare(&parse_own(&tr.stdout)?, &report, whole)
}

/// `crash`: the runtime's traceback is the same byte for byte.
fn check_crash(bin: &Path, tag: &str) -> Result<(), Failed> {
    let (plain, tr, report) = both(bin, &["crash"], &[], &[], tag)?;
    if plain.status.code() != Some(2)
        || !String::from_utf8_lossy(&plain.stderr).contains("goroutine 1 [running]")
    {
        return Err(format!(
            "the untraced crash: {}; {}",
            describe(plain.status),
            String::from_utf8_lossy(&plain.stderr)
        )
        .into());
    }
    same_run(&plain, &tr, true)?;
    counted_by_counters(&report)?;
    compare(&parse_own(&tr.stdout)?, &report, false)
}

/// `pending`: each function's most `_defer` records pending at once in
/// one call, as the report gives it, equals the program's own figure (its
/// "pending FUNCTION N" lines: the loops' trip counts, nine stack defers,
/// a range-over-func loop on go1.23+); same output, exact counts.
fn check_pending(bin: &Path, tag: &str) -> Result<(), Failed> {
    let (plain, tr, report) = both(bin, &["pending"], &[], &[], tag)?;
    same_run(&plain, &tr, true)?;
    counted_by_counters(&report)?;
    compare(&parse_own(&tr.stdout)?, &report, false)?;
    let want: Vec<(String, u64)> = String::from_utf8_lossy(&tr.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("pending ")?.split(' ');
            Some((f.next()?.to_owned(), f.next()?.parse().ok()?))
        })
        .collect();
    if want.len() < 6 {
        return Err(format!("the program printed {} pending lines", want.len()).into());
    }
    let got = report["pending_by_function"]
        .as_array()
        .ok_or("no pending_by_function in the report")?;
    let mut diffs = Vec::new();
    for (f, n) in &want {
        let t = got
            .iter()
            .find(|p| p["function"] == f.as_str())
            .map(|p| p["max_pending"].clone());
        if t.as_ref().and_then(Value::as_u64) != Some(*n) {
            diffs.push(format!("{f}: program {n}, traced {t:?}"));
        }
    }
    if !diffs.is_empty() {
        return Err(format!("max pending differs:\n  {}", diffs.join("\n  ")).into());
    }
    Ok(())
}

/// A loadable segment: link-time address, file offset, size.
type Segment = (u64, u64, u64);

/// `netdns` with GODEBUG=netdns=go+2: the same output (the resolver's
/// debug lines on stderr included), and net.initConfVal's defer counted
/// once by a counter. The compiler keeps a comparison's flags live across
/// that site's closure store in go1.21.13 to go1.27.3 (not go1.19), so
/// its trampoline saves them with PUSHFQ/POPFQ there.
fn check_saved_flags(bin: &Path, tag: &str) -> Result<(), Failed> {
    let env = &[("GODEBUG", "netdns=go+2")];
    let (plain, tr, report) = both(bin, &["netdns"], env, &[], tag)?;
    same_run(&plain, &tr, true)?;
    let site = report["sites"]
        .as_array()
        .ok_or("no sites")?
        .iter()
        .find(|s| s["function"] == "net.initConfVal")
        .ok_or("no net.initConfVal site")?;
    if site["count"] != 1 || site["method"] != "counter" {
        return Err(format!("net.initConfVal: {site}").into());
    }
    Ok(())
}

/// The exec segments of an ELF64 file (each `PT_LOAD` with `PF_X`), and
/// `e_entry`.
fn exec_segments(f: &[u8]) -> Option<(Vec<Segment>, u64)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(f.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(f.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(f.get(o..o + 8)?.try_into().ok()?));
    if f.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)?, u16_at(0x38)?);
    let mut v = Vec::new();
    for i in 0..phnum as usize {
        let ph = phoff + i * phentsize as usize;
        if u32_at(ph)? == 1 && u32_at(ph + 4)? & 1 != 0 {
            v.push((u64_at(ph + 0x10)?, u64_at(ph + 8)?, u64_at(ph + 0x20)?));
        }
    }
    Some((v, u64_at(0x18)?))
}

/// Attach for one second to a program that runs for about six: when
/// deferscope has detached, the process's text is the file's, byte for
/// byte, and the block is gone from its maps; it then finishes with the
/// untraced output (`long` runs a fixed number of rounds, whatever the
/// time it is given).
fn check_detach_text(bin: &Path, tag: &str) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, &["long", "0"]), b"", LIMIT)?;
    let mut prog = Command::new(bin)
        .args(["long", "6"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = drain(prog.stdout.take().unwrap());
    let pid = prog.id();
    let res = (|| -> Result<(), Failed> {
        std::thread::sleep(Duration::from_millis(300));
        let rep = report_file(tag);
        let mut c = deferscope();
        c.args(["trace", "--format", "json", "--duration", "1", "--out"])
            .arg(&rep)
            .args(["--pid", &pid.to_string()]);
        let ds = output_within(c, b"", LIMIT)?;
        if !ds.status.success() {
            return Err(format!("deferscope: {}", String::from_utf8_lossy(&ds.stderr)).into());
        }
        let report = read_report(&rep)?;
        let _ = std::fs::remove_file(&rep);
        counted_by_counters(&report)?;
        // The process is still running, untraced.
        let file = std::fs::read(bin)?;
        let (segs, entry) = exec_segments(&file).ok_or("not an ELF64 file")?;
        let auxv = std::fs::read(format!("/proc/{pid}/auxv"))?;
        let at_entry = auxv
            .chunks_exact(16)
            .find(|kv| u64::from_le_bytes(kv[..8].try_into().unwrap()) == 9)
            .map(|kv| u64::from_le_bytes(kv[8..].try_into().unwrap()))
            .ok_or("no AT_ENTRY")?;
        let bias = at_entry.wrapping_sub(entry);
        let mem = std::fs::File::open(format!("/proc/{pid}/mem"))?;
        let mut compared = 0;
        for (vaddr, off, size) in segs {
            let mut buf = vec![0u8; size as usize];
            std::os::unix::fs::FileExt::read_exact_at(&mem, &mut buf, vaddr.wrapping_add(bias))?;
            let want = &file[off as usize..(off + size) as usize];
            if buf != want {
                let at = buf.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(
                    format!("text differs from the file at {:#x}", vaddr + at as u64).into(),
                );
            }
            compared += size;
        }
        if compared == 0 {
            return Err("no executable segment".into());
        }
        let block = report["patching"]["block_addr"]
            .as_u64()
            .ok_or("no block address")?;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
        if maps.lines().any(|l| {
            l.split('-')
                .next()
                .and_then(|a| u64::from_str_radix(a, 16).ok())
                == Some(block)
        }) {
            return Err(format!("the block at {block:#x} is still mapped:\n{maps}").into());
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = prog.kill();
        let _ = prog.wait();
        return Err(e);
    }
    let st = wait_within(&mut prog, LIMIT)?;
    if !st.success() || out.join().unwrap() != plain.stdout {
        return Err(format!("after the detach: {} or different stdout", describe(st)).into());
    }
    Ok(())
}

/// `--interval 0.1 --format json`: JSON Lines, running totals that never
/// go down, then the report, whose totals are at least the last ones.
fn check_interval(bin: &Path, tag: &str) -> Result<(), Failed> {
    let (cmd, rep) = traced(bin, &["long", "1"], &["--interval", "0.1"], tag);
    let out = output_within(cmd, b"", LIMIT)?;
    if !out.status.success() {
        return Err(format!("deferscope {}", describe(out.status)).into());
    }
    let text = std::fs::read_to_string(&rep)?;
    let _ = std::fs::remove_file(&rep);
    let lines: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not JSON Lines: {e}: {text}"))?;
    let (last, running) = lines.split_last().ok_or("no output")?;
    if running.len() < 3 || running.iter().any(|l| l.get("running").is_none()) {
        return Err(format!("want 3+ running lines before the report: {text}").into());
    }
    let defers = |v: &Value| v["totals"]["defers"].as_u64().unwrap_or(u64::MAX);
    let seq: Vec<u64> = running.iter().map(|l| defers(&l["running"])).collect();
    if seq.windows(2).any(|w| w[0] > w[1]) || seq.last() > Some(&defers(last)) {
        return Err(format!("running totals {seq:?}, final {}", defers(last)).into());
    }
    compare(&parse_own(&out.stdout)?, last, false)
}

/// `--plan-only` on the fixture and the toolchain's own big binaries.
fn check_plan(bins: &[PathBuf]) -> Result<(), Failed> {
    for b in bins {
        let mut c = deferscope();
        c.args(["trace", "--plan-only", "--format", "json", "--"])
            .arg(b);
        let out = output_within(c, b"", LIMIT)?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{}: {e}: {}",
                b.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        for mode in ["launch", "attach"] {
            let pct = v[mode]["patched_pct"].as_f64().unwrap_or(0.0);
            if pct < 99.0 || v[mode]["points"].as_u64().unwrap_or(0) == 0 {
                return Err(format!("{} {mode}: {}", b.display(), v[mode]).into());
            }
        }
    }
    Ok(())
}

/// `--out` to something that is not a regular file: the report goes
/// there, and the status is the program's.
fn check_out_not_a_file(bin: &Path) -> Result<(), Failed> {
    let plain = output_within(untraced(bin, &[]), b"", LIMIT)?;
    let mut c = deferscope();
    c.args(["trace", "--out", "/dev/null", "--"]).arg(bin);
    let out = output_within(c, b"", LIMIT)?;
    if out.status.code() != plain.status.code() || out.stderr != plain.stderr {
        return Err(format!(
            "--out /dev/null: {} (untraced {}): {}",
            describe(out.status),
            describe(plain.status),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    // stderr is a pipe here; the program's own stderr comes first.
    let mut c = deferscope();
    c.args(["trace", "--format", "json", "--out", "/dev/stderr", "--"])
        .arg(bin);
    let out = output_within(c, b"", LIMIT)?;
    let report = out
        .stderr
        .strip_prefix(&plain.stderr[..])
        .unwrap_or(&out.stderr);
    let v: Value = serde_json::from_slice(report).map_err(|e| {
        format!(
            "--out /dev/stderr (a pipe): {}: {e}: {}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if out.status.code() != plain.status.code()
        || v["exit_code"] != plain.status.code().unwrap_or(-1)
    {
        return Err(format!("--out /dev/stderr: {}", describe(out.status)).into());
    }
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Vec::new();
    }
    let mut v = Vec::new();
    if let Some(e) = entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.goos == "linux" && e.meta.goarch == "amd64")
    {
        let bin = e.bin();
        v.push(Trial::test("trace::out_not_a_file", move || {
            check_out_not_a_file(&bin)
        }));
    }
    for (ver, goroot) in toolchains() {
        let t = |what: &str| format!("trace::{what}::go{ver}");
        let mk = |f: fn(&Path, &str) -> Result<(), Failed>, what: &str| {
            let (ver, goroot, tag) = (ver.clone(), goroot.clone(), format!("{what}-go{ver}"));
            Trial::test(t(what), move || f(&fixture(&ver, &goroot)?, &tag))
        };
        const PPROF8: Env = &[("GOMAXPROCS", "8"), ("TRACE_PPROF", "1")];
        v.push(mk(
            |b, tag| check_exact(b, &["work", "5"], &[("GOMAXPROCS", "1")], true, tag),
            "exact::gomaxprocs1",
        ));
        v.push(mk(
            |b, tag| check_exact(b, &["work", "5"], PPROF8, true, tag),
            "exact::pprof_gomaxprocs8",
        ));
        v.push(mk(
            |b, tag| check_exact(b, &["reexec", "2"], &[], true, tag),
            "exact::reexec",
        ));
        v.push(mk(
            |b, tag| crate::trace::check_attach_exact_env(b, tag, PPROF8),
            "exact::attach_pprof_gomaxprocs8",
        ));
        v.push(mk(
            |b, tag| {
                let env = &[("GOMAXPROCS", "4"), ("TRACE_PPROF", "1")];
                check_exact(b, &["preempt", "1"], env, false, tag)
            },
            "transparent::preempt",
        ));
        v.push(mk(
            |b, tag| check_exact(b, &["stack", "20000"], &[], false, tag),
            "transparent::stack",
        ));
        v.push(mk(check_crash, "transparent::crash"));
        v.push(mk(check_pending, "exact::pending"));
        v.push(mk(check_saved_flags, "transparent::saved_flags"));
        v.push(mk(check_detach_text, "detach_restores_text"));
        v.push(mk(check_interval, "interval"));
        let (ver2, goroot2) = (ver.clone(), goroot.clone());
        v.push(Trial::test(t("plan::patched_fraction"), move || {
            let mut bins = vec![fixture(&ver2, &goroot2)?, goroot2.join("bin/go")];
            let compile = goroot2.join("pkg/tool/linux_amd64/compile");
            if compile.is_file() {
                bins.push(compile);
            }
            check_plan(&bins)
        }));
    }
    v
}
