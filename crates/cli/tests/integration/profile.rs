//! `deferscope profile`: attributions against oracles independent of our
//! output.
//!
//! `fixtures/go/profile/workloads` is built with every installed toolchain
//! for linux/amd64 (`GOTOOLCHAIN=local`, a per-version `GOCACHE`), and for
//! linux/arm64 with the newest one when `qemu-aarch64` (Debian's
//! `qemu-user`) can run it. Per build:
//!
//! - `cpu`: the program times each workload (heap-, stack-allocated,
//!   open-coded defer, a recovered panic, a control without defer) with
//!   and without its defer in its own thread's CPU time, then profiles
//!   the version with the defer. Our machinery share of the function's
//!   samples, p, must be within the sampling error of the timed share
//!   t = (with - without) / with: |p - t| <= 3 sqrt(p (1 - p) / n) + e,
//!   n the function's samples (about 500 in 2 s of CPU: Linux delivers
//!   CPU-time profiling signals on scheduler ticks, 250 Hz here, whatever
//!   rate is asked), e the timing's own error (half the interquartile
//!   range of the 9 rounds of each side, over `with`) plus 0.05 for what
//!   the two measurements cannot share (see [`SYSTEMATIC`]). The
//!   control's profile must have no machinery sample at all. And `go tool
//!   pprof -top -sample_index=samples` on the same profile must give every
//!   runtime defer function we count the same flat and cum samples
//!   exactly, and `-focus` on all of them the same total.
//! - `alloc`: with `runtime.MemProfileRate = 1`, the heap closure site's
//!   closures equal the program's `testing.AllocsPerRun` times its call
//!   count, and its objects and bytes (closures and `_defer` records)
//!   equal the program's own `runtime.MemStats` deltas exactly; the sites
//!   that allocate nothing (stack, open-coded, a heap defer of a static
//!   function) have none.
//! - `pprof`: `--format pprof` read back by `go tool pprof`: each site's
//!   `defer machinery: ...` frame has the site's machinery samples.
//!
//! Under qemu (arm64) the CPU trial compares with `go tool pprof` only:
//! user-mode emulation delivers signals between translated blocks, so the
//! sample positions and the emulated costs are not the hardware's.
//!
//! Error cases (a profile of another binary, truncated, corrupt, empty,
//! not a profile) need no toolchain: one line, exit 2.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries, go_cmd, repo_root, toolchains};

/// Build the workloads program with `goroot` for `goarch`, once.
fn build(version: &str, goroot: &Path, goarch: &str) -> Result<PathBuf, Failed> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let key = format!("{version}-{goarch}");
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    let r = built.entry(key.clone()).or_insert_with(|| {
        let src = repo_root().join("fixtures/go/profile/workloads");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("profile-fixtures")
            .join(&key);
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let bin = out.join("workloads");
        let r = go(goroot, version, &src)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .env("GOARCH", goarch)
            .output()
            .map_err(|e| format!("go{version}: {e}"))?;
        if !r.status.success() {
            return Err(format!(
                "go{version} build: {}",
                String::from_utf8_lossy(&r.stderr)
            ));
        }
        Ok(bin)
    });
    r.clone().map_err(Failed::from)
}

/// The go command of `goroot`, with a clean environment, for linux.
fn go(goroot: &Path, version: &str, dir: &Path) -> Command {
    let mut cmd = go_cmd(goroot, version, "profile", dir);
    cmd.env("GOFLAGS", "-mod=mod").env("GOOS", "linux");
    cmd
}

/// Run the workloads program (under qemu for arm64) in `mode`, writing
/// into a fresh directory of its own (named by mode and arguments: two
/// trials run the same binary in `cpu` mode at once, `profile::cpu` and
/// `profile::pprof_output`, and one must not remove the other's files);
/// its JSON lines by workload.
fn run_fixture(
    bin: &Path,
    goarch: &str,
    mode: &str,
    args: &[&str],
) -> Result<(PathBuf, HashMap<String, Value>), Failed> {
    let dir = bin.with_file_name(format!("out-{mode}{}", args.concat()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut cmd = if goarch == "arm64" {
        let mut c = Command::new("qemu-aarch64");
        c.arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(["-mode", mode, "-out"])
        .arg(&dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("fixture failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let mut m = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(l)?;
        m.insert(v["workload"].as_str().unwrap_or("").to_owned(), v);
    }
    Ok((dir, m))
}

/// `deferscope profile BIN PROFILE --format json` with `extra` args.
fn attribute(bin: &Path, prof: &Path, extra: &[&str]) -> Result<Value, Failed> {
    let out = deferscope()
        .args(["profile", "--format", "json"])
        .arg(bin)
        .arg(prof)
        .args(extra)
        .output()?;
    if !out.status.success() {
        return Err(format!("deferscope: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn function<'a>(a: &'a Value, name: &str) -> Option<&'a Value> {
    a["functions"]
        .as_array()?
        .iter()
        .find(|f| f["function"] == name)
}

fn median_and_half_iqr(v: &Value) -> (f64, f64) {
    let mut x: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    x.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| x[((x.len() - 1) as f64 * p).round() as usize];
    (q(0.5), (q(0.75) - q(0.25)) / 2.0)
}

/// `go tool pprof -top` rows: name (without " (inline)") -> (flat, cum).
type TopRows = HashMap<String, (i64, i64)>;

/// `go tool pprof -top` rows, and the "Showing nodes accounting for N"
/// total.
fn pprof_top(
    goroot: &Path,
    bin: Option<&Path>,
    prof: &Path,
    extra: &[&str],
) -> Result<(TopRows, i64), Failed> {
    let mut cmd = Command::new(goroot.join("bin/go"));
    cmd.args([
        "tool",
        "pprof",
        "-top",
        "-nodecount=1000000",
        "-nodefraction=0",
    ])
    .args(["-edgefraction=0", "-sample_index=samples"])
    .args(extra)
    .env("GOROOT", goroot)
    .env("GOTOOLCHAIN", "local");
    if let Some(b) = bin {
        cmd.arg(b);
    }
    let out = cmd.arg(prof).output()?;
    if !out.status.success() {
        return Err(format!("pprof: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = HashMap::new();
    let mut shown = 0;
    for l in text.lines() {
        if let Some(r) = l.trim().strip_prefix("Showing nodes accounting for ") {
            shown = r
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .parse()
                .unwrap_or(-1);
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (Ok(flat), Ok(cum)) = (f[0].parse::<i64>(), f[3].parse::<i64>()) else {
            continue;
        };
        let name = f[5..].join(" ");
        let name = name.strip_suffix(" (inline)").unwrap_or(&name).to_owned();
        rows.insert(name, (flat, cum));
    }
    Ok((rows, shown))
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let esc = "\\.+*?()|[]{}^$".contains(c);
            esc.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// Our runtime totals against `go tool pprof -top` of the same profile.
fn check_runtime_totals(
    goroot: &Path,
    bin: &Path,
    prof: &Path,
    a: &Value,
) -> Result<usize, String> {
    let (rows, _) = pprof_top(goroot, Some(bin), prof, &[]).map_err(|e| format!("{e:?}"))?;
    let ours = a["runtime_functions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut names = Vec::new();
    for r in &ours {
        let n = r["function"].as_str().unwrap_or("");
        let want = (
            r["flat"].as_i64().unwrap_or(-1),
            r["cum"].as_i64().unwrap_or(-1),
        );
        match rows.get(n) {
            Some(&got) if got == want => {}
            got => return Err(format!("{n}: ours (flat, cum) {want:?}, pprof {got:?}")),
        }
        names.push(regex_escape(n));
    }
    if !names.is_empty() {
        let focus = format!("-focus=^({})$", names.join("|"));
        let (_, shown) =
            pprof_top(goroot, Some(bin), prof, &[&focus]).map_err(|e| format!("{e:?}"))?;
        let ours = a["runtime_function_samples"].as_i64().unwrap_or(-1);
        if shown != ours {
            return Err(format!("-focus total: pprof {shown}, ours {ours}"));
        }
    }
    Ok(ours.len())
}

/// `timing`: compare the shares with the program's timings (not under
/// qemu, whose user-mode emulation delivers the profiling signal only
/// between translated blocks, so that samples fall on block starts and
/// emulated instructions do not cost what they cost on hardware; the
/// comparisons with `go tool pprof` still hold there).
/// What the two measurements cannot share, beyond sampling and timing
/// noise (observed over go1.19 ... go1.27.3, several runs on a loaded
/// 2-core machine: profiled minus timed within -0.09 ... +0.10, most
/// within 0.05): `recovery` runs on the system stack through `mcall`, so
/// its samples are in no user frame (the panic share reads low), and the
/// fences leave some overlap of the machinery with the loop around it
/// (the heap share reads high).
const SYSTEMATIC: f64 = 0.05;

/// Fewer samples than this in a workload's function and its share cannot
/// be told from the timing's: a loaded machine (CI runs the tests in
/// parallel) can starve a 2 s trial to 70 samples.
const MIN_SAMPLES: f64 = 200.0;

/// One trial of 2 s per workload; when the only failures are workloads
/// starved of samples or shares that disagree with the timings (a loaded
/// machine disturbs a trial: CI runs the tests in parallel, and one
/// session's run saw 3 of 8 versions 0.003 to 0.014 beyond their
/// tolerance, each passing alone), one more trial of 4 s decides. The
/// comparisons with `go tool pprof` are exact and fail at once.
fn cpu(version: &str, goroot: &Path, goarch: &str, timing: bool) -> Result<(), Failed> {
    let bin = build(version, goroot, goarch)?;
    match cpu_for(&bin, goroot, goarch, timing, "2s")? {
        CpuTrial::Passed(notes) => {
            eprintln!("go{version} {goarch} cpu: {notes}");
            Ok(())
        }
        CpuTrial::Disturbed(e) => {
            eprintln!("go{version} {goarch} cpu: disturbed at 2 s, again at 4 s:\n{e}");
            match cpu_for(&bin, goroot, goarch, timing, "4s")? {
                CpuTrial::Passed(notes) => {
                    eprintln!("go{version} {goarch} cpu (4 s): {notes}");
                    Ok(())
                }
                CpuTrial::Disturbed(e) | CpuTrial::Failed(e) => Err(e.into()),
            }
        }
        CpuTrial::Failed(e) => Err(e.into()),
    }
}

enum CpuTrial {
    /// The notes of every workload.
    Passed(String),
    /// Failed only because some workload had too few samples, or its
    /// share disagreed with its timing.
    Disturbed(String),
    /// A comparison with `go tool pprof` failed.
    Failed(String),
}

fn cpu_for(
    bin: &Path,
    goroot: &Path,
    goarch: &str,
    timing: bool,
    dur: &str,
) -> Result<CpuTrial, Failed> {
    let (dir, meas) = run_fixture(bin, goarch, "cpu", &["-dur", dur])?;
    // Failures a disturbed trial can cause.
    let mut disturbed = 0;
    let mut errs = Vec::new();
    let mut notes = Vec::new();
    for (w, m) in &meas {
        let prof = dir.join(format!("{w}.pprof"));
        let a = attribute(bin, &prof, &["--sample-index", "samples"])?;
        match check_runtime_totals(goroot, bin, &prof, &a) {
            Ok(n) => notes.push(format!("{w}: {n} runtime functions equal pprof's")),
            Err(e) => errs.push(format!("{w}: {e}")),
        }
        if w == "control" {
            if a["machinery_samples"] != 0 {
                errs.push(format!("control: machinery {}", a["machinery_samples"]));
            }
            continue;
        }
        let fname = m["function"].as_str().unwrap_or("");
        let Some(f) = function(&a, fname) else {
            errs.push(format!("{w}: {fname} not in the attribution"));
            continue;
        };
        if !timing {
            continue;
        }
        let n = f["samples"].as_f64().unwrap_or(0.0);
        let p = f["machinery_samples"].as_f64().unwrap_or(0.0) / n.max(1.0);
        let (tw, ew) = median_and_half_iqr(&m["ns_with_all"]);
        let (to, eo) = median_and_half_iqr(&m["ns_without_all"]);
        let t = (tw - to) / tw;
        let tol = 3.0 * (p * (1.0 - p) / n.max(1.0)).sqrt() + (ew + eo) / tw + SYSTEMATIC;
        let line = format!(
            "{w}: profiled {p:.3} of {n} samples, timed {t:.3} ({tw:.1} vs {to:.1} ns), tolerance {tol:.3}"
        );
        // Too few samples, or a share off its timing.
        if n < MIN_SAMPLES || (p - t).abs() > tol {
            disturbed += 1;
            errs.push(line);
        } else {
            notes.push(line);
        }
    }
    let notes = notes.join("; ");
    Ok(if errs.is_empty() {
        CpuTrial::Passed(notes)
    } else {
        let text = format!("{}\n(passing: {notes})", errs.join("\n"));
        if disturbed == errs.len() {
            CpuTrial::Disturbed(text)
        } else {
            CpuTrial::Failed(text)
        }
    })
}

fn alloc(version: &str, goroot: &Path, goarch: &str) -> Result<(), Failed> {
    let bin = build(version, goroot, goarch)?;
    let (dir, meas) = run_fixture(&bin, goarch, "alloc", &["-iters", "20000"])?;
    let a = attribute(
        &bin,
        &dir.join("allocs.pprof"),
        &["--sample-index", "alloc_objects"],
    )?;
    let mut errs = Vec::new();
    for (w, m) in &meas {
        let fname = m["function"].as_str().unwrap_or("");
        let (mut closures, mut objects, mut bytes) = (0, 0, 0);
        if let Some(f) = function(&a, fname) {
            for s in f["sites"].as_array().into_iter().flatten() {
                let x = &s["allocs"];
                closures += x["closures"].as_i64().unwrap_or(0);
                objects +=
                    x["closures"].as_i64().unwrap_or(0) + x["defer_records"].as_i64().unwrap_or(0);
                bytes += x["closure_bytes"].as_i64().unwrap_or(0)
                    + x["defer_record_bytes"].as_i64().unwrap_or(0);
            }
        }
        let per = m["allocs_per_run"].as_f64().unwrap_or(-1.0);
        let calls = m["calls"].as_i64().unwrap_or(-1);
        let want = (
            (per * calls as f64) as i64,
            m["mallocs"].as_i64().unwrap_or(-1),
            m["bytes"].as_i64().unwrap_or(-1),
        );
        if (closures, objects, bytes) != want {
            errs.push(format!(
                "{w}: ours closures {closures}, objects {objects}, bytes {bytes}; program: \
                 AllocsPerRun {per} x {calls} calls, mallocs {}, bytes {}",
                want.1, want.2
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n").into())
    }
}

fn pprof_output(version: &str, goroot: &Path) -> Result<(), Failed> {
    let bin = build(version, goroot, "amd64")?;
    let (dir, _) = run_fixture(&bin, "amd64", "cpu", &["-dur", "300ms", "-rounds", "1"])?;
    let prof = dir.join("heap.pprof");
    let a = attribute(&bin, &prof, &["--sample-index", "samples"])?;
    let out = dir.join("heap-machinery.pprof");
    let st = deferscope()
        .args(["profile", "--format", "pprof", "-o"])
        .arg(&out)
        .arg(&bin)
        .arg(&prof)
        .output()?;
    if !st.status.success() {
        return Err(String::from_utf8_lossy(&st.stderr).into_owned().into());
    }
    let (rows, _) = pprof_top(goroot, None, &out, &[])?;
    let mut checked = 0;
    for f in a["functions"].as_array().into_iter().flatten() {
        for s in f["sites"].as_array().into_iter().flatten() {
            let m = s["machinery_samples"].as_i64().unwrap_or(0);
            if m == 0 {
                continue;
            }
            let file = s["file"].as_str().unwrap_or("");
            let base = file.rsplit('/').next().unwrap_or(file);
            let name = format!(
                "defer machinery: {} {base}:{}",
                f["function"].as_str().unwrap_or(""),
                s["line"]
            );
            match rows.get(&name) {
                Some(&(_, cum)) if cum == m => checked += 1,
                got => return Err(format!("{name}: pprof {got:?}, ours {m}").into()),
            }
        }
    }
    if checked == 0 {
        return Err("no site with machinery samples".into());
    }
    Ok(())
}

/// `deferscope profile` exits 2 with one line containing `want`.
fn expect_error(bin: &Path, prof: &Path, want: &str) -> Result<(), Failed> {
    let out = deferscope().arg("profile").arg(bin).arg(prof).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    if out.status.code() != Some(2)
        || lines.len() != 1
        || !lines[0].starts_with("deferscope: ")
        || lines[0].contains("internal error")
        || !lines[0].contains(want)
        || !out.stdout.is_empty()
    {
        return Err(format!(
            "{}: status {:?}, stderr {err:?}, want one line with {want:?}",
            prof.display(),
            out.status.code()
        )
        .into());
    }
    Ok(())
}

fn errors() -> Result<(), Failed> {
    let prof = repo_root().join("fixtures/profiles/workloads-open-go1.22.10-linux-amd64.pprof");
    let bin = entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.goos == "linux" && e.meta.goarch == "amd64")
        .ok_or("no committed linux/amd64 fixture")?
        .bin();
    expect_error(&bin, &prof, "not of this binary")?;
    let out = deferscope()
        .arg("profile")
        .arg(&bin)
        .arg(&prof)
        .arg("--force")
        .output()?;
    if !out.status.success() {
        return Err(format!("--force: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let data = std::fs::read(&prof)?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("profile-errors");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, b: &[u8]| -> std::io::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, b)?;
        Ok(p)
    };
    expect_error(
        &bin,
        &write("truncated.pprof", &data[..data.len() / 2])?,
        "gzip",
    )?;
    expect_error(&bin, &write("empty.pprof", b"")?, "empty file")?;
    expect_error(
        &bin,
        &write("text.pprof", b"hello, world\nthis is text\n")?,
        "not a pprof profile",
    )?;
    // A profile with a sample type and no samples (protobuf by hand:
    // sample_type {1, 2}, string table "", "samples", "count").
    let mut nosamples = vec![0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x32, 0x00];
    nosamples.extend([0x32, 7]);
    nosamples.extend(b"samples");
    nosamples.extend([0x32, 5]);
    nosamples.extend(b"count");
    expect_error(&bin, &write("nosamples.pprof", &nosamples)?, "no samples")?;
    // Corrupt: every single-byte change of the inflated profile ends in a
    // result or a one-line error, never a panic.
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2_read(&data)?, &mut raw)?;
    for i in (0..raw.len()).step_by((raw.len() / 64).max(1)) {
        let mut b = raw.clone();
        b[i] ^= 0xa5;
        let p = write("corrupt.pprof", &b)?;
        let out = deferscope()
            .arg("profile")
            .arg(&bin)
            .arg(&p)
            .arg("--force")
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !(out.status.success() || out.status.code() == Some(2) && err.lines().count() == 1)
            || err.contains("internal error")
        {
            return Err(format!("byte {i} flipped: status {:?}, {err}", out.status.code()).into());
        }
    }
    Ok(())
}

/// A gzip reader, through `gzip -dc` (the test crate has no inflater).
fn flate2_read(data: &[u8]) -> Result<std::io::Cursor<Vec<u8>>, Failed> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or("stdin")?.write_all(data)?;
    let out = child.wait_with_output()?;
    Ok(std::io::Cursor::new(out.stdout))
}

fn qemu_runs() -> bool {
    Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn trials() -> Vec<Trial> {
    let mut v = vec![Trial::test("profile::errors", errors)];
    let tcs = toolchains();
    if tcs.is_empty() {
        v.push(
            Trial::test("profile::toolchains", || {
                Err("no Go toolchain under the cache (scripts/install-toolchains.sh)".into())
            })
            .with_ignored_flag(true),
        );
    }
    for (ver, goroot) in &tcs {
        let (a, b) = (ver.clone(), goroot.clone());
        v.push(Trial::test(format!("profile::cpu::go{ver}"), move || {
            cpu(&a, &b, "amd64", true)
        }));
        let (a, b) = (ver.clone(), goroot.clone());
        v.push(Trial::test(format!("profile::alloc::go{ver}"), move || {
            alloc(&a, &b, "amd64")
        }));
    }
    if let Some((ver, goroot)) = tcs.last().cloned() {
        let (a, b) = (ver.clone(), goroot.clone());
        v.push(Trial::test(
            format!("profile::pprof_output::go{ver}"),
            move || pprof_output(&a, &b),
        ));
        let arm = qemu_runs();
        let (a, b) = (ver.clone(), goroot.clone());
        v.push(
            Trial::test(format!("profile::cpu_arm64_qemu::go{ver}"), move || {
                cpu(&a, &b, "arm64", false)
            })
            .with_ignored_flag(!arm),
        );
        v.push(
            Trial::test(format!("profile::alloc_arm64_qemu::go{ver}"), move || {
                alloc(&ver, &goroot, "arm64")
            })
            .with_ignored_flag(!arm),
        );
    }
    v
}
