//! `deferscope check [--verify] [go build args]`: build the user's package
//! with the go command on PATH into a temporary file, scan it, print the
//! scan in any report format, and delete the file.
//!
//! `--verify` builds with `-gcflags=all=-d=defer` added (the flag only
//! prints the compiler's decisions; it changes no code), parses the
//! compiler's lines from the go command's stderr (the build cache replays
//! them for packages it did not recompile) and compares them with the scan
//! (`deferscope_analyze::verify`). The verdict goes to stderr, so stdout
//! stays a clean report in any format; a disagreement exits 1.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use deferscope_analyze::verify::{self, CompilerLines, PathContext};
use deferscope_analyze::Request;

use crate::cli::{CheckArgs, ReportFormat};
use crate::progress::Progress;

/// The go build arguments with `-d=defer` added to the gcflags for every
/// package: a new `-gcflags=all=-d=defer`, or appended to the user's own
/// `all=` gcflags.
pub fn with_defer_flag(args: &[OsString]) -> Result<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::with_capacity(args.len() + 1);
    let mut merged = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        let (flag, value) = if let Some(v) = s
            .strip_prefix("-gcflags=")
            .or_else(|| s.strip_prefix("--gcflags="))
        {
            (true, Some(v.to_owned()))
        } else if s == "-gcflags" || s == "--gcflags" {
            (true, it.next().map(|v| v.to_string_lossy().into_owned()))
        } else {
            (false, None)
        };
        if !flag {
            out.push(a.clone());
            continue;
        }
        let Some(v) = value else {
            bail!("-gcflags needs a value");
        };
        let Some(rest) = v.strip_prefix("all=") else {
            bail!(
                "--verify needs the compiler's output for every package: write -gcflags=all=... instead of -gcflags={v}"
            );
        };
        out.push(format!("-gcflags=all={rest} -d=defer").into());
        merged = true;
    }
    if !merged {
        out.insert(0, "-gcflags=all=-d=defer".into());
    }
    Ok(out)
}

fn go_env(dir: &Path, var: &str) -> Result<String> {
    let o = Command::new("go")
        .args(["env", var])
        .current_dir(dir)
        .output()
        .context("running go env (is the go command on PATH?)")?;
    if !o.status.success() {
        bail!(
            "go env {var}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// The current directory as the go command sees it: `$PWD` when it names
/// the current directory (through symbolic links, as `os.Getwd` does), so
/// that the compiler's relative paths resolve to the pclntab's spelling.
fn working_dir() -> Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from) {
        if pwd.is_absolute() && std::fs::canonicalize(&pwd).ok() == std::fs::canonicalize(&cwd).ok()
        {
            return Ok(pwd);
        }
    }
    Ok(cwd)
}

/// The directory go builds in: `-C DIR` when given, else the current one.
fn build_dir(args: &[OsString]) -> Result<PathBuf> {
    let cwd = working_dir()?;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if let Some(d) = s.strip_prefix("-C=") {
            return Ok(cwd.join(d));
        }
        if s == "-C" {
            if let Some(d) = it.next() {
                return Ok(cwd.join(d));
            }
        }
    }
    Ok(cwd)
}

/// How the compiler's paths map to the pclntab's in this build.
fn path_context(args: &[OsString]) -> Result<PathContext> {
    let dir = build_dir(args)?;
    let goroot = PathBuf::from(go_env(&dir, "GOROOT")?);
    let trim = if args.iter().any(|a| a == OsStr::new("-trimpath")) {
        let gomod = go_env(&dir, "GOMOD")?;
        let root = Path::new(&gomod).parent().map(Path::to_path_buf);
        let module = std::fs::read_to_string(&gomod).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("module "))
                .map(|m| m.trim().trim_matches('"').to_owned())
        });
        root.zip(module)
    } else {
        None
    };
    Ok(PathContext {
        build_dir: dir,
        goroot,
        trim,
    })
}

pub fn run(args: CheckArgs) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("deferscope-check")
        .tempdir()
        .context("creating a temporary directory")?;
    let bin = tmp.path().join("bin");
    let user: Vec<OsString> = args.build_args.clone();
    if user.iter().any(|a| {
        let a = a.to_string_lossy();
        a == "-o" || a == "--o" || a.starts_with("-o=") || a.starts_with("--o=")
    }) {
        bail!("check builds into a temporary file of its own: leave out -o");
    }
    let build_args = if args.verify {
        with_defer_flag(&user)?
    } else {
        user.clone()
    };
    let mut cmd = Command::new("go");
    cmd.arg("build").arg("-o").arg(&bin).args(&build_args);
    let shown = std::iter::once("go build".to_owned())
        .chain(user.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let p = Progress::start(format!(
        "{shown}{}",
        if args.verify { " (-d=defer)" } else { "" }
    ));
    let o = cmd
        .output()
        .context("running go build (is the go command on PATH?)")?;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    if !o.status.success() {
        drop(p);
        // The compiler's own errors, as it printed them (less our -d=defer
        // lines).
        let mut e = io::stderr().lock();
        for l in stderr.lines() {
            if verify::parse_line(l).is_none() {
                let _ = writeln!(e, "{l}");
            }
        }
        bail!("{shown} failed ({})", o.status);
    }
    if !bin.exists() {
        bail!("{shown} wrote no binary (is it a main package?)");
    }
    p.step("scanning");
    let filter = args.filter.filter_for(args.format)?;
    let comp = if args.verify {
        let ctx = path_context(&user)?;
        let comp = CompilerLines::parse(&stderr, &ctx);
        if comp.is_empty() {
            bail!("the compiler printed no -d=defer lines (an old go command?)");
        }
        Some(comp)
    } else {
        None
    };
    let cost =
        (args.explain || args.format == ReportFormat::Html).then(deferscope_analyze::cost::load);
    let req = Request {
        explain: cost.as_ref(),
        verify: comp.as_ref(),
    };
    let verdict = super::analyze(&bin, &shown, &filter, req, |img, ix, a| {
        drop(p);
        super::print(&a, args.format, img, ix)?;
        Ok(a.verification)
    })?;
    if let Some(v) = verdict {
        deferscope_report::verify::text(&v, &mut io::stderr().lock())?;
        if !v.disagreements.is_empty() {
            std::process::exit(1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn defer_flag() {
        assert_eq!(
            with_defer_flag(&v(&["./cmd/x"])).unwrap(),
            v(&["-gcflags=all=-d=defer", "./cmd/x"])
        );
        assert_eq!(
            with_defer_flag(&v(&["-gcflags", "all=-N -l", "."])).unwrap(),
            v(&["-gcflags=all=-N -l -d=defer", "."])
        );
        assert!(with_defer_flag(&v(&["-gcflags=-N"])).is_err());
        assert!(with_defer_flag(&v(&["-gcflags"])).is_err());
    }
}
