//! `progress::*` (issue 15 item 13): the progress lines of `disasm`
//! (`listing K/N functions`) and `trace` (`tracing: S s, N defers
//! counted`) on a terminal, and nothing of them anywhere else.
//!
//! deferscope runs under a pseudo-terminal made by util-linux's
//! `script -qec CMD /dev/null` (stdin, stdout and stderr are the pty; the
//! command's own redirections apply inside), whose stdout is everything
//! written to that terminal. indicatif limits how often it draws, so a
//! trial checks that the count grows, not that every value is drawn.
//!
//! - `disasm_terminal`: `disasm GO > FILE` with stderr on the terminal
//!   draws `listing K/N functions`, K growing, N the number of `TEXT` lines
//!   of the listing in FILE;
//! - `disasm_piped`: with stderr a pipe, stderr stays empty;
//! - `disasm_same_terminal`: a listing written to the terminal itself gets
//!   no progress line (it would overwrite the listing);
//! - `trace_attach_terminal`: attached to a program whose output goes to
//!   pipes, `tracing: S s, N defers counted` is drawn, N growing;
//! - `trace_attach_piped`: with stderr a pipe, no such text;
//! - `trace_attach_shared_terminal`: attached to a program that writes to
//!   the same terminal, no line;
//! - `trace_launch_shared_terminal`: a launched program shares
//!   deferscope's stderr: no line, and the terminal shows exactly the
//!   program's untraced output (`long 2`: two seconds of work, so the line
//!   would have been drawn).
//!
//! The programs: the newest installed toolchain's `go` binary (15 MB, about
//! 16 000 functions) for disasm, `fixtures/go/trace` built with it for trace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use regex::Regex;

use crate::fixtures::toolchains;
use crate::trace::{drain, fixture, output_within, wait_within, LIMIT};

type Check = fn() -> Result<(), Failed>;

pub fn trials() -> Vec<Trial> {
    let t: [(&str, Check); 7] = [
        ("disasm_terminal", disasm_terminal),
        ("disasm_piped", disasm_piped),
        ("disasm_same_terminal", disasm_same_terminal),
        ("trace_attach_terminal", trace_attach_terminal),
        ("trace_attach_piped", trace_attach_piped),
        ("trace_attach_shared_terminal", trace_attach_shared_terminal),
        ("trace_launch_shared_terminal", trace_launch_shared_terminal),
    ];
    t.into_iter()
        .map(|(name, f)| Trial::test(format!("progress::{name}"), f))
        .collect()
}

fn ds() -> String {
    env!("CARGO_BIN_EXE_deferscope").to_owned()
}

/// A word for `sh -c`.
fn q(s: impl AsRef<str>) -> String {
    format!("'{}'", s.as_ref().replace('\'', r"'\''"))
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("progress");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// The newest toolchain: (version, GOROOT).
fn newest() -> Result<(String, PathBuf), Failed> {
    toolchains()
        .pop()
        .ok_or_else(|| "no Go toolchain under the cache (scripts/install-toolchains.sh)".into())
}

/// Run `cmd` (a shell command) with a pseudo-terminal as its stdin, stdout
/// and stderr; what the terminal received, as text.
fn in_pty(cmd: &str) -> Result<String, Failed> {
    let mut c = Command::new("script");
    c.args(["-qec", cmd, "/dev/null"]);
    let o = output_within(c, b"", LIMIT).map_err(|e| {
        format!(
            "script (util-linux) -qec {cmd:?}: {}",
            e.message().unwrap_or("")
        )
    })?;
    if !o.status.success() {
        return Err(format!(
            "script -qec {cmd:?}: {}; terminal: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The (K, N) of every `listing K/N functions` drawn.
fn listing_counts(text: &str) -> Vec<(u64, u64)> {
    let re = Regex::new(r"listing (\d+)/(\d+) functions").unwrap();
    re.captures_iter(text)
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
        .collect()
}

/// The (S, N) of every `tracing: S s, N defers counted` drawn (N written
/// in groups of three digits).
fn tracing_counts(text: &str) -> Vec<(f64, u64)> {
    let re = Regex::new(r"tracing: ([0-9.]+) s, ([0-9][0-9 ]*) defers counted").unwrap();
    re.captures_iter(text)
        .map(|c| {
            (
                c[1].parse().unwrap(),
                c[2].replace(' ', "").parse().unwrap(),
            )
        })
        .collect()
}

/// The values never go down, and the last is above the first.
fn grows<T: PartialOrd + Copy + std::fmt::Debug>(what: &str, v: &[T]) -> Result<(), Failed> {
    if v.len() < 2 || v.windows(2).any(|w| w[1] < w[0]) || v[v.len() - 1] <= v[0] {
        return Err(format!("{what}: not growing: {v:?}").into());
    }
    Ok(())
}

fn go_binary() -> Result<PathBuf, Failed> {
    Ok(newest()?.1.join("bin/go"))
}

fn disasm_terminal() -> Result<(), Failed> {
    let go = go_binary()?;
    let listing = tmp("listing.txt");
    let term = in_pty(&format!(
        "{} disasm {} > {}",
        q(ds()),
        q(go.to_string_lossy()),
        q(listing.to_string_lossy())
    ))?;
    let counts = listing_counts(&term);
    if counts.is_empty() {
        return Err(format!(
            "no `listing K/N functions` on the terminal; it shows: {:?}",
            &term[..term.len().min(400)]
        )
        .into());
    }
    let text = std::fs::read_to_string(&listing)?;
    let _ = std::fs::remove_file(&listing);
    let functions = text.lines().filter(|l| l.starts_with("TEXT ")).count() as u64;
    if let Some(&(_, n)) = counts.iter().find(|&&(_, n)| n != functions) {
        return Err(format!("N = {n}, the listing has {functions} TEXT lines").into());
    }
    let ks: Vec<u64> = counts.iter().map(|c| c.0).collect();
    grows("K", &ks)?;
    if ks.iter().any(|&k| k > functions) {
        return Err(format!("K above N = {functions}: {ks:?}").into());
    }
    if !listing_counts(&text).is_empty() {
        return Err("the progress text went into the listing".into());
    }
    Ok(())
}

fn disasm_piped() -> Result<(), Failed> {
    let go = go_binary()?;
    let o = Command::new(ds())
        .arg("disasm")
        .arg(&go)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if !o.status.success() || !o.stderr.is_empty() {
        return Err(format!(
            "disasm to a pipe: {}, stderr {:?}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    Ok(())
}

fn disasm_same_terminal() -> Result<(), Failed> {
    let go = go_binary()?;
    // Thousands of functions, written to the terminal itself.
    let term = in_pty(&format!(
        "{} disasm --color never --funcs '^runtime\\.' {}",
        q(ds()),
        q(go.to_string_lossy())
    ))?;
    let texts = term.lines().filter(|l| l.starts_with("TEXT ")).count();
    if texts < 1000 {
        return Err(format!("only {texts} functions listed on the terminal").into());
    }
    let counts = listing_counts(&term);
    if !counts.is_empty() {
        return Err(format!(
            "progress drawn over a listing on the same terminal: {:?}",
            &counts[..counts.len().min(5)]
        )
        .into());
    }
    Ok(())
}

/// The trace fixture, built with the newest toolchain.
fn trace_program() -> Result<PathBuf, Failed> {
    let (v, goroot) = newest()?;
    fixture(&v, &goroot)
}

/// Attach to `bin long 4` (output to pipes) for 2 s with deferscope's
/// stderr on a terminal (`pty`) or a pipe; what the terminal or the pipe
/// got.
fn attach(bin: &Path, pty: bool) -> Result<String, Failed> {
    let mut prog = Command::new(bin)
        .args(["long", "4"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = drain(prog.stdout.take().unwrap());
    let err = drain(prog.stderr.take().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let rep = tmp(&format!("attach-{pty}.txt"));
    let pid = prog.id().to_string();
    let got = if pty {
        in_pty(&format!(
            "{} trace --pid {pid} --duration 2 --out {}",
            q(ds()),
            q(rep.to_string_lossy())
        ))
    } else {
        let mut c = Command::new(ds());
        c.args(["trace", "--pid", &pid, "--duration", "2", "--out"])
            .arg(&rep);
        output_within(c, b"", LIMIT).and_then(|o| {
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stderr).into_owned())
            } else {
                Err(format!("deferscope trace --pid: {}", o.status).into())
            }
        })
    };
    let status = wait_within(&mut prog, LIMIT)?;
    let (_, _) = (out.join(), err.join());
    let _ = std::fs::remove_file(&rep);
    if !status.success() {
        return Err(format!("the traced program: {status}").into());
    }
    got
}

fn trace_attach_terminal() -> Result<(), Failed> {
    let term = attach(&trace_program()?, true)?;
    let counts = tracing_counts(&term);
    if counts.is_empty() {
        return Err(format!(
            "no `tracing: S s, N defers counted` on the terminal; it shows: {:?}",
            &term[..term.len().min(400)]
        )
        .into());
    }
    let ns: Vec<u64> = counts.iter().map(|c| c.1).collect();
    grows("N", &ns)?;
    let ss: Vec<f64> = counts.iter().map(|c| c.0).collect();
    if ss.windows(2).any(|w| w[1] < w[0]) || ss.iter().any(|&s| s > 10.0) {
        return Err(format!("S: {ss:?} (2 s attached)").into());
    }
    Ok(())
}

fn trace_attach_piped() -> Result<(), Failed> {
    let err = attach(&trace_program()?, false)?;
    if !tracing_counts(&err).is_empty() || err.contains('\x1b') {
        return Err(format!("progress text in piped stderr: {err:?}").into());
    }
    Ok(())
}

fn trace_attach_shared_terminal() -> Result<(), Failed> {
    let bin = trace_program()?;
    let rep = tmp("attach-shared.txt");
    // The program is started inside the terminal session, writing to it.
    let term = in_pty(&format!(
        "{b} long 4 & sleep 0.3; {d} trace --pid $! --duration 2 --out {r}; wait",
        b = q(bin.to_string_lossy()),
        d = q(ds()),
        r = q(rep.to_string_lossy())
    ))?;
    let _ = std::fs::remove_file(&rep);
    if !tracing_counts(&term).is_empty() {
        return Err("progress drawn on the terminal the traced program writes to".into());
    }
    if !term.contains("panics ") {
        return Err(format!("the program's counters are not on the terminal: {term:?}").into());
    }
    Ok(())
}

fn trace_launch_shared_terminal() -> Result<(), Failed> {
    let bin = trace_program()?;
    let plain = output_within(
        {
            let mut c = Command::new(&bin);
            c.args(["long", "2"]);
            c
        },
        b"",
        LIMIT,
    )?;
    let rep = tmp("launch.txt");
    let term = in_pty(&format!(
        "{} trace --out {} -- {} long 2",
        q(ds()),
        q(rep.to_string_lossy()),
        q(bin.to_string_lossy())
    ))?;
    let _ = std::fs::remove_file(&rep);
    if !tracing_counts(&term).is_empty() {
        return Err("progress drawn over a launched program's terminal".into());
    }
    let shown = term.replace("\r\n", "\n");
    if shown.as_bytes() != plain.stdout.as_slice() {
        return Err(format!(
            "the terminal shows other than the program's untraced output: {:?}",
            &shown[..shown.len().min(400)]
        )
        .into());
    }
    Ok(())
}
