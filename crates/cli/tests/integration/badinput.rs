//! Bad input: each case must print exactly one line on stderr, nothing on
//! stdout, and exit with status 2 — never a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Failed, Trial};

use crate::fixtures::{committed_root, entries};

pub fn deferscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deferscope"))
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("deferscope-badinput-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `scan` on `path` and check the one-line error contract.
fn expect_error(path: &Path, must_contain: &str) -> Result<(), Failed> {
    expect_error_of(deferscope().arg("scan").arg(path), must_contain)
}

/// The one-line error contract of any command: status 2, nothing on
/// stdout, one line `deferscope: ...` holding `must_contain` and saying
/// nothing twice (an error printed with its source's text and the source
/// again once made `x: No such file or directory (os error 2): No such
/// file or directory (os error 2)`).
fn expect_error_of(cmd: &mut Command, must_contain: &str) -> Result<(), Failed> {
    let out = cmd.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) {
        return Err(format!(
            "exit status {:?}, want 2; stderr: {stderr}",
            out.status.code()
        )
        .into());
    }
    if !out.stdout.is_empty() {
        return Err(format!("stdout not empty: {}", String::from_utf8_lossy(&out.stdout)).into());
    }
    let lines: Vec<_> = stderr.lines().collect();
    if lines.len() != 1 || !lines[0].starts_with("deferscope: ") {
        return Err(format!("want one line 'deferscope: ...', got: {stderr:?}").into());
    }
    if lines[0].contains("internal error") || lines[0].contains("panicked") {
        return Err(format!("panic: {stderr}").into());
    }
    if !lines[0].contains(must_contain) {
        return Err(format!("message {:?} lacks {must_contain:?}", lines[0]).into());
    }
    let parts: Vec<&str> = lines[0].split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        if parts[..i].contains(p) {
            return Err(format!("message {:?} repeats {p:?}", lines[0]).into());
        }
    }
    Ok(())
}

/// A committed Go fixture binary to cut up.
fn go_fixture() -> Option<PathBuf> {
    entries(&committed_root())
        .into_iter()
        .find(|e| e.meta.goos == "linux" && e.meta.goarch == "amd64" && !e.meta.stripped)
        .map(|e| e.bin())
}

pub fn trials() -> Vec<Trial> {
    let mut v = vec![
        Trial::test("badinput::not_go_elf", || {
            let ls = Path::new("/bin/ls");
            if !ls.exists() {
                return Err("/bin/ls missing".into());
            }
            expect_error(ls, "no Go pclntab")
        }),
        Trial::test("badinput::random_bytes", || {
            let p = tmpdir().join("random");
            // A fixed xorshift stream: random-looking, reproducible.
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let bytes: Vec<u8> = (0..1 << 16)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            std::fs::write(&p, bytes)?;
            expect_error(&p, "not an ELF, PE or Mach-O")
        }),
        Trial::test("badinput::empty_file", || {
            let p = tmpdir().join("empty");
            std::fs::write(&p, b"")?;
            expect_error(&p, "empty file")
        }),
        // `scan DIR` reads every binary under DIR (batch::*); the commands
        // that read one binary still refuse a directory.
        Trial::test("badinput::directory", || {
            let out = deferscope().arg("disasm").arg(tmpdir()).output()?;
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(2)
                || !out.stdout.is_empty()
                || err.lines().count() != 1
                || !err.contains("is a directory")
            {
                return Err(format!("exit {:?}, stderr {err:?}", out.status.code()).into());
            }
            Ok(())
        }),
        Trial::test("badinput::missing_path", || {
            expect_error(&tmpdir().join("does-not-exist"), "No such file")
        }),
        // `-` is a file name like any other (no binary is read from stdin).
        Trial::test("badinput::dash_path", || {
            expect_error(Path::new("-"), "-: No such file")
        }),
        // The commands that read one binary, and diff's saved JSON.
        Trial::test("badinput::error_text_once", || {
            let missing = tmpdir().join("does-not-exist");
            expect_error_of(deferscope().arg("disasm").arg(&missing), "No such file")?;
            expect_error_of(
                deferscope().arg("profile").arg(&missing).arg(&missing),
                "No such file",
            )?;
            let bad = tmpdir().join("bad.json");
            std::fs::write(&bad, "{x")?;
            let good = go_fixture().ok_or("no committed linux/amd64 fixture")?;
            expect_error_of(deferscope().arg("diff").arg(&bad).arg(&good), "not JSON")
        }),
        Trial::test("badinput::go_386_binary", || {
            let p = crate::fixtures::repo_root().join("fixtures/bad/hello-386");
            expect_error(&p, "32-bit")
        }),
    ];
    for (name, frac) in [
        ("1k", 0.0),
        ("quarter", 0.25),
        ("half", 0.5),
        ("end_minus_4k", 1.0),
    ] {
        v.push(Trial::test(
            format!("badinput::truncated_go_binary_{name}"),
            move || {
                let src = go_fixture().ok_or("no committed linux/amd64 fixture")?;
                let data = std::fs::read(&src)?;
                let cut = match name {
                    "1k" => 1024,
                    "end_minus_4k" => data.len() - 4096,
                    _ => (data.len() as f64 * frac) as usize,
                };
                let p = tmpdir().join(format!("trunc-{name}"));
                std::fs::write(&p, &data[..cut])?;
                let out = deferscope().arg("scan").arg(&p).output()?;
                // Cut near the end, the tables may survive: then a result is
                // fine. Otherwise, the error contract holds.
                if out.status.success() {
                    return Ok(());
                }
                expect_error(&p, "")
            },
        ));
    }
    v
}
