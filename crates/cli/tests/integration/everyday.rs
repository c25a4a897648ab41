//! The rough edges a new user hits (issue 15, items 2-13), one or more
//! tests per item; each test's name says its item:
//!
//! - item 7: `everyday::disasm_nothing_matched`,
//!   `everyday::disasm_source_missing_says_why`
//! - item 11: `everyday::intel_syntax_on_arm64_says_so`

use std::path::{Path, PathBuf};
use std::process::Output;

use libtest_mimic::{Failed, Trial};

use crate::badinput::deferscope;
use crate::fixtures::{committed_root, entries, Entry};

/// The committed unstripped linux/amd64 `defers` fixture.
fn fixture() -> Result<Entry, Failed> {
    entries(&committed_root())
        .into_iter()
        .find(|e| {
            e.meta.goos == "linux"
                && e.meta.goarch == "amd64"
                && e.meta.program == "defers"
                && e.meta.variant == "default"
                && !e.meta.stripped
        })
        .ok_or_else(|| "no committed linux/amd64 defers fixture".into())
}

/// The committed unstripped fixture of `goarch`.
fn fixture_of(goarch: &str) -> Result<Entry, Failed> {
    entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.goarch == goarch && e.meta.program == "defers" && !e.meta.stripped)
        .ok_or_else(|| format!("no committed {goarch} defers fixture").into())
}

/// A scratch directory of this test process.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deferscope-everyday-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn run(args: &[&str], bin: &Path) -> Result<Output, Failed> {
    Ok(deferscope()
        .arg(args[0])
        .arg(bin)
        .args(&args[1..])
        .output()?)
}

/// A copy of `bin` whose recorded source directory `dir` is renamed, in
/// place and at the same length, to a directory that does not exist.
fn with_moved_sources(bin: &Path, dir: &str, name: &str) -> Result<PathBuf, Failed> {
    let mut data = std::fs::read(bin)?;
    let gone: String = dir
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 || c == '/' { c } else { 'q' })
        .collect();
    let mut n = 0;
    let mut at = 0;
    while at + dir.len() <= data.len() {
        if &data[at..at + dir.len()] == dir.as_bytes() {
            data[at..at + dir.len()].copy_from_slice(gone.as_bytes());
            at += dir.len();
            n += 1;
        } else {
            at += 1;
        }
    }
    if n == 0 || Path::new(&gone).exists() {
        return Err(format!("cannot move {dir} in {}", bin.display()).into());
    }
    let p = tmp(name);
    std::fs::write(&p, data)?;
    Ok(p)
}

pub fn trials() -> Vec<Trial> {
    vec![
        // Item 7: a listing that selects nothing says so and exits 1.
        Trial::test("everyday::disasm_nothing_matched", || {
            let bin = fixture()?.bin();
            for sel in [
                &["--pc", "0x1"][..],
                &["--line", "nosuch.go:1"],
                &["--funcs", "zzzz"],
            ] {
                let mut args = vec!["disasm"];
                args.extend_from_slice(sel);
                let out = run(&args, &bin)?;
                let err = String::from_utf8_lossy(&out.stderr);
                if out.status.code() != Some(1)
                    || !out.stdout.is_empty()
                    || err.lines().count() != 1
                    || !err.contains("no function matched")
                    || !err.contains(sel[1])
                {
                    return Err(
                        format!("{sel:?}: exit {:?}, stderr {err:?}", out.status.code()).into(),
                    );
                }
            }
            // What matches still exits 0 with nothing on stderr.
            let out = run(&["disasm", "--funcs", "^main\\.main$"], &bin)?;
            if !out.status.success() || !out.stderr.is_empty() || out.stdout.is_empty() {
                return Err(format!("main.main: exit {:?}", out.status.code()).into());
            }
            Ok(())
        }),
        // Item 7: --source without the sources says why and what to do.
        Trial::test("everyday::disasm_source_missing_says_why", || {
            let e = fixture()?;
            let dir = e.meta.build_dir.to_string_lossy().into_owned();
            let moved = with_moved_sources(&e.bin(), &dir, "moved-sources")?;
            let out = run(&["disasm", "--funcs", "^main\\.main$", "--source"], &moved)?;
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success()
                || err.lines().count() != 1
                || !err.contains("source files not found")
                || !err.contains("--source-root")
            {
                return Err(format!("exit {:?}, stderr {err:?}", out.status.code()).into());
            }
            Ok(())
        }),
        // Item 11: --syntax intel on arm64 says once that it prints ARM's
        // syntax; on amd64 it says nothing.
        Trial::test("everyday::intel_syntax_on_arm64_says_so", || {
            let args = ["disasm", "--syntax", "intel", "--funcs", "^main\\."];
            let arm = run(&args, &fixture_of("arm64")?.bin())?;
            let err = String::from_utf8_lossy(&arm.stderr);
            if !arm.status.success()
                || arm.stdout.is_empty()
                || err.lines().count() != 1
                || !err.contains("arm64")
                || !err.contains("--syntax intel")
            {
                return Err(format!("arm64: exit {:?}, stderr {err:?}", arm.status.code()).into());
            }
            let amd = run(&args, &fixture()?.bin())?;
            if !amd.status.success() || !amd.stderr.is_empty() {
                return Err(
                    format!("amd64: stderr {:?}", String::from_utf8_lossy(&amd.stderr)).into(),
                );
            }
            Ok(())
        }),
    ]
}
