//! Inlining claims (issue 14 item 7): explain's list of small deferring
//! functions must not say the defer is why a function is not inlined when
//! the binary cannot show it (design.md §5.4).
//!
//! `inlineclaims/main.go` has three small deferring functions, each with a
//! twin without the defer; it is built by every installed toolchain with
//! `-gcflags=-m=2`, whose "cannot inline F: reason" lines are the oracle:
//! `marked` is "marked go:noinline" (and so is its twin), `big`'s twin is
//! "function too complex", `small`'s twin "can inline". The three must be
//! listed (the list stays useful: every call of each is a call), and no
//! line may claim the defer is the reason: each says the answer without
//! the defer is unknown.

use std::path::PathBuf;
use std::process::Command;

use libtest_mimic::{Failed, Trial};

use crate::fixtures::repo_root;

/// The compiler's verdict on `main.<f>` (or `<f>` before go1.21's
/// qualified names) from `-m=2` output.
fn verdict<'a>(m2: &'a str, f: &str) -> Option<&'a str> {
    m2.lines().find_map(|l| {
        let (_, rest) = l.split_once(": ")?;
        for pre in ["cannot inline ", "can inline "] {
            if let Some(r) = rest.strip_prefix(pre) {
                let r = r.strip_prefix("main.").unwrap_or(r);
                if let Some(v) = r.strip_prefix(f) {
                    if v.starts_with(':') || v.starts_with(" with") {
                        return Some(rest);
                    }
                }
            }
        }
        None
    })
}

fn check(goroot: PathBuf) -> Result<String, String> {
    let dir = repo_root().join("crates/cli/tests/integration/inlineclaims");
    let tmp = std::env::temp_dir().join(format!(
        "deferscope-inlineclaims-{}-{}",
        goroot.display().to_string().replace('/', "_"),
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let bin = tmp.join("bin");
    let out = Command::new(goroot.join("bin/go"))
        .args(["build", "-gcflags=-m=2", "-o"])
        .arg(&bin)
        .arg("main.go")
        .current_dir(&dir)
        .env("GOROOT", &goroot)
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", tmp.join("gocache"))
        .output()
        .map_err(|e| e.to_string())?;
    let m2 = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("go build: {m2}"));
    }
    // The oracle: what keeps each twin from inlining without the defer.
    let want = [
        ("marked", "marked go:noinline"),
        ("markedNoDefer", "marked go:noinline"),
        ("big", "unhandled op DEFER"),
        ("bigNoDefer", "function too complex"),
        ("small", "unhandled op DEFER"),
        ("smallNoDefer", "can inline"),
    ];
    for (f, w) in want {
        match verdict(&m2, f) {
            Some(v) if v.contains(w) => {}
            v => return Err(format!("-m=2 on {f}: {v:?}, the program expects {w:?}")),
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_deferscope"))
        .arg("explain")
        .arg(&bin)
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&tmp);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut errs = Vec::new();
    for f in ["marked", "big", "small"] {
        let name = format!("main.{f} (");
        match text
            .lines()
            .find(|l| l.contains(&name) && l.contains(" bytes)"))
        {
            None => errs.push(format!(
                "main.{f} is not in the list of small deferring functions"
            )),
            Some(l) if !l.contains("without the defer: unknown") => {
                errs.push(format!("main.{f} ({:?}): {l}", verdict(&m2, f)))
            }
            Some(_) => {}
        }
    }
    for l in text.lines() {
        if l.contains("forbids inlining") || l.contains("so are never inlined") {
            errs.push(format!("claims the defer is the reason: {l}"));
        }
    }
    if errs.is_empty() {
        Ok("3 functions listed, none blamed on the defer".into())
    } else {
        Err(errs.join("\n"))
    }
}

pub fn trials() -> Vec<Trial> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let root = PathBuf::from(home).join(".cache/deferscope/toolchains");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("go"))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|d| d.join("bin/go").is_file());
    dirs.sort();
    dirs.into_iter()
        .map(|goroot| {
            let v = goroot
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Trial::test(format!("inlining::claims::{v}"), move || {
                check(goroot)
                    .map(|m| eprintln!("{m}"))
                    .map_err(Failed::from)
            })
        })
        .collect()
}
