//! `deferscope trace` (counters mode) on real third-party Go programs:
//! stdout, stderr and exit status the same as untraced, for their `--help`
//! and a real workload.
//!
//! The programs are the ones `scripts/real-binaries.py` fetches into
//! `~/.cache/deferscope/real` (run by `scripts/test-all.sh` before the
//! tests): esbuild (npm, static), age (Debian, PIE with the dynamic
//! loader), restic (Debian, dynamically linked); and `gofmt` and `go` from
//! the newest toolchain. A program that is not there is skipped with a
//! message.
//!
//! - esbuild: bundles and minifies a two-module project to stdout;
//! - age: decrypts a file (the key and the encrypted file are made
//!   untraced first);
//! - restic: lists the newest snapshot of a repository (made untraced
//!   first, by `init` and `backup` of a source directory);
//! - gofmt: `-l` over `$GOROOT/src/net`; go: `list std`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{cache_root, toolchains};
use crate::trace::{describe, output_within, read_report, report_file, LIMIT};

/// How to run one program: its path, arguments, extra environment, and
/// the directory to run in.
#[derive(Clone)]
struct Run {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Run {
    fn command(&self, traced: Option<&Path>) -> Command {
        let mut c = match traced {
            Some(rep) => {
                let mut c = deferscope();
                c.args(["trace", "--format", "json", "--out"])
                    .arg(rep)
                    .arg("--")
                    .arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        c.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir);
        c
    }
}

/// The untraced and the traced run are the same to the byte; the report
/// says every point but a handful was patched.
fn check_same(run: &Run, tag: &str) -> Result<(), Failed> {
    let plain = output_within(run.command(None), b"", LIMIT)?;
    let rep = report_file(tag);
    let tr = output_within(run.command(Some(&rep)), b"", LIMIT)?;
    let differs = |what: &str, a: &[u8], b: &[u8]| -> Failed {
        format!(
            "{what} differs:\nuntraced: {}\ntraced: {}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        )
        .into()
    };
    if tr.status.code() != plain.status.code() {
        return Err(format!(
            "untraced {}, traced {}: {}",
            describe(plain.status),
            describe(tr.status),
            String::from_utf8_lossy(&tr.stderr)
        )
        .into());
    }
    if tr.stdout != plain.stdout {
        return Err(differs("stdout", &plain.stdout, &tr.stdout));
    }
    if tr.stderr != plain.stderr {
        return Err(differs("stderr", &plain.stderr, &tr.stderr));
    }
    let report: Value = read_report(&rep)?;
    let _ = std::fs::remove_file(&rep);
    let p = &report["patching"];
    let (points, patched) = (
        p["points"].as_u64().unwrap_or(0),
        p["patched"].as_u64().unwrap_or(0),
    );
    if report["method"] != "counters" || points == 0 || patched * 100 < points * 99 {
        return Err(format!("patching: {p}").into());
    }
    Ok(())
}

fn setup(what: &str, mut c: Command) -> Result<Output, Failed> {
    let out = output_within(
        {
            c.stdin(std::process::Stdio::null());
            c
        },
        b"",
        LIMIT,
    )?;
    if !out.status.success() {
        return Err(format!(
            "setup {what}: {}: {}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

fn work_dir(name: &str) -> Result<PathBuf, Failed> {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("trace-real")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn run(bin: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Run {
    Run {
        bin: bin.to_owned(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        dir: dir.to_owned(),
    }
}

fn esbuild(bin: &Path) -> Result<(), Failed> {
    let d = work_dir("esbuild")?;
    std::fs::write(
        d.join("a.js"),
        "import {scale} from './b.js';\nconsole.log([1, 2, 3].map(scale).join(' '));\n",
    )?;
    std::fs::write(
        d.join("b.js"),
        "export function scale(n) { return n * 21 }\nexport const unused = 1;\n",
    )?;
    check_same(&run(bin, &["--help"], &d, &[]), "esbuild-help")?;
    check_same(
        &run(bin, &["a.js", "--bundle", "--minify"], &d, &[]),
        "esbuild-bundle",
    )
}

fn age(bin: &Path) -> Result<(), Failed> {
    let d = work_dir("age")?;
    let keygen = bin.with_file_name("age-keygen");
    setup("age-keygen", {
        let mut c = Command::new(&keygen);
        c.args(["-o", "key.txt"]).current_dir(&d);
        c
    })?;
    std::fs::write(d.join("msg.txt"), "a message for age\n".repeat(200))?;
    setup("age -e", {
        let mut c = Command::new(bin);
        c.args(["-e", "-i", "key.txt", "-o", "msg.age", "msg.txt"])
            .current_dir(&d);
        c
    })?;
    check_same(&run(bin, &["--help"], &d, &[]), "age-help")?;
    check_same(
        &run(bin, &["-d", "-i", "key.txt", "msg.age"], &d, &[]),
        "age-decrypt",
    )
}

fn restic(bin: &Path, src: &Path) -> Result<(), Failed> {
    let d = work_dir("restic")?;
    let repo = d.join("repo");
    let repo = repo.to_str().ok_or("path")?;
    let cache = d.join("cache");
    let env = [
        ("RESTIC_PASSWORD", "deferscope"),
        ("RESTIC_REPOSITORY", repo),
        ("RESTIC_CACHE_DIR", cache.to_str().ok_or("path")?),
    ];
    let r = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args).envs(env).current_dir(&d);
        c
    };
    setup("restic init", r(&["init", "-q"]))?;
    setup(
        "restic backup",
        r(&["backup", "-q", src.to_str().ok_or("path")?]),
    )?;
    check_same(&run(bin, &["--help"], &d, &env), "restic-help")?;
    check_same(&run(bin, &["ls", "latest"], &d, &env), "restic-ls")
}

fn go_tools(goroot: &Path) -> Result<(), Failed> {
    let d = work_dir("go")?;
    let gofmt = goroot.join("bin/gofmt");
    let net = goroot.join("src/net");
    check_same(
        &run(&gofmt, &["-l", net.to_str().ok_or("path")?], &d, &[]),
        "gofmt-net",
    )?;
    check_same(&run(&gofmt, &["--help"], &d, &[]), "gofmt-help")?;
    let go = goroot.join("bin/go");
    let gr = goroot.to_str().ok_or("path")?;
    let cache = d.join("gocache");
    let env = [
        ("GOROOT", gr),
        ("GOTOOLCHAIN", "local"),
        ("GOPROXY", "off"),
        ("GOFLAGS", ""),
        ("GOCACHE", cache.to_str().ok_or("path")?),
    ];
    check_same(&run(&go, &["list", "std"], &d, &env), "go-list")?;
    check_same(&run(&go, &["help", "build"], &d, &env), "go-help")
}

/// A trial's body, given the program's path.
type Check = Box<dyn FnOnce(&Path) -> Result<(), Failed> + Send>;

pub fn trials() -> Vec<Trial> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Vec::new();
    }
    let real = cache_root().join("real");
    let mut v = Vec::new();
    let mut add = |name: &str, path: PathBuf, f: Check| {
        if path.is_file() {
            v.push(Trial::test(format!("trace::real::{name}"), move || {
                f(&path)
            }));
        } else {
            eprintln!(
                "trace: {} is not there (scripts/real-binaries.py fetches it); trace::real::{name} skipped",
                path.display()
            );
            v.push(
                Trial::test(format!("trace::real::{name} (not fetched)"), || Ok(()))
                    .with_ignored_flag(true),
            );
        }
    };
    add(
        "esbuild",
        real.join("npm/esbuild-linux-x64@0.28.2/package/bin/esbuild"),
        Box::new(esbuild),
    );
    add("age", real.join("deb/age/usr/bin/age"), Box::new(age));
    if let Some((_, goroot)) = toolchains().pop() {
        let src = goroot.join("src/net/http");
        add(
            "restic",
            real.join("deb/restic/usr/bin/restic"),
            Box::new(move |b| restic(b, &src)),
        );
        add(
            "go_gofmt",
            goroot.join("bin/go"),
            Box::new(|go| go_tools(go.parent().and_then(Path::parent).ok_or("GOROOT")?)),
        );
    }
    v
}
