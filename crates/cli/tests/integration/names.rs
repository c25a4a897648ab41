//! Names and paths as people write them (issue 15, items 4, 5 and 6), on
//! programs built here with the newest installed toolchain (skipped
//! without one):
//!
//! - `fixtures/go/names/app`: a module with a package whose path has a dot
//!   in its last element (`example.com/x/yaml.v3`, a local replacement: the
//!   compiler's symbols spell it `example.com/x/yaml%2ev3`), a package of
//!   its own, and `example.com/Dep` served by a `file://` module proxy the
//!   test writes (so its files are in the module cache, at
//!   `example.com/!dep@v1.2.3`). Built twice, as is and with `-trimpath`:
//!   the code is the same, only the recorded paths differ, and `go tool
//!   addr2line` on the `-trimpath` build is the oracle of the relative
//!   paths (cmd/go's own spelling), on the plain build that of
//!   `--full-paths`.
//! - `fixtures/go/names/gopath`: a GOPATH (`GO111MODULE=off`) program,
//!   `github.com/acme/tool/cmd/tool` with its own `internal/x` and another
//!   repository's `github.com/other/lib`; the compiler's `-d=defer` lines,
//!   under their `# package` headers, say which package each site is in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::badinput::deferscope;
use crate::fixtures::{go_cmd, repo_root, toolchains};

/// The newest installed toolchain: (version, GOROOT).
fn toolchain() -> Option<(String, PathBuf)> {
    toolchains().pop()
}

fn run_ok(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), dst)?;
        }
    }
    Ok(())
}

/// CRC-32 (IEEE), as zip wants it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A zip archive of `files` (name, bytes), stored uncompressed.
fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let crc = crc32(data);
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&[0; 6]); // comment, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let at = out.len() as u32;
    let n = files.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `file://` module proxy serving fixtures/go/names/dep as
/// `example.com/Dep v1.2.3` (the GOPROXY protocol: `$path/@v/list`,
/// `.info`, `.mod`, `.zip`, with the path's upper case escaped).
fn write_proxy(proxy: &Path) -> std::io::Result<()> {
    let src = repo_root().join("fixtures/go/names/dep");
    let v = proxy.join("example.com/!dep/@v");
    std::fs::create_dir_all(&v)?;
    std::fs::write(v.join("list"), "v1.2.3\n")?;
    std::fs::write(
        v.join("v1.2.3.info"),
        r#"{"Version":"v1.2.3","Time":"2024-01-02T03:04:05Z"}"#,
    )?;
    std::fs::copy(src.join("go.mod"), v.join("v1.2.3.mod"))?;
    let mut files = Vec::new();
    for name in ["go.mod", "dep.go"] {
        files.push((
            format!("example.com/Dep@v1.2.3/{name}"),
            std::fs::read(src.join(name))?,
        ));
    }
    std::fs::write(v.join("v1.2.3.zip"), zip(&files))
}

/// The names fixture, built.
struct App {
    goroot: PathBuf,
    /// Built as is, with `-gcflags=all=-d=defer`.
    bin: PathBuf,
    /// The same with `-trimpath`.
    trim: PathBuf,
    /// The compiler's `-d=defer` output of `bin`.
    compiler: String,
    /// Where it was built (the recorded paths are under it).
    root: PathBuf,
}

fn build_app() -> Result<App, String> {
    let (version, goroot) = toolchain().ok_or("no toolchain")?;
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("names-go{version}"));
    let _ = std::fs::remove_dir_all(&root);
    let app = root.join("app");
    copy_tree(&repo_root().join("fixtures/go/names/app"), &app).map_err(|e| e.to_string())?;
    write_proxy(&root.join("proxy")).map_err(|e| e.to_string())?;
    let build = |extra: &[&str], out: &Path| {
        let mut cmd = go_cmd(&goroot, &version, "names", &app);
        cmd.env(
            "GOPROXY",
            format!("file://{}", root.join("proxy").display()),
        )
        .env("GOMODCACHE", root.join("modcache"))
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .arg("build")
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(".");
        run_ok(&mut cmd)
    };
    let bin = root.join("app.bin");
    let trim = root.join("app.trim");
    let o = build(&["-gcflags=all=-d=defer"], &bin)?;
    build(&["-trimpath"], &trim)?;
    Ok(App {
        goroot,
        bin,
        trim,
        compiler: String::from_utf8_lossy(&o.stderr).into_owned(),
        root,
    })
}

fn app() -> Result<&'static App, Failed> {
    static APP: OnceLock<Result<App, String>> = OnceLock::new();
    APP.get_or_init(build_app)
        .as_ref()
        .map_err(|e| Failed::from(e.as_str()))
}

/// `go tool addr2line` of `pcs` in `bin`: (file, line) each.
fn addr2line(goroot: &Path, bin: &Path, pcs: &[u64]) -> Result<Vec<(String, u32)>, Failed> {
    use std::io::Write;
    let mut child = Command::new(goroot.join("bin/go"))
        .args(["tool", "addr2line"])
        .arg(bin)
        .env("GOROOT", goroot)
        .env("GOTOOLCHAIN", "local")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut input = String::new();
    for pc in pcs {
        input.push_str(&format!("{pc:#x}\n"));
    }
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    let v: Vec<(String, u32)> = lines
        .chunks(2)
        .filter_map(|c| {
            let (file, line) = c.get(1)?.rsplit_once(':')?;
            Some((file.to_owned(), line.parse().ok()?))
        })
        .collect();
    if v.len() != pcs.len() {
        return Err(format!("addr2line gave {} answers for {} pcs", v.len(), pcs.len()).into());
    }
    Ok(v)
}

/// `deferscope ARGS BIN`, stdout; a failure is an error.
fn ds(args: &[&str], bin: &Path) -> Result<String, Failed> {
    let out = deferscope().args(args).arg(bin).output()?;
    if !out.status.success() {
        return Err(format!(
            "deferscope {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn json(args: &[&str], bin: &Path) -> Result<Value, Failed> {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    Ok(serde_json::from_str(&ds(&a, bin)?)?)
}

fn sites(v: &Value) -> Vec<&Value> {
    v["sites"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// The compiler's `FILE:LINE:COL: KIND defer` lines, under their
/// `# package` headers: (package, file, line, kind).
fn compiler_lines(text: &str) -> Vec<(String, String, u32, String)> {
    let mut pkg = String::new();
    let mut v = Vec::new();
    for l in text.lines() {
        if let Some(p) = l.strip_prefix("# ") {
            pkg = p.to_owned();
            continue;
        }
        let Some(rest) = l.strip_suffix(" defer") else {
            continue;
        };
        let mut it = rest.rsplitn(4, ':');
        let (Some(kind), Some(_col), Some(line), Some(file)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        if let Ok(line) = line.parse() {
            v.push((pkg.clone(), file.to_owned(), line, kind.trim().to_owned()));
        }
    }
    v
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Item 4: the escaped package path is shown as the import path, in
/// every format.
fn escaped_package_paths() -> Result<(), Failed> {
    let a = app()?;
    let nm = run_ok(
        Command::new(a.goroot.join("bin/go"))
            .args(["tool", "nm"])
            .arg(&a.bin)
            .env("GOROOT", &a.goroot)
            .env("GOTOOLCHAIN", "local"),
    )?;
    if !String::from_utf8_lossy(&nm.stdout).contains(" example.com/x/yaml%2ev3.Decode\n") {
        return Err("the binary's symbols do not spell example.com/x/yaml%2ev3.Decode".into());
    }
    // The compiler's sites in the package.
    let want: Vec<u32> = compiler_lines(&a.compiler)
        .into_iter()
        .filter(|c| c.0 == "example.com/x/yaml.v3")
        .map(|c| c.2)
        .collect();
    if want.len() != 2 {
        return Err(format!("compiler lines of yaml.v3: {want:?}").into());
    }
    let v = json(&["scan"], &a.bin)?;
    let mut got: Vec<u32> = sites(&v)
        .into_iter()
        .filter(|x| s(x, "package") == "example.com/x/yaml.v3")
        .map(|x| x["line"].as_u64().unwrap_or(0) as u32)
        .collect();
    got.sort_unstable();
    if got != want {
        return Err(
            format!("sites of package example.com/x/yaml.v3: {got:?}, compiler {want:?}").into(),
        );
    }
    for args in [
        &["scan", "--format", "text"][..],
        &["scan", "--format", "json"],
        &["scan", "--format", "sarif"],
        &["scan", "--format", "html"],
        &["explain", "--format", "text"],
        &["explain", "--format", "json"],
    ] {
        // Stream's defer is heap-allocated: in SARIF too.
        let out = ds(args, &a.bin)?;
        if !out.contains("example.com/x/yaml.v3.Stream") {
            return Err(format!("{args:?}: no example.com/x/yaml.v3.Stream").into());
        }
        if out.to_ascii_lowercase().contains("yaml%2ev3") {
            return Err(format!("{args:?}: shows yaml%2ev3").into());
        }
    }
    Ok(())
}

/// Item 4: `--funcs` matches the import path.
fn funcs_filter_real_path() -> Result<(), Failed> {
    let a = app()?;
    let mut want: Vec<(u32, String)> = compiler_lines(&a.compiler)
        .into_iter()
        .filter(|c| c.0 == "example.com/x/yaml.v3")
        .map(|c| (c.2, c.3))
        .collect();
    want.sort();
    let v = json(&["scan", "--funcs", r"yaml\.v3\."], &a.bin)?;
    let mut got: Vec<(u32, String)> = sites(&v)
        .into_iter()
        .map(|x| {
            (
                x["line"].as_u64().unwrap_or(0) as u32,
                s(x, "kind").to_owned(),
            )
        })
        .collect();
    got.sort();
    if got != want || got.is_empty() {
        return Err(format!("scan --funcs 'yaml\\.v3\\.': {got:?}, compiler {want:?}").into());
    }
    let x = ds(
        &["disasm", "--funcs", r"^example\.com/x/yaml\.v3\.Decode$"],
        &a.bin,
    )?;
    if !x.lines().any(|l| l.starts_with("TEXT ")) {
        return Err("disasm --funcs 'yaml\\.v3\\.Decode$' listed nothing".into());
    }
    Ok(())
}

/// The files of `v`'s sites and functions, with the pc each is at.
fn files_at(v: &Value) -> Vec<(u64, String, u32)> {
    let mut out: Vec<(u64, String, u32)> = sites(v)
        .into_iter()
        .map(|x| {
            (
                x["pc"].as_u64().unwrap_or(0),
                s(x, "file").to_owned(),
                x["line"].as_u64().unwrap_or(0) as u32,
            )
        })
        .collect();
    for f in v["functions"].as_array().into_iter().flatten() {
        out.push((
            f["entry"].as_u64().unwrap_or(0),
            s(f, "file").to_owned(),
            f["line"].as_u64().unwrap_or(0) as u32,
        ));
    }
    out
}

/// Every file of `v` against addr2line's in `bin`; the number compared.
fn against_addr2line(goroot: &Path, bin: &Path, v: &Value) -> Result<usize, Failed> {
    let ours = files_at(v);
    let pcs: Vec<u64> = ours.iter().map(|o| o.0).collect();
    let theirs = addr2line(goroot, bin, &pcs)?;
    for (o, t) in ours.iter().zip(&theirs) {
        if (&o.1, o.2) != (&t.0, t.1) {
            return Err(format!("{:#x}: {}:{}, addr2line {}:{}", o.0, o.1, o.2, t.0, t.1).into());
        }
    }
    Ok(ours.len())
}

/// Item 6: paths as `-trimpath` records them by default, as recorded
/// with `--full-paths`.
fn relative_paths() -> Result<(), Failed> {
    let a = app()?;
    let v = json(&["explain"], &a.bin)?;
    let n = against_addr2line(&a.goroot, &a.trim, &v)?;
    let files: Vec<String> = files_at(&v).into_iter().map(|f| f.1).collect();
    for want in [
        "runtime/",
        "example.com/app/main.go",
        "example.com/app/internal/work/work.go",
        "example.com/x/yaml.v3@v0.0.0/yaml.go",
    ] {
        if !files.iter().any(|f| f.starts_with(want)) {
            return Err(format!("no file {want}... among {n}").into());
        }
    }
    let full = json(&["explain", "--full-paths"], &a.bin)?;
    against_addr2line(&a.goroot, &a.bin, &full)?;
    let goroot_src = format!("{}/src/", a.goroot.display());
    let app_dir = format!("{}/app/", a.root.display());
    for args in [
        &["scan", "--format", "text"][..],
        &["explain", "--format", "text"],
        &["explain", "--format", "html"],
    ] {
        let out = ds(args, &a.bin)?;
        if out.contains(&goroot_src) || out.contains(&app_dir) {
            return Err(format!("{args:?} shows a recorded path").into());
        }
        let full = ds(&[args, &["--full-paths"]].concat(), &a.bin)?;
        if !full.contains(&goroot_src) || !full.contains(&app_dir) {
            return Err(format!("{args:?} --full-paths shows no recorded path").into());
        }
    }
    // SARIF keeps its own scheme: the flag changes nothing.
    let sarif = ds(&["scan", "--format", "sarif"], &a.bin)?;
    if sarif != ds(&["scan", "--format", "sarif", "--full-paths"], &a.bin)? {
        return Err("SARIF differs with --full-paths".into());
    }
    Ok(())
}

/// Item 6: a module-cache file is `module@version/path`, its path's case
/// unescaped.
fn module_cache_paths() -> Result<(), Failed> {
    let a = app()?;
    let full = json(
        &["scan", "--full-paths", "--funcs", r"^example\.com/Dep\."],
        &a.bin,
    )?;
    let recorded: Vec<String> = sites(&full)
        .into_iter()
        .map(|x| s(x, "file").to_owned())
        .collect();
    let cache = format!(
        "{}/modcache/example.com/!dep@v1.2.3/dep.go",
        a.root.display()
    );
    if recorded.is_empty() || recorded.iter().any(|f| *f != cache) {
        return Err(format!("recorded {recorded:?}, want {cache}").into());
    }
    let v = json(&["scan", "--funcs", r"^example\.com/Dep\."], &a.bin)?;
    against_addr2line(&a.goroot, &a.trim, &v)?;
    let text = ds(&["scan"], &a.bin)?;
    let want = compiler_lines(&a.compiler)
        .into_iter()
        .find(|c| c.0 == "example.com/Dep")
        .ok_or("no compiler line of example.com/Dep")?;
    let line = format!("example.com/Dep@v1.2.3/dep.go:{}", want.2);
    if !text.contains(&line) {
        return Err(format!("scan text lacks {line}").into());
    }
    Ok(())
}

/// Item 5: a GOPATH build's own code is its repository's packages.
fn gopath_build_own_code() -> Result<(), Failed> {
    let (version, goroot) = toolchain().ok_or("no toolchain")?;
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("names-gopath-go{version}"));
    let _ = std::fs::remove_dir_all(&root);
    let gopath = root.join("gopath");
    copy_tree(&repo_root().join("fixtures/go/names/gopath"), &gopath)?;
    let dir = gopath.join("src/github.com/acme/tool/cmd/tool");
    let build = |extra: &[&str], out: &Path| {
        let mut cmd = go_cmd(&goroot, &version, "names", &dir);
        cmd.env("GO111MODULE", "off")
            .env("GOPATH", &gopath)
            .arg("build")
            .args(extra)
            .arg("-o")
            .arg(out)
            .arg(".");
        run_ok(&mut cmd)
    };
    let bin = root.join("tool");
    let trim = root.join("tool.trim");
    let compiler = compiler_lines(&String::from_utf8_lossy(
        &build(&["-gcflags=all=-d=defer"], &bin)?.stderr,
    ));
    build(&["-trimpath"], &trim)?;
    let m = run_ok(
        go_cmd(&goroot, &version, "names", &root)
            .args(["version", "-m"])
            .arg(&bin),
    )?;
    let m = String::from_utf8_lossy(&m.stdout);
    if !m.contains("\tpath\tgithub.com/acme/tool/cmd/tool\n") || m.contains("\tmod\t") {
        return Err(format!("not a GOPATH build: {m}").into());
    }
    let v = json(&["scan"], &bin)?;
    let b = &v["binary"];
    if !b["main_module"].is_null()
        || s(&b["gopath_build"], "main_package") != "github.com/acme/tool/cmd/tool"
        || s(&b["gopath_build"], "own_code") != "github.com/acme/tool"
    {
        return Err(format!("binary: {b}").into());
    }
    // Each compiler site outside the standard library, by its package.
    let mut checked = 0;
    for (pkg, file, line, kind) in compiler.iter().filter(|c| c.0.contains('.')) {
        let want = if pkg.starts_with("github.com/acme/tool/") {
            "main"
        } else {
            "dep"
        };
        let site = sites(&v)
            .into_iter()
            .find(|x| base(s(x, "file")) == base(file) && x["line"] == *line)
            .ok_or(format!("no site {file}:{line}"))?;
        if s(site, "origin") != want || s(site, "kind") != kind {
            return Err(format!("{pkg} {file}:{line}: {site}, want origin {want}, {kind}").into());
        }
        checked += 1;
    }
    if checked < 4 {
        return Err(format!("{checked} compiler sites outside std").into());
    }
    let text = ds(&["scan"], &bin)?;
    if !text.contains("GOPATH build (no main module) of github.com/acme/tool/cmd/tool")
        || !text.contains("\n# own code\n")
    {
        return Err("scan text does not say it is a GOPATH build".into());
    }
    // Paths: GOPATH/src/ dropped, as -trimpath does.
    against_addr2line(&goroot, &trim, &v)?;
    Ok(())
}

pub fn trials() -> Vec<Trial> {
    let none = toolchain().is_none();
    let t = |name: &str, f: fn() -> Result<(), Failed>| {
        Trial::test(format!("names::{name}"), f).with_ignored_flag(none)
    };
    vec![
        t("escaped_package_paths", escaped_package_paths),
        t("funcs_filter_real_path", funcs_filter_real_path),
        t("gopath_build_own_code", gopath_build_own_code),
        t("relative_paths", relative_paths),
        t("module_cache_paths", module_cache_paths),
    ]
}
