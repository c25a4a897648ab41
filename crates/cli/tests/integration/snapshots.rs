//! Snapshot tests: the whole stdout of the printers on the committed
//! fixtures, so that any change to a printer shows as a diff to review.
//!
//! Each trial runs the built `deferscope` as a subprocess, from the
//! repository root with repo-relative paths (so no snapshot depends on where
//! the checkout lives), with `DEFERSCOPE_CACHE` pointing at an empty
//! directory (so `explain` uses the published cost table, not this machine's
//! measurements) and the colour variables removed. It compares the output
//! with a snapshot committed under `crates/cli/tests/snapshots/` (one
//! `.snap` file per case, managed by the `insta` crate; the header's
//! `description` is the command line).
//!
//! Cases, per committed fixture binary (`fixtures/bin/*/bin`): `scan` and
//! `explain` in text, JSON and SARIF, and `scan --format html` as a hash
//! (the page is deterministic but 130 KB of one-line JSON and script: its
//! byte count and FNV-1a 64 hash are the snapshot, so a change to it shows
//! as changed without a reviewable diff; tests/html/run.sh checks the page
//! in a browser). Besides: `diff` of two fixture binaries (text and JSON),
//! `diff` of a saved JSON pair (written by `scan --format json` into a
//! temporary directory, diffed from there by relative name), and
//! `disasm --defer-only` of one amd64 and one arm64 fixture. Every case
//! must exit 0 with nothing on stderr.
//!
//! When a printer changes on purpose:
//!
//! ```text
//! INSTA_UPDATE=always cargo test -p deferscope --test integration -- snapshot::
//! git diff crates/cli/tests/snapshots    # review, then commit
//! ```
//!
//! (or `cargo insta review` where cargo-insta is installed). Without
//! `INSTA_UPDATE`, a mismatch fails the trial, prints the diff and, outside
//! CI, leaves the new output beside the snapshot as `.snap.new`. insta
//! trims the trailing newlines of a whole snapshot; byte-identity of the
//! outputs is scripts/same-output.py's job.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries, repo_root};

/// The empty cost-table cache every run gets.
fn empty_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// Run deferscope with `args` in `cwd`; its stdout, or why it failed.
fn run(cwd: &Path, args: &[&str]) -> Result<Vec<u8>, Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_deferscope"))
        .args(args)
        .current_dir(cwd)
        .env("DEFERSCOPE_CACHE", empty_cache())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()?;
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(format!(
            "deferscope {}: exit {:?}, stderr: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// Compare `stdout` with the snapshot `name`.
fn check(name: &str, command: &str, stdout: &[u8]) -> Result<(), Failed> {
    let text = String::from_utf8(stdout.to_vec()).map_err(|e| format!("{name}: {e}"))?;
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("crates/cli/tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(command);
    settings.bind(|| insta::assert_snapshot!(name, text));
    Ok(())
}

/// FNV-1a, 64 bits: a hash fixed by its definition, for the HTML page.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fixture binary `fixtures/bin/<dir>/bin`, relative to the repo root.
fn rel(dir: &str) -> String {
    format!("fixtures/bin/{dir}/bin")
}

/// One trial: `deferscope <args>` from the repo root, snapshot `name`.
fn case(name: String, args: Vec<String>) -> Trial {
    Trial::test(format!("snapshot::{name}"), move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&repo_root(), &args)?;
        check(&name, &format!("deferscope {}", args.join(" ")), &out)
    })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The committed fixture directories, by name (`go1.22.10-linux-amd64-...`).
fn fixture_dirs() -> Vec<String> {
    let root = committed_root();
    entries(&root)
        .iter()
        .filter_map(|e| Some(e.dir.strip_prefix(&root).ok()?.to_str()?.to_owned()))
        .collect()
}

const OLD: &str = "go1.21.13-linux-amd64-noopt-defers";
const NEW: &str = "go1.22.10-linux-amd64-default-defers";
const ARM64: &str = "go1.27.3-linux-arm64-default-defers";

pub fn trials() -> Vec<Trial> {
    let mut out = Vec::new();
    for dir in fixture_dirs() {
        let b = rel(&dir);
        for cmd in ["scan", "explain"] {
            for fmt in ["text", "json", "sarif"] {
                out.push(case(
                    format!("{dir}__{cmd}.{fmt}"),
                    strings(&[cmd, "--format", fmt, &b]),
                ));
            }
        }
        out.push(Trial::test(
            format!("snapshot::{dir}__scan.html"),
            move || {
                let args = ["scan", "--format", "html", b.as_str()];
                let page = run(&repo_root(), &args)?;
                let summary = format!("bytes: {}\nfnv1a64: {:016x}\n", page.len(), fnv1a64(&page));
                check(
                    &format!("{dir}__scan.html"),
                    &format!("deferscope {} (byte count and FNV-1a 64)", args.join(" ")),
                    summary.as_bytes(),
                )
            },
        ));
    }
    for fmt in ["text", "json"] {
        out.push(case(
            format!("diff__{OLD}__{NEW}.{fmt}"),
            strings(&["diff", "--format", fmt, &rel(OLD), &rel(NEW)]),
        ));
    }
    out.push(Trial::test(
        format!("snapshot::diff_saved__{NEW}__{ARM64}.text"),
        || diff_saved(NEW, ARM64),
    ));
    for dir in [NEW, ARM64] {
        out.push(case(
            format!("{dir}__disasm_defer_only"),
            strings(&["disasm", "--defer-only", &rel(dir)]),
        ));
    }
    out
}

/// `diff old.json new.json` of two saved scans, run where they lie.
fn diff_saved(old: &str, new: &str) -> Result<(), Failed> {
    let tmp = tempfile::tempdir()?;
    for (dir, file) in [(old, "old.json"), (new, "new.json")] {
        let json = run(&repo_root(), &["scan", "--format", "json", &rel(dir)])?;
        std::fs::write(tmp.path().join(file), json)?;
    }
    let out = run(tmp.path(), &["diff", "old.json", "new.json"])?;
    let name = format!("diff_saved__{old}__{new}.text");
    let cmd = format!(
        "deferscope diff old.json new.json (saved by scan --format json of {} and {})",
        rel(old),
        rel(new)
    );
    check(&name, &cmd, &out)
}
