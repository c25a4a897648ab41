//! Reports for people and CI: SARIF, diff, check and check --verify.
//!
//! - `report::sarif::*`: `scan --format sarif` (and `explain --format
//!   sarif`) of the committed fixtures and of matrix binaries (cmd/go per
//!   toolchain, stripped, -trimpath, Windows) validate against the
//!   published SARIF 2.1.0 JSON schema, with a real validator (Python
//!   `jsonschema`, Draft 4 as the schema declares). The schema comes from
//!   the npm package `@microsoft/jest-sarif`
//!   (`lib/schemas/sarif-2.1.0-rtm.5.json`), installed into
//!   `${DEFERSCOPE_CACHE}/sarif/` by `scripts/install-sarif-schema.sh`
//!   (run by `scripts/test-all.sh`). GitHub code scanning's own limits are
//!   checked too: every result's `ruleId` is a listed rule at `ruleIndex`,
//!   a non-empty message, a location with a line.
//! - `report::verify::matrix::*`: the product's verifier
//!   (`deferscope_analyze::verify`, which decides from the binary's own line
//!   table which compiler lines have code) finds 0 disagreements between
//!   each matrix binary and the compiler's `-d=defer` lines saved beside it.
//! - `report::diff::go<ver>::*`: `fixtures/go/diff/{base,inloop,shifted}`
//!   built with a toolchain; the compiler's `-d=defer` lines are first
//!   checked against the facts written from the sources (fixtures/go/diff
//!   README), then: `diff base inloop --fail-on heap-allocated` exits 1 and
//!   names `main.total`'s site, open-coded -> heap-allocated;
//!   `diff base shifted` reports no change.
//! - `report::check::go<ver>::*`: `check --verify` in a fixture module
//!   (and in fixtures/go/defers) reports 0 disagreements and the sites the
//!   sources say; cmd/go from the newest toolchain's source too; with a `go`
//!   that adds a false compiler line, it reports the disagreement and exits
//!   1; with stderr not a terminal, nothing but the verdict is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{
    cache_root, committed_root, entries, module_path, repo_root, toolchains, Entry,
};

fn schema_path() -> PathBuf {
    cache_root().join("sarif/sarif-schema-2.1.0.json")
}

const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
v = jsonschema.Draft4Validator(schema)
errs = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
for e in errs[:10]:
    print("/".join(str(p) for p in e.path), e.message[:300])
print("errors", len(errs))
"#;

/// Validate a SARIF document with Python's jsonschema against the schema.
fn validate(doc: &[u8]) -> Result<(), Failed> {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema_path())
        .env("PYTHONPATH", cache_root().join("pylib"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(doc)?;
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.trim_end().lines().last() != Some("errors 0") {
        return Err(format!(
            "SARIF does not validate: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// GitHub code scanning's constraints beyond the schema.
fn github_checks(doc: &Value, want_results: usize) -> Result<(), Failed> {
    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"]
        .as_array()
        .ok_or("no rules")?;
    let results = run["results"].as_array().ok_or("no results")?;
    if results.len() != want_results {
        return Err(format!(
            "{} results, want {want_results} (the stack- and heap-allocated sites)",
            results.len()
        )
        .into());
    }
    for r in results {
        let id = r["ruleId"].as_str().ok_or("result without ruleId")?;
        let i = r["ruleIndex"].as_u64().ok_or("result without ruleIndex")? as usize;
        if rules.get(i).and_then(|x| x["id"].as_str()) != Some(id) {
            return Err(format!("ruleIndex {i} is not rule {id}").into());
        }
        if id.len() > 255 || r["message"]["text"].as_str().is_none_or(str::is_empty) {
            return Err(format!("bad result {r}").into());
        }
        let loc = &r["locations"][0];
        if loc["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .is_none_or(|l| l == 0)
            || loc["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .is_none()
            || loc["logicalLocations"][0]["kind"] != "function"
        {
            return Err(format!("bad location {loc}").into());
        }
    }
    Ok(())
}

fn run_ok(cmd: &mut Command) -> Result<Output, Failed> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

/// Stack- and heap-allocated sites the compiler printed for an entry's
/// binary, counted through our scan (each must be a result).
fn check_sarif(bin: &Path, command: &str, trimpath: bool) -> Result<(), Failed> {
    if !schema_path().is_file() {
        return Err(format!(
            "no SARIF schema at {} (scripts/install-sarif-schema.sh installs it)",
            schema_path().display()
        )
        .into());
    }
    let sarif = run_ok(deferscope().args([command, "--format", "sarif"]).arg(bin))?;
    validate(&sarif.stdout)?;
    let doc: Value = serde_json::from_slice(&sarif.stdout)?;
    let report = crate::fixtures::scan(bin)?;
    let want = report
        .sites
        .iter()
        .filter(|s| s.kind != deferscope_analyze::Kind::OpenCoded)
        .count();
    github_checks(&doc, want)?;
    // Locations: with -trimpath, main-module files are relative to
    // %SRCROOT%; standard-library files are under GOROOT either way.
    for r in doc["runs"][0]["results"].as_array().into_iter().flatten() {
        let art = &r["locations"][0]["physicalLocation"]["artifactLocation"];
        let uri = art["uri"].as_str().unwrap_or("");
        let base = art["uriBaseId"].as_str();
        let ok = match r["properties"]["origin"].as_str() {
            Some("std") => base == Some("GOROOT") && uri.starts_with("src/"),
            Some("main") if trimpath => base == Some("%SRCROOT%") && !uri.starts_with('/'),
            // cmd/go's main module is under GOROOT.
            Some("main") => {
                (base.is_none() && uri.starts_with("file:///"))
                    || (base == Some("GOROOT") && uri.starts_with("src/"))
            }
            _ => true,
        };
        if !ok {
            return Err(format!("location {art} for a {} site", r["properties"]["origin"]).into());
        }
    }
    Ok(())
}

/// diff's (and check's) bad input: one line on stderr, exit status 2.
fn check_diff_bad_input() -> Result<(), Failed> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-bad");
    std::fs::create_dir_all(&dir)?;
    let notreport = dir.join("not-a-report.json");
    std::fs::write(&notreport, "{\"x\": 1}")?;
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, "{\"binary\": {")?;
    let go = entries(&committed_root())
        .into_iter()
        .next()
        .ok_or("no committed fixture")?
        .bin();
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec![notreport.clone().into(), go.clone().into()],
        vec![go.clone().into(), truncated.into()],
        vec![go.clone().into(), dir.join("missing").into()],
        vec![go.clone().into(), dir.clone().into()],
        vec![
            go.clone().into(),
            go.clone().into(),
            "--fail-on".into(),
            "heap".into(),
        ],
    ];
    for args in cases {
        let out = deferscope().arg("diff").args(&args).output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !out.stdout.is_empty() || err.contains("panicked") {
            return Err(
                format!("diff {args:?}: exit {:?}, stderr {err}", out.status.code()).into(),
            );
        }
    }
    // check refuses an -o of the user's (it builds into its own file).
    let out = deferscope().args(["check", "-o", "x", "."]).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || err.lines().count() != 1 || !err.contains("-o") {
        return Err(format!("check -o: exit {:?}, stderr {err}", out.status.code()).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Go toolchains and fixture builds.

/// A command with the toolchain's environment: its go first on PATH, a
/// GOCACHE of our own, no GO* variables from outside.
fn with_go(mut cmd: Command, version: &str, goroot: &Path, path_prefix: Option<&Path>) -> Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("GO") || k.starts_with("CGO_") {
            cmd.env_remove(&*k);
        }
    }
    let mut path =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect::<Vec<_>>();
    path.insert(0, goroot.join("bin"));
    if let Some(p) = path_prefix {
        path.insert(0, p.to_owned());
    }
    cmd.env("PATH", std::env::join_paths(path).unwrap())
        .env("GOROOT", goroot)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .env(
            "GOCACHE",
            cache_root().join(format!("gocache/go{version}-report")),
        );
    cmd
}

fn diff_dir(which: &str) -> PathBuf {
    repo_root().join("fixtures/go/diff").join(which)
}

/// Build fixtures/go/diff/<which> with -gcflags=-d=defer; return the binary
/// and the compiler's lines for the main package.
fn build_diff(version: &str, goroot: &Path, which: &str) -> Result<(PathBuf, String), Failed> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("report-diff")
        .join(format!("go{version}"));
    std::fs::create_dir_all(&out)?;
    let bin = out.join(which);
    let mut cmd = with_go(Command::new(goroot.join("bin/go")), version, goroot, None);
    cmd.args(["build", "-gcflags=-d=defer", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(diff_dir(which));
    let o = run_ok(&mut cmd)?;
    Ok((bin, String::from_utf8_lossy(&o.stderr).into_owned()))
}

/// The compiler's `./main.go:LINE:COL: KIND defer` lines as (line, kind).
fn compiler_main_lines(text: &str) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("./main.go:")?;
            let mut it = rest.splitn(3, ':');
            let line = it.next()?.parse().ok()?;
            let _col = it.next()?;
            let kind = it.next()?.trim().strip_suffix(" defer")?.to_owned();
            Some((line, kind))
        })
        .collect();
    v.sort();
    v
}

fn facts(v: &[(u32, &str)]) -> Vec<(u32, String)> {
    v.iter().map(|(l, k)| (*l, k.to_string())).collect()
}

/// The facts of fixtures/go/diff/README.md, from the sources.
fn expected(which: &str) -> Vec<(u32, String)> {
    match which {
        "base" => facts(&[
            (15, "open-coded"),
            (25, "open-coded"),
            (26, "open-coded"),
            (33, "heap-allocated"),
        ]),
        "inloop" => facts(&[
            (17, "heap-allocated"),
            (26, "open-coded"),
            (27, "open-coded"),
            (34, "heap-allocated"),
        ]),
        _ => facts(&[
            (26, "open-coded"),
            (36, "open-coded"),
            (40, "open-coded"),
            (49, "heap-allocated"),
        ]),
    }
}

fn built(version: &str, goroot: &Path, which: &str) -> Result<PathBuf, Failed> {
    let (bin, text) = build_diff(version, goroot, which)?;
    let got = compiler_main_lines(&text);
    if got != expected(which) {
        return Err(format!(
            "go{version}: the compiler's lines for {which} are {got:?}, the sources say {:?}",
            expected(which)
        )
        .into());
    }
    Ok(bin)
}

fn check_diff_inloop(version: &str, goroot: &Path) -> Result<(), Failed> {
    let base = built(version, goroot, "base")?;
    let inloop = built(version, goroot, "inloop")?;
    let out = deferscope()
        .arg("diff")
        .arg(&base)
        .arg(&inloop)
        .args(["--fail-on", "heap-allocated"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.code() != Some(1) {
        return Err(format!("exit {:?}, want 1:\n{text}", out.status.code()).into());
    }
    // stderr is a pipe: no progress output at all.
    if !out.stderr.is_empty() {
        return Err(format!(
            "stderr not empty: {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("changed") || l.starts_with("added") || l.starts_with("removed"))
        .collect();
    let want = "main.go:17: open-coded -> heap-allocated defer in main.total";
    if changed.len() != 1 || !changed[0].contains(want) {
        return Err(format!("want one change naming {want:?}, got:\n{text}").into());
    }
    // Open-coded does not grow: --fail-on open-coded passes.
    let out = deferscope()
        .arg("diff")
        .arg(&base)
        .arg(&inloop)
        .args([
            "--fail-on",
            "open-coded,stack-allocated",
            "--format",
            "json",
        ])
        .output()?;
    if out.status.code() != Some(0) {
        return Err(format!("--fail-on open-coded: exit {:?}", out.status.code()).into());
    }
    let j: Value = serde_json::from_slice(&out.stdout)?;
    let ch = j["changes"].as_array().ok_or("no changes array")?;
    if ch.len() != 1
        || ch[0]["change"] != "changed"
        || ch[0]["function"] != "main.total"
        || ch[0]["old"]["kind"] != "open-coded"
        || ch[0]["old"]["line"] != 15
        || ch[0]["new"]["kind"] != "heap-allocated"
        || ch[0]["new"]["line"] != 17
        || j["failed"].as_array().is_none_or(|f| !f.is_empty())
    {
        return Err(format!("JSON diff: {j}").into());
    }
    Ok(())
}

fn check_diff_shifted(version: &str, goroot: &Path) -> Result<(), Failed> {
    let base = built(version, goroot, "base")?;
    let shifted = built(version, goroot, "shifted")?;
    let out = deferscope()
        .arg("diff")
        .arg(&base)
        .arg(&shifted)
        .args(["--fail-on", "open-coded,stack-allocated,heap-allocated"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.code() != Some(0) || !text.contains("no defer changed") {
        return Err(format!(
            "exit {:?}, want 0 and no change:\n{text}",
            out.status.code()
        )
        .into());
    }
    // The same through saved JSON reports.
    let dir = base.parent().unwrap();
    for (b, name) in [(&base, "base.json"), (&shifted, "shifted.json")] {
        let o = run_ok(deferscope().args(["scan", "--format", "json"]).arg(b))?;
        std::fs::write(dir.join(name), &o.stdout)?;
    }
    let o = run_ok(
        deferscope()
            .arg("diff")
            .arg(dir.join("base.json"))
            .arg(dir.join("shifted.json"))
            .args(["--format", "json"]),
    )?;
    let j: Value = serde_json::from_slice(&o.stdout)?;
    if j["changes"].as_array().is_none_or(|c| !c.is_empty()) {
        return Err(format!("JSON diff of saved reports: {j}").into());
    }
    Ok(())
}

/// `check --verify` in fixtures/go/diff/inloop.
fn check_verify(version: &str, goroot: &Path) -> Result<(), Failed> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_deferscope"));
    let mut cmd = with_go(Command::new(&exe), version, goroot, None);
    cmd.args(["check", "--verify", "--format", "json"])
        .current_dir(diff_dir("inloop"));
    let out = cmd.output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("exit {:?}: {err}", out.status).into());
    }
    // stderr is a pipe: no progress output, only the verdict line.
    let lines: Vec<&str> = err.lines().collect();
    if lines.len() != 1 || !lines[0].ends_with("; 0 disagreements") || err.contains('\r') {
        return Err(format!("stderr: {err:?}").into());
    }
    let j: Value = serde_json::from_slice(&out.stdout)?;
    let mut got: Vec<(u32, String)> = j["sites"]
        .as_array()
        .ok_or("no sites")?
        .iter()
        .filter(|s| {
            s["function"]
                .as_str()
                .is_some_and(|f| f.starts_with("main."))
        })
        .map(|s| {
            (
                s["line"].as_u64().unwrap_or(0) as u32,
                s["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    got.sort();
    if got != expected("inloop") {
        return Err(format!(
            "main sites {got:?}, the sources say {:?}",
            expected("inloop")
        )
        .into());
    }
    Ok(())
}

/// A `go` that adds a false compiler line: check --verify must report it.
fn check_verify_disagreement(version: &str, goroot: &Path) -> Result<(), Failed> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("report-fakego")
        .join(format!("go{version}"));
    std::fs::create_dir_all(&dir)?;
    // The compiler's line for main.locked's first defer turned from
    // open-coded into heap-allocated.
    let script = format!(
        "#!/bin/sh\ntmp=$(mktemp)\n\"{}\" \"$@\" 2>\"$tmp\"\nst=$?\n\
         sed 's#^\\./main\\.go:26:2: open-coded defer#./main.go:26:2: heap-allocated defer#' \"$tmp\" >&2\n\
         rm -f \"$tmp\"\nexit $st\n",
        goroot.join("bin/go").display()
    );
    let go = dir.join("go");
    std::fs::write(&go, script)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&go, std::fs::Permissions::from_mode(0o755))?;
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_deferscope"));
    let mut cmd = with_go(Command::new(&exe), version, goroot, Some(&dir));
    cmd.args(["check", "--verify"])
        .current_dir(diff_dir("inloop"));
    let out = cmd.output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1)
        || !err.contains("; 1 disagreements")
        || !err.contains(
            "main.go:26: deferscope says open-coded defer in main.locked; the compiler says",
        )
    {
        return Err(format!("exit {:?}, stderr: {err}", out.status.code()).into());
    }
    Ok(())
}

/// `check --verify` on the main fixture program (every rule that disables
/// open-coding, generics, closures, dead defers): 0 disagreements.
fn check_verify_defers(version: &str, goroot: &Path) -> Result<(), Failed> {
    let dir = repo_root().join("fixtures/go/defers");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_deferscope"));
    let mut cmd = with_go(Command::new(&exe), version, goroot, None);
    cmd.args(["check", "--verify", "--format", "json", "."])
        .current_dir(&dir)
        .env("PWD", &dir);
    let out = cmd.output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !err.contains("; 0 disagreements") {
        return Err(format!("exit {:?}: {err}", out.status).into());
    }
    Ok(())
}

/// `check --verify` of cmd/go from the toolchain's own sources.
fn check_verify_cmdgo(version: &str, goroot: &Path) -> Result<(), Failed> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_deferscope"));
    let mut cmd = with_go(Command::new(&exe), version, goroot, None);
    cmd.args(["check", "--verify", "--format", "sarif", "cmd/go"])
        .current_dir(goroot.join("src/cmd/go"))
        .env("PWD", goroot.join("src/cmd/go"));
    let out = cmd.output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !err.contains("; 0 disagreements") {
        return Err(format!("exit {:?}: {err}", out.status).into());
    }
    if schema_path().is_file() {
        validate(&out.stdout)?;
    }
    eprintln!("go{version} cmd/go: {}", err.trim());
    Ok(())
}

// ---------------------------------------------------------------------------
// The product's verifier over the matrix.

fn check_matrix_verify(e: &Entry) -> Result<(), Failed> {
    use deferscope_analyze::verify::{verify, CompilerLines, PathContext};
    let twin = e.twin();
    let src = twin.as_ref().filter(|_| e.meta.stripped).unwrap_or(e);
    let text = std::fs::read_to_string(e.dir.join("defer.txt"))
        .or_else(|_| std::fs::read_to_string(src.dir.join("defer.txt")))?;
    let trim = match (module_path(&e.meta.program), e.meta.variant.as_str()) {
        (Some(m), "trimpath") => Some((e.meta.build_dir.clone(), m)),
        _ => None,
    };
    let ctx = PathContext {
        build_dir: e.meta.build_dir.clone(),
        goroot: e.meta.goroot.clone(),
        trim,
    };
    let comp = CompilerLines::parse(&text, &ctx);
    let m = deferscope_load::Mapped::open(&e.bin())?;
    let img = m.image()?;
    let ix = deferscope_index::GoIndex::new(&img)?;
    let report = deferscope_analyze::scan("bin", &img, &ix)?;
    let v = verify(&comp, &report, &img, &ix);
    if v.disagreements.is_empty() && v.matched > 0 {
        Ok(())
    } else {
        let d: Vec<String> = v
            .disagreements
            .iter()
            .take(20)
            .map(|d| d.to_string())
            .collect();
        Err(format!(
            "{} compiler lines, {} matched, {} excused, {} disagreements:\n{}",
            v.compiler_lines,
            v.matched,
            v.excused,
            v.disagreements.len(),
            d.join("\n")
        )
        .into())
    }
}

pub fn trials() -> Vec<Trial> {
    let mut v = Vec::new();
    let have_schema = schema_path().is_file();
    let in_ci = std::env::var_os("DEFERSCOPE_MATRIX").is_some_and(|m| !m.is_empty());
    for e in entries(&committed_root()) {
        let bin = e.bin();
        v.push(
            Trial::test(
                format!("report::sarif::committed::{}", e.name()),
                move || check_sarif(&bin, "scan", false),
            )
            .with_ignored_flag(!have_schema && !in_ci),
        );
    }
    if let Some(m) = std::env::var_os("DEFERSCOPE_MATRIX").filter(|m| !m.is_empty()) {
        let root = PathBuf::from(m);
        for e in entries(&root) {
            let name = e.name();
            let meta = &e.meta;
            let sarif_pick = (meta.program == "cmdgo"
                && meta.goarch == "amd64"
                && matches!(meta.variant.as_str(), "default" | "stripped"))
                || (meta.program == "explain"
                    && matches!(meta.variant.as_str(), "trimpath" | "strip"))
                || (meta.program == "defers"
                    && meta.goos == "windows"
                    && meta.variant == "default");
            if sarif_pick {
                let bin = e.bin();
                let trimpath = meta.variant == "trimpath";
                let command = if meta.program == "explain" {
                    "explain"
                } else {
                    "scan"
                };
                v.push(Trial::test(
                    format!("report::sarif::matrix::{name}"),
                    move || check_sarif(&bin, command, trimpath),
                ));
            }
            if meta.gcflags_scope.as_deref().unwrap_or("all") == "all" {
                v.push(Trial::test(
                    format!("report::verify::matrix::{name}"),
                    move || check_matrix_verify(&e),
                ));
            }
        }
    }
    v.push(Trial::test("report::diff::bad_input", check_diff_bad_input));
    let tcs = toolchains();
    if tcs.is_empty() {
        v.push(
            Trial::test("report::diff (no Go toolchain installed)", || Ok(()))
                .with_ignored_flag(true),
        );
        return v;
    }
    // The oldest, a middle and the newest installed toolchain.
    let mut picked = vec![
        tcs[0].clone(),
        tcs[tcs.len() / 2].clone(),
        tcs[tcs.len() - 1].clone(),
    ];
    picked.dedup_by(|a, b| a.0 == b.0);
    for (ver, goroot) in picked {
        type F = fn(&str, &Path) -> Result<(), Failed>;
        let cases: [(&str, F); 5] = [
            ("diff::{}::inloop", check_diff_inloop),
            ("diff::{}::shifted", check_diff_shifted),
            ("check::{}::verify", check_verify),
            ("check::{}::disagreement", check_verify_disagreement),
            ("check::{}::defers_verify", check_verify_defers),
        ];
        for (name, f) in cases {
            let (ver, goroot) = (ver.clone(), goroot.clone());
            v.push(Trial::test(
                format!("report::{}", name.replace("{}", &format!("go{ver}"))),
                move || f(&ver, &goroot),
            ));
        }
    }
    // cmd/go from source: one toolchain (a cold build takes minutes).
    let (ver, goroot) = tcs[tcs.len() - 1].clone();
    v.push(Trial::test(
        format!("report::check::go{ver}::cmdgo_verify"),
        move || check_verify_cmdgo(&ver, &goroot),
    ));
    v
}
