//! `explain` trials: reasons and deferred targets against the fixture's
//! own source, and rule coverage on cmd/go.
//!
//! - `explain::fixture::<entry>`: for every binary of program `explain`
//!   (fixtures/go/explain), each function's `reason: <code>` comment lines
//!   give its reasons, and its reason codes must be exactly those: the
//!   lines whose variant list (`(noopt, noopendefer and race builds
//!   only)`) is absent or names the binary's variant, plus `build-flags`
//!   in the `noopt`, `noopendefer` and `race` variants (how the matrix
//!   built them: `-N`, `-d=noopendefer`, `-race`). No code at all means the
//!   source says the function is open-coded there. Each of its defer sites
//!   must resolve to the `callee: <symbol>` the comment names. Functions in
//!   a file with a `//go:build go1.N` line are expected only from go1.N.
//! - `explain::race::<entry>`: for every `race` binary, against the
//!   compiler's `-d=defer` output of the same program's `default` and
//!   `race` builds: a defer that is open-coded in the default build and not
//!   in the race build must get `build-flags`; from go1.26 a defer in
//!   sync, sync/atomic, internal/sync or internal/runtime/atomic must not
//!   (objabi's `noRaceFuncPkgs`: no race hooks, so -race does not disable
//!   open-coding there; cmd/internal/objabi/pkgspecial.go and ssagen
//!   `buildssa` @go1.26.6).
//! - `explain::cmdgo::<entry>`: on cmd/go, every function whose defers are
//!   not open-coded gets at least one reason; the reason counts and the
//!   number of `unknown` functions are printed.
//! - `explain::cmdgo_strict::<entry>`: the same, plus: no function is
//!   `unknown`; every heap-allocated site is explained by `in-loop` or
//!   `range-func` (docs/design.md §1.2: from go1.17, a defer is heap-allocated
//!   exactly when escape analysis puts it in a loop, or it is a
//!   range-over-func body's); and every `too-many-returns` claim holds in
//!   the source: `countreturns.go` (go/ast, run with the entry's own
//!   toolchain when installed) counts the function's return statements,
//!   and they times its defers must exceed 15.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use deferscope_analyze::explain::{Explain, Reason};
use deferscope_analyze::{Kind, Scan};
use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries, repo_root, Entry};

/// What the fixture source says about one function.
#[derive(Debug, Clone)]
struct Expect {
    func: String,
    /// Each reason with the variants it is limited to (empty: all).
    reasons: Vec<(Reason, Vec<String>)>,
    callee: String,
    /// From a `//go:build go1.N` file: (1, N).
    min_minor: Option<u32>,
}

/// Variants built with a flag that disables open-coding everywhere.
const FLAG_VARIANTS: [&str; 3] = ["noopt", "noopendefer", "race"];

impl Expect {
    /// The reason codes the source gives for a binary of `variant`.
    fn expected(&self, variant: &str) -> BTreeSet<Reason> {
        let mut out: BTreeSet<Reason> = self
            .reasons
            .iter()
            .filter(|(_, only)| only.is_empty() || only.iter().any(|v| v == variant))
            .map(|(r, _)| *r)
            .collect();
        if FLAG_VARIANTS.contains(&variant) {
            out.insert(Reason::BuildFlags);
        }
        out
    }
}

fn parse_source(dir: &Path) -> Result<Vec<Expect>, String> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "go"))
        .collect();
    files.sort();
    for p in files {
        let src = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        let min_minor = src.lines().find_map(|l| {
            let c = l.strip_prefix("//go:build go1.")?;
            c.trim().parse::<u32>().ok()
        });
        let mut reasons: Vec<(Reason, Vec<String>)> = Vec::new();
        let mut callee: Option<String> = None;
        for l in src.lines() {
            let t = l.trim_start_matches("//").trim();
            if let Some(r) = t.strip_prefix("reason: ").filter(|r| !r.starts_with('<')) {
                let (code, rest) = r.split_once(' ').unwrap_or((r, ""));
                let code =
                    Reason::parse(code).ok_or(format!("bad reason {code:?} in {}", p.display()))?;
                let only = rest
                    .trim_start_matches('(')
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| {
                        [
                            "default",
                            "noopt",
                            "noopendefer",
                            "race",
                            "pie",
                            "trimpath",
                            "stripped",
                            "strip",
                        ]
                        .contains(w)
                    })
                    .map(str::to_owned)
                    .collect();
                reasons.push((code, only));
            } else if let Some(c) = t.strip_prefix("callee: ").filter(|c| !c.starts_with('<')) {
                callee = Some(c.trim().to_owned());
            } else if let Some(sig) = l.strip_prefix("func ") {
                if let (false, Some(c)) = (reasons.is_empty(), callee.take()) {
                    let name = sig.split('(').next().unwrap_or("").trim().to_owned();
                    out.push(Expect {
                        func: format!("main.{name}"),
                        reasons: std::mem::take(&mut reasons),
                        callee: c,
                        min_minor,
                    });
                }
                reasons.clear();
                callee = None;
            }
        }
    }
    if out.is_empty() {
        return Err(format!("no `reason:` comments found in {}", dir.display()));
    }
    Ok(out)
}

pub(crate) fn explain_entry(e: &Entry) -> Result<(Scan, Explain), String> {
    let bin = e.bin();
    let m = deferscope_load::Mapped::open(&bin).map_err(|x| x.to_string())?;
    let img = m.image().map_err(|x| x.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|x| x.to_string())?;
    let r = deferscope_analyze::scan(&bin.display().to_string(), &img, &ix)
        .map_err(|x| x.to_string())?;
    let x = deferscope_analyze::explain::explain(
        &img,
        &ix,
        &r,
        &deferscope_analyze::cost::CostTable::published(),
    );
    Ok((r, x))
}

pub(crate) fn minor(v: &str) -> u32 {
    v.split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// The functions an expectation covers: the function itself and, for
/// range-func, its loop-body closures (`F-rangeN`, `F.funcN` in go1.22).
fn covered(r: &Scan, exp: &Expect) -> Vec<usize> {
    (0..r.functions.len())
        .filter(|&i| {
            let n = &r.functions[i].name;
            n == &exp.func
                || (exp.reasons.iter().any(|r| r.0 == Reason::RangeFunc)
                    && (n.starts_with(&format!("{}-range", exp.func))
                        || n.starts_with(&format!("{}.func", exp.func))))
        })
        .collect()
}

/// Counts one fixture trial checked, for its message.
#[derive(Default)]
struct FixtureCounts {
    functions: usize,
    targets: usize,
    loops: usize,
}

/// The fixture's source files, by base name.
fn fixture_sources() -> Result<BTreeMap<String, Vec<String>>, String> {
    let dir = repo_root().join("fixtures/go/explain");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&dir).map_err(|x| format!("{}: {x}", dir.display()))? {
        let p = e.map_err(|x| x.to_string())?.path();
        if p.extension().is_some_and(|x| x == "go") {
            let text = std::fs::read_to_string(&p).map_err(|x| x.to_string())?;
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.insert(name, text.lines().map(str::to_owned).collect());
        }
    }
    Ok(out)
}

/// An in-site's loop lines against the gofmt-ed source: for a `for` loop
/// (the nearest less indented `for` line above the defer), the loop must
/// start at the `for` line and end at or before its closing brace; for a
/// `goto` loop (a label above the defer and a `goto` to it below), it must
/// lie between the label and the `goto`. The defer's line is inside.
fn check_loop_lines(
    sources: &BTreeMap<String, Vec<String>>,
    file: &str,
    line: u32,
    ll: &deferscope_analyze::explain::LoopLines,
) -> Result<(), String> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let Some(src) = sources.get(base) else {
        return Err(format!("source file {base} not found"));
    };
    let indent = |l: &str| l.len() - l.trim_start_matches('\t').len();
    let at = line as usize - 1;
    let d = indent(src.get(at).ok_or("defer line past the end of the source")?);
    let got = (ll.first_line, ll.last_line);
    if !(ll.first_line <= line && line <= ll.last_line) {
        return Err(format!("loop lines {got:?} do not hold the defer"));
    }
    for i in (0..at).rev() {
        let l = &src[i];
        if l.starts_with("func ") {
            break;
        }
        if indent(l) < d && l.trim_start().starts_with("for ") {
            let close = (at..src.len())
                .find(|&j| indent(&src[j]) == indent(l) && src[j].trim() == "}")
                .ok_or("no closing brace for the loop")?;
            let want = (i as u32 + 1, close as u32 + 1);
            return if ll.first_line == want.0 && ll.last_line <= want.1 {
                Ok(())
            } else {
                Err(format!(
                    "loop lines {got:?}, source's loop is lines {want:?}"
                ))
            };
        }
        if let Some(label) = l
            .strip_suffix(':')
            .filter(|x| !x.contains(' ') && !x.is_empty())
        {
            let goto = (at..src.len())
                .find(|&j| src[j].trim() == format!("goto {label}"))
                .ok_or("label without a goto below the defer")?;
            let want = (i as u32 + 1, goto as u32 + 1);
            return if ll.first_line >= want.0 && ll.last_line <= want.1 {
                Ok(())
            } else {
                Err(format!(
                    "loop lines {got:?}, source's goto loop is lines {want:?}"
                ))
            };
        }
    }
    Err("no loop in the source around the defer".into())
}

/// A deferred `println` of a constant string is named a builtin, not
/// `unresolved`: the source's `defer println("...")` (checked here) makes
/// the compiler fold the newline into the string, so the wrapper calls
/// `runtime.printlock`, `printstring` and `printunlock`, as `print("...\n")`
/// would: `print/println` (issue 14 item 6).
fn check_builtin_target(e: &Entry) -> Result<(), String> {
    let src = std::fs::read_to_string(repo_root().join("fixtures/go/defers/recover.go"))
        .map_err(|e| e.to_string())?;
    if !src.contains("func deferPrintln() {\n\tdefer println(\"") {
        return Err("recover.go: deferPrintln no longer defers println of a constant".into());
    }
    let (r, x) = explain_entry(e)?;
    let got: Vec<Option<&str>> = r
        .sites
        .iter()
        .zip(&x.sites)
        .filter(|(s, _)| s.function == "main.deferPrintln")
        .map(|(_, sx)| sx.deferred_target.as_deref())
        .collect();
    if got.is_empty() || got.iter().any(|t| *t != Some("print/println")) {
        return Err(format!("main.deferPrintln's targets: {got:?}"));
    }
    Ok(())
}

fn check_fixture(e: &Entry) -> Result<String, String> {
    let exps = parse_source(&repo_root().join("fixtures/go/explain"))?;
    let sources = fixture_sources()?;
    let (r, x) = explain_entry(e)?;
    let mut errs = Vec::new();
    let mut n = FixtureCounts::default();
    let variant = e.meta.variant.as_str();
    // strip/stripped are built like default.
    let like = if matches!(variant, "strip" | "stripped" | "trimpath" | "pie") {
        "default"
    } else {
        variant
    };
    for exp in &exps {
        if exp.min_minor.is_some_and(|m| minor(&e.meta.go_version) < m) {
            continue;
        }
        let fs = covered(&r, exp);
        if !fs.iter().any(|&i| r.functions[i].name == exp.func) {
            errs.push(format!("{}: not in the binary's defer functions", exp.func));
            continue;
        }
        let want = exp.expected(like);
        for &i in &fs {
            let f = &r.functions[i];
            if f.sites == 0 && !f.calls_deferrangefunc {
                continue;
            }
            n.functions += 1;
            let got: BTreeSet<Reason> = x.functions[i].reasons.iter().copied().collect();
            if got != want {
                errs.push(format!(
                    "{}: reasons {got:?}, source says {want:?} in {variant} builds{}",
                    f.name,
                    if want.is_empty() { " (open-coded)" } else { "" }
                ));
            }
            for (s, sx) in r.sites.iter().zip(&x.sites) {
                if s.function != f.name {
                    continue;
                }
                n.targets += 1;
                if sx.deferred_target.as_deref() != Some(exp.callee.as_str()) {
                    errs.push(format!(
                        "{}:{} in {}: deferred target {:?}, source says {}",
                        s.file, s.line, f.name, sx.deferred_target, exp.callee
                    ));
                }
                if let Some(ll) = &sx.loop_lines {
                    n.loops += 1;
                    if let Err(why) = check_loop_lines(&sources, &s.file, s.line, ll) {
                        errs.push(format!("{}:{} in {}: {why}", s.file, s.line, f.name));
                    }
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(format!(
            "{} functions' reasons, {} deferred targets and {} loops as the source says",
            n.functions, n.targets, n.loops
        ))
    } else {
        Err(errs.join("\n"))
    }
}

/// Return statements per function in the Go source, from
/// `countreturns.go` (go/ast) run with the toolchain that built the entry:
/// "file:line" of the `func` keyword -> count. `None` when that toolchain is
/// not installed.
fn source_returns(e: &Entry, files: &BTreeSet<String>) -> Option<BTreeMap<String, usize>> {
    let go = e.meta.goroot.join("bin/go");
    if !go.is_file() {
        return None;
    }
    let cache = std::env::var_os("DEFERSCOPE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/deferscope")))?
        .join("gocache")
        .join(format!("explain-test-{}", e.meta.go_version));
    let prog = repo_root().join("crates/cli/tests/integration/countreturns.go");
    let mut child = std::process::Command::new(&go)
        .arg("run")
        .arg(&prog)
        .env("GOROOT", &e.meta.goroot)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", cache)
        .env("GOFLAGS", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take()?;
        for f in files {
            writeln!(stdin, "{f}").ok()?;
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (k, c) = l.rsplit_once(' ')?;
                Some((k.to_owned(), c.parse().ok()?))
            })
            .collect(),
    )
}

/// `strict` adds: no `unknown` reason; every heap-allocated site explained
/// by `in-loop` or `range-func`; and every `too-many-returns` claim true of
/// the source: its return statements (go/ast, `countreturns.go`) times its
/// defers exceed 15.
fn check_cmdgo(e: &Entry, strict: bool) -> Result<(), String> {
    let (r, x) = explain_entry(e)?;
    let mut errs = Vec::new();
    let mut not_open = 0;
    let mut unknown = Vec::new();
    let mut counts: BTreeMap<Reason, usize> = BTreeMap::new();
    for (f, fx) in r.functions.iter().zip(&x.functions) {
        if f.open_coded_defers.is_some() || (f.sites == 0 && !f.calls_deferrangefunc) {
            continue;
        }
        not_open += 1;
        if fx.reasons.is_empty() {
            errs.push(format!("{}: not open-coded and no reason", f.name));
        }
        for &c in &fx.reasons {
            *counts.entry(c).or_default() += 1;
        }
        if fx.reasons.contains(&Reason::Unknown) {
            unknown.push(f.name.clone());
        }
    }
    let mut returns_checked = None;
    if strict {
        let claims: Vec<usize> = (0..r.functions.len())
            .filter(|&i| x.functions[i].reasons.contains(&Reason::TooManyReturns))
            .collect();
        let files: BTreeSet<String> = claims
            .iter()
            .map(|&i| r.functions[i].file.clone())
            .collect();
        if let Some(src) = source_returns(e, &files) {
            let mut n = 0;
            for &i in &claims {
                let f = &r.functions[i];
                let Some(&c) = src.get(&format!("{}:{}", f.file, f.line)) else {
                    continue;
                };
                n += 1;
                if c * f.sites <= 15 {
                    errs.push(format!(
                        "{}: too-many-returns, but its source has {c} return statements x {} \
                         defers",
                        f.name, f.sites
                    ));
                }
            }
            returns_checked = Some((n, claims.len()));
        }
    }
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        if strict
            && s.kind == Kind::HeapAllocated
            && !sx.reasons.contains(&Reason::InLoop)
            && !sx.reasons.contains(&Reason::RangeFunc)
        {
            errs.push(format!(
                "{}:{} in {}: heap-allocated but reasons {:?}",
                s.file, s.line, s.function, sx.reasons
            ));
        }
    }
    eprintln!(
        "explain::cmdgo {}: {not_open} functions not open-coded; reasons {counts:?}; unknown \
         {}{}{}",
        e.name(),
        unknown.len(),
        if unknown.is_empty() {
            String::new()
        } else {
            format!(": {}", unknown.join(", "))
        },
        match returns_checked {
            Some((n, of)) => format!(
                "; too-many-returns true of the source in {n} of {of} claims (the others' \
                 source not found)"
            ),
            None => String::new(),
        }
    );
    if strict && !unknown.is_empty() {
        errs.push(format!(
            "{} functions with reason unknown: {}",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

/// Packages whose functions get no race hooks from go1.26
/// (`noRaceFuncPkgs`, cmd/internal/objabi/pkgspecial.go @go1.26.6 and
/// @go1.27.3; before go1.26 ssagen set the hooks regardless).
const NO_RACE_FUNC_PKGS: [&str; 4] = [
    "sync",
    "sync/atomic",
    "internal/sync",
    "internal/runtime/atomic",
];

/// The compiler's kinds at each (file, line) of an entry's defer.txt.
fn compiler_kinds(e: &Entry) -> Result<crate::oracle::Compiler, String> {
    let text = std::fs::read_to_string(e.dir.join("defer.txt"))
        .map_err(|x| format!("{}: defer.txt: {x}", e.name()))?;
    Ok(crate::oracle::Compiler::parse(
        &text,
        &e.meta.build_dir,
        &e.meta.goroot,
        None,
    ))
}

fn kinds_at<'c>(
    c: &'c crate::oracle::Compiler,
    file: &str,
    line: u32,
) -> Option<&'c BTreeMap<String, BTreeSet<u32>>> {
    c.lines.get(&(file.to_owned(), line)).or_else(|| {
        c.lines
            .iter()
            .find(|((f, l), _)| *l == line && crate::oracle::same_file(f, file))
            .map(|(_, k)| k)
    })
}

fn check_race(e: &Entry, default: &Entry) -> Result<String, String> {
    let race_c = compiler_kinds(e)?;
    let def_c = compiler_kinds(default)?;
    let (r, x) = explain_entry(e)?;
    let go126 = minor(&e.meta.go_version) >= 26;
    let mut errs = Vec::new();
    let (mut flagged, mut exempt) = (0, 0);
    for (s, sx) in r.sites.iter().zip(&x.sites) {
        let has = sx.reasons.contains(&Reason::BuildFlags);
        if go126 && NO_RACE_FUNC_PKGS.contains(&s.package.as_str()) {
            exempt += 1;
            if has {
                errs.push(format!(
                    "{}:{} in {}: package {} gets no race hooks from go1.26, but build-flags",
                    s.file, s.line, s.function, s.package
                ));
            }
        }
        if s.kind == Kind::OpenCoded {
            continue;
        }
        let only_open = |c: &crate::oracle::Compiler| {
            kinds_at(c, &s.file, s.line).is_some_and(|k| k.keys().all(|k| k == "open-coded"))
        };
        let race_not_open =
            kinds_at(&race_c, &s.file, s.line).is_some_and(|k| k.keys().all(|k| k != "open-coded"));
        if only_open(&def_c) && race_not_open {
            flagged += 1;
            if !has {
                errs.push(format!(
                    "{}:{} in {}: open-coded without -race, not with it, but reasons {:?}",
                    s.file, s.line, s.function, sx.reasons
                ));
            }
        }
    }
    if flagged == 0 {
        errs.push("no defer that -race alone turns from open-coded: nothing checked".into());
    }
    if go126 && exempt == 0 {
        errs.push("no defer in a race-exempt package: nothing checked".into());
    }
    if errs.is_empty() {
        Ok(format!(
            "{flagged} sites open-coded only without -race have build-flags; {exempt} sites of \
             race-exempt packages have not"
        ))
    } else {
        Err(errs.join("\n"))
    }
}

pub fn trials() -> Vec<Trial> {
    let mut roots = vec![committed_root()];
    if let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") {
        if !m.is_empty() {
            roots.push(PathBuf::from(m));
        }
    }
    let mut out = Vec::new();
    for root in roots {
        for e in entries(&root) {
            let name = e.name();
            // <root>/go<V>/<platform>/race/<program> -> .../default/<program>
            if e.meta.variant == "race" && e.meta.program != "cmdgo" {
                let default = e
                    .dir
                    .parent()
                    .and_then(|p| p.parent())
                    .map(|p| p.join("default").join(&e.meta.program))
                    .and_then(|d| entries(&d).into_iter().next());
                if let Some(d) = default {
                    let e2 = e.clone();
                    let n2 = name.clone();
                    out.push(Trial::test(format!("explain::race::{name}"), move || {
                        check_race(&e2, &d)
                            .map(|m| eprintln!("explain::race {n2}: {m}"))
                            .map_err(Failed::from)
                    }));
                }
            }
            match e.meta.program.as_str() {
                "explain" => out.push(Trial::test(
                    format!("explain::fixture::{name}"),
                    move || {
                        check_fixture(&e)
                            .map(|m| eprintln!("explain::fixture {name}: {m}"))
                            .map_err(Failed::from)
                    },
                )),
                "defers" => out.push(Trial::test(
                    format!("explain::builtin_target::{name}"),
                    move || check_builtin_target(&e).map_err(Failed::from),
                )),
                "cmdgo" => {
                    let e2 = e.clone();
                    out.push(Trial::test(format!("explain::cmdgo::{name}"), move || {
                        check_cmdgo(&e2, false).map_err(Failed::from)
                    }));
                    out.push(Trial::test(
                        format!("explain::cmdgo_strict::{name}"),
                        move || check_cmdgo(&e, true).map_err(Failed::from),
                    ));
                }
                _ => {}
            }
        }
    }
    out
}
