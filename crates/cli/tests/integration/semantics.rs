//! `semantics::*`: what each deferred call receives, which results it
//! rewrites and what one execution of the defer statement allocates
//! (issue 14 items 1-3), on every matrix build of `fixtures/go/semantics`
//! (every version × platform, default and stripped), against oracles that
//! are not our output:
//!
//! - **captures**: the compiler's `-gcflags=-m=2` lines `F capturing by
//!   value|ref: x (... width=N)`, one build per version. Every capture must
//!   agree in mode; a value in width, a reference is 8 bytes. Where our
//!   capture is not exact (a closure in the frame: one capture per stored
//!   word), consecutive value words must add up to the compiler's widths.
//!   A name we give (from DWARF) must be the compiler's; on an unstripped
//!   build every variable (not the compiler's `.autotmp_N`) must be named,
//!   unless the build's DWARF has no variable of its name ([`dwarf_vars`]).
//!   The trial says how many of the compiler's variables were named.
//! - **writes_results**: the program prints each result as its return
//!   statement set it and as the caller got it; a result is rewritten when
//!   the two differ (run on linux/amd64, the same version's binary).
//! - **memory**: the program measures the allocations and bytes of one
//!   call of each `mem*` function with `runtime.ReadMemStats` (1,000 calls),
//!   for known trip counts; our `allocs_per_exec`/`bytes_per_exec` times
//!   the trips plus the once-per-call allocations must equal them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use deferscope_model::explain::{AllocPer, Capture, CaptureMode, SiteExplain};
use libtest_mimic::{Failed, Trial};

use crate::explain::explain_entry;
use crate::fixtures::{entries, go_cmd, go_tool, repo_root, Entry};

/// One `-m=2` capture line.
#[derive(Clone, Debug)]
struct Compiled {
    name: String,
    by_ref: bool,
    width: u64,
}

/// What the program printed.
#[derive(Clone, Debug, Default)]
struct Printed {
    /// function -> (position, name, before, after) per result.
    results: BTreeMap<String, Vec<(usize, String, String, String)>>,
    /// (function, trips, allocations, bytes) per call.
    mem: Vec<(String, u64, f64, f64)>,
}

type Memo<T> = Mutex<HashMap<String, Arc<Result<T, String>>>>;

fn src_dir() -> PathBuf {
    repo_root().join("fixtures/go/semantics")
}

/// The compiler's captures per function (short name), in order, for the
/// toolchain at `goroot` (built once per version).
fn compiled(version: &str, goroot: &Path) -> Arc<Result<BTreeMap<String, Vec<Compiled>>, String>> {
    static MEMO: OnceLock<Memo<BTreeMap<String, Vec<Compiled>>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    let mut g = memo.lock().unwrap_or_else(|p| p.into_inner());
    g.entry(version.to_owned())
        .or_insert_with(|| Arc::new(run_m2(version, goroot)))
        .clone()
}

fn run_m2(version: &str, goroot: &Path) -> Result<BTreeMap<String, Vec<Compiled>>, String> {
    let out = go_cmd(goroot, version, "semantics-m2", &src_dir())
        .args(["build", "-gcflags=-m=2", "-o", "/dev/null", "."])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "go build -m=2: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let mut by: BTreeMap<String, Vec<Compiled>> = BTreeMap::new();
    for l in text.lines() {
        // ./main.go:43:2: closureCap capturing by ref: a (addr=false assign=true width=8)
        let Some((head, rest)) = l.split_once(" capturing by ") else {
            continue;
        };
        let func = head.rsplit(' ').next().unwrap_or("").to_owned();
        let (mode, rest) = rest.split_once(": ").ok_or(l)?;
        let (name, attrs) = rest.split_once(" (").ok_or(l)?;
        let width = attrs
            .split("width=")
            .nth(1)
            .and_then(|w| w.trim_end_matches(')').parse().ok())
            .ok_or(l)?;
        by.entry(func).or_default().push(Compiled {
            name: name.to_owned(),
            by_ref: mode == "ref",
            width,
        });
    }
    if by.is_empty() {
        return Err("-m=2 printed no capture lines".into());
    }
    Ok(by)
}

/// What the version's linux/amd64 default build printed (run once).
fn printed(e: &Entry) -> Arc<Result<Printed, String>> {
    static MEMO: OnceLock<Memo<Printed>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    let mut g = memo.lock().unwrap_or_else(|p| p.into_inner());
    let v = e.meta.go_version.clone();
    // <root>/go<V>/<platform>/<variant>/semantics -> linux-amd64/default.
    let bin = e
        .dir
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .map(|p| p.join("linux-amd64/default/semantics/bin"));
    g.entry(v)
        .or_insert_with(|| Arc::new(run_program(bin)))
        .clone()
}

fn run_program(bin: Option<PathBuf>) -> Result<Printed, String> {
    let bin = bin.ok_or("no linux/amd64 build of this version")?;
    let out = Command::new(&bin)
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!("{} exited with {}", bin.display(), out.status));
    }
    let mut p = Printed::default();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["result", f, pos, name, before, after] => {
                p.results.entry((*f).to_owned()).or_default().push((
                    pos.parse().map_err(|_| l.to_owned())?,
                    (*name).to_owned(),
                    (*before).to_owned(),
                    (*after).to_owned(),
                ))
            }
            ["mem", f, trips, allocs, bytes] => p.mem.push((
                (*f).to_owned(),
                trips.parse().map_err(|_| l.to_owned())?,
                allocs.parse().map_err(|_| l.to_owned())?,
                bytes.parse().map_err(|_| l.to_owned())?,
            )),
            _ => {}
        }
    }
    if p.results.is_empty() || p.mem.is_empty() {
        return Err("the program printed no results or measurements".into());
    }
    Ok(p)
}

/// Compare our captures of one site with the compiler's.
fn compare_captures(ours: &[Capture], theirs: &[Compiled]) -> Result<(), String> {
    let mut i = 0;
    for c in theirs {
        let Some(o) = ours.get(i) else {
            return Err(format!("missing {} ({} bytes)", c.name, c.width));
        };
        if let Some(n) = &o.name {
            if *n != c.name {
                return Err(format!("named {n}, the compiler says {}", c.name));
            }
        }
        if c.by_ref {
            if o.mode != CaptureMode::Ref || o.bytes != 8 {
                return Err(format!(
                    "{} by ref: ours {} {} bytes",
                    c.name,
                    o.mode.as_str(),
                    o.bytes
                ));
            }
            i += 1;
            continue;
        }
        // A value: one exact capture of its width, or inexact words that
        // add up to it.
        let mut sum = 0;
        while sum < c.width {
            let Some(o) = ours.get(i) else {
                return Err(format!("{}: only {sum} of {} bytes", c.name, c.width));
            };
            if o.mode != CaptureMode::Value || (o.exact && sum > 0) {
                return Err(format!(
                    "{} by value ({} bytes): ours {ours:?}",
                    c.name, c.width
                ));
            }
            sum += o.bytes;
            i += 1;
            if o.exact {
                break;
            }
        }
        if sum != c.width {
            return Err(format!("{} is {} bytes, ours {sum}", c.name, c.width));
        }
    }
    if i != ours.len() {
        return Err(format!(
            "{} captures more than the compiler's",
            ours.len() - i
        ));
    }
    Ok(())
}

/// The variables the build's DWARF gives each `main.` function (any
/// depth, not in inlined calls), read by `dwarfvars.go` with Go's own
/// `debug/dwarf`: a captured variable the compiler kept no DWARF variable
/// for in either the function or its closures cannot be named (amd64
/// before go1.24 folds `memHeapValue`'s `x := i * 2` into the store that
/// fills the closure; go1.19 keeps no `f` in `chanLast`).
fn dwarf_vars(e: &Entry) -> Result<HashMap<String, Vec<String>>, String> {
    let tool = go_tool("dwarfvars").ok_or("no Go toolchain to build dwarfvars.go")?;
    let out = Command::new(tool)
        .arg(e.bin())
        .arg("main.")
        .output()
        .map_err(|x| x.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "dwarfvars: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((f, v)) = l.split_once('\t') {
            by.entry(f.to_owned()).or_default().push(v.to_owned());
        }
    }
    Ok(by)
}

/// Whether `name` is a DWARF variable of `main.f` or of its closures.
fn in_dwarf(vars: &HashMap<String, Vec<String>>, f: &str, name: &str) -> bool {
    let full = format!("main.{f}");
    vars.iter()
        .filter(|(g, _)| {
            **g == full
                || g.strip_prefix(&full)
                    .is_some_and(|r| r.starts_with(".func"))
        })
        .any(|(_, vs)| vs.iter().any(|v| v == name))
}

fn check(e: &Entry) -> Result<String, String> {
    let goroot = e.meta.goroot.clone();
    let comp = compiled(&e.meta.go_version, &goroot);
    let comp = comp.as_ref().as_ref().map_err(|x| x.clone())?;
    let printed = printed(e);
    let printed = printed.as_ref().as_ref().map_err(|x| x.clone())?;
    let (r, x) = explain_entry(e)?;
    let mut sites: BTreeMap<&str, Vec<&SiteExplain>> = BTreeMap::new();
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        if let Some(f) = s.function.strip_prefix("main.") {
            sites.entry(f).or_default().push(sx);
        }
    }
    let mut errs = Vec::new();
    let mut vars: Option<Result<HashMap<String, Vec<String>>, String>> = None;
    let (mut ncap, mut nres, mut nmem) = (0, 0, 0);
    // Captures named (DWARF), of the compiler's non-temporary ones.
    let (mut named, mut user) = (0, 0);
    for (f, ss) in &sites {
        if f.starts_with("main") || f.contains('.') || ss.len() != 1 {
            continue;
        }
        let sx = ss[0];
        // Captures.
        let want = comp.get(*f).map(Vec::as_slice).unwrap_or(&[]);
        match (&sx.captures, *f) {
            // A func value built by the caller: not known here.
            (None, "deferParam") => {}
            (None, _) => errs.push(format!("{f}: captures unknown")),
            (Some(c), _) => match compare_captures(c, want) {
                Ok(()) => {
                    ncap += want.len();
                    let n = c.iter().filter(|c| c.name.is_some()).count();
                    let u = want.iter().filter(|w| !w.name.starts_with('.')).count();
                    named += n;
                    user += u;
                    if !e.meta.stripped && n < u {
                        let vars = vars.get_or_insert_with(|| dwarf_vars(e));
                        let vars = vars.as_ref().map_err(|x| x.clone())?;
                        let k = want
                            .iter()
                            .filter(|w| !w.name.starts_with('.') && in_dwarf(vars, f, &w.name))
                            .count();
                        if n < k {
                            errs.push(format!(
                                "{f}: {n} of the compiler's {u} variables named on an unstripped \
                                 build, {k} of them in its DWARF"
                            ));
                        }
                    }
                }
                Err(m) => errs.push(format!("{f}: {m}")),
            },
        }
        // Results rewritten.
        let full = format!("main.{f}");
        let changed: Vec<(usize, &str)> = printed
            .results
            .get(&full)
            .into_iter()
            .flatten()
            .filter(|(_, _, b, a)| b != a)
            .map(|(p, n, _, _)| (*p, n.as_str()))
            .collect();
        let ok = sx.writes_results.len() == changed.len()
            && sx
                .writes_results
                .iter()
                .zip(&changed)
                .all(|(w, (p, n))| *w == format!("result word {p}") || w == n);
        if !ok {
            errs.push(format!(
                "{f}: writes_results {:?}, the program saw {changed:?} change",
                sx.writes_results
            ));
        }
        nres += printed.results.get(&full).map_or(0, Vec::len);
    }
    // SARIF: one writes-results note per function whose result changed.
    let sarif = deferscope_report::sarif::sarif_value(&r, Some(&x));
    let mut noted: Vec<String> = sarif["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["ruleId"] == "deferscope/writes-results")
        .filter_map(|v| v["properties"]["function"].as_str().map(str::to_owned))
        .collect();
    noted.sort();
    let mut want: Vec<String> = printed
        .results
        .iter()
        .filter(|(_, rs)| rs.iter().any(|(_, _, b, a)| b != a))
        .map(|(f, _)| f.clone())
        .collect();
    want.sort();
    if noted != want {
        errs.push(format!(
            "SARIF notes {noted:?}, rewritten results in {want:?}"
        ));
    }
    // Memory.
    for (f, trips, allocs, bytes) in &printed.mem {
        let Some(sx) = f
            .strip_prefix("main.")
            .and_then(|f| sites.get(f))
            .and_then(|v| v.first())
        else {
            errs.push(format!("{f}: no site"));
            continue;
        };
        let (Some(ae), Some(be)) = (sx.allocs_per_exec, sx.bytes_per_exec) else {
            errs.push(format!("{f}: allocations per execution unknown"));
            continue;
        };
        let once = sx.allocations.iter().filter(|a| a.per == AllocPer::Call);
        let pa = trips * ae as u64 + once.clone().count() as u64;
        let pb = trips * be + once.map(|a| a.bytes).sum::<u64>();
        if (pa as f64 - allocs).abs() > 0.05 || (pb as f64 - bytes).abs() > 0.5 {
            errs.push(format!(
                "{f}({trips}): predicted {pa} allocations, {pb} B; the program measured \
                 {allocs} and {bytes} B per call"
            ));
        }
        nmem += 1;
    }
    if ncap == 0 || nres == 0 || nmem == 0 {
        errs.push("nothing compared".into());
    }
    if errs.is_empty() {
        Ok(format!(
            "{ncap} captures ({named} of {user} variables named), {nres} results, {nmem} \
             measurements agree"
        ))
    } else {
        Err(errs.join("\n"))
    }
}

pub fn trials() -> Vec<Trial> {
    let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") else {
        return Vec::new();
    };
    if m.is_empty() {
        return Vec::new();
    }
    entries(Path::new(&m))
        .into_iter()
        .filter(|e| e.meta.program == "semantics")
        .map(|e| {
            let name = e.name();
            Trial::test(format!("semantics::{name}"), move || {
                check(&e)
                    .map(|m| eprintln!("semantics {name}: {m}"))
                    .map_err(Failed::from)
            })
        })
        .collect()
}
