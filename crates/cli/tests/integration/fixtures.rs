//! Fixture discovery and the per-binary oracle and twin trials.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use libtest_mimic::{Failed, Trial};
use serde::Deserialize;

use crate::oracle::{compare, Compiler, OurSite};

/// `meta.json` beside each fixture binary, written by the matrix builder.
#[derive(Deserialize, Debug, Clone)]
pub struct Meta {
    pub go_version: String,
    pub goos: String,
    pub goarch: String,
    pub variant: String,
    pub program: String,
    pub build_dir: PathBuf,
    pub goroot: PathBuf,
    #[serde(default)]
    pub gcflags_scope: Option<String>,
    #[serde(default)]
    pub stripped: bool,
    /// Relative to the collection root.
    #[serde(default)]
    pub twin: Option<String>,
}

/// One fixture entry: a directory with `bin`, `defer.txt`, `meta.json`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub meta: Meta,
}

impl Entry {
    pub fn bin(&self) -> PathBuf {
        self.dir.join("bin")
    }
    pub fn twin(&self) -> Option<Entry> {
        let t = self.meta.twin.as_ref()?;
        load_entry(&self.root, &self.root.join(t))
    }
    pub fn name(&self) -> String {
        self.dir
            .strip_prefix(&self.root)
            .unwrap_or(&self.dir)
            .to_string_lossy()
            .replace('\\', "/")
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cache of toolchains, matrix and downloads (`DEFERSCOPE_CACHE`, else
/// `~/.cache/deferscope`), as scripts/test-all.sh sets it up.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("DEFERSCOPE_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/deferscope"),
    }
}

/// A Go version as numbers, for ordering ("1.22.10" -> [1, 22, 10]).
fn vkey(v: &str) -> Vec<u32> {
    v.split('.').filter_map(|x| x.parse().ok()).collect()
}

/// Installed toolchains, oldest first: (version, GOROOT).
pub fn toolchains() -> Vec<(String, PathBuf)> {
    let dir = cache_root().join("toolchains");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.strip_prefix("go")?.to_owned();
            let goroot = e.path().join("go");
            goroot.join("bin/go").is_file().then_some((version, goroot))
        })
        .collect();
    v.sort_by_key(|(ver, _)| vkey(ver));
    v
}

pub fn committed_root() -> PathBuf {
    repo_root().join("fixtures/bin")
}

fn load_entry(root: &Path, dir: &Path) -> Option<Entry> {
    let meta = std::fs::read_to_string(dir.join("meta.json")).ok()?;
    let meta: Meta = serde_json::from_str(&meta).ok()?;
    Some(Entry {
        dir: dir.to_owned(),
        root: root.to_owned(),
        meta,
    })
}

/// Every directory under `root` that holds a `meta.json`.
pub fn entries(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        if d.join("meta.json").is_file() && d.join("bin").is_file() {
            if let Some(e) = load_entry(root, &d) {
                out.push(e);
            }
            continue;
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// Scan a binary with the library, as the CLI does.
pub fn scan(bin: &Path) -> Result<deferscope_analyze::Scan, String> {
    let m = deferscope_load::Mapped::open(bin).map_err(|e| e.to_string())?;
    let img = m.image().map_err(|e| e.to_string())?;
    let ix = deferscope_index::GoIndex::new(&img).map_err(|e| e.to_string())?;
    deferscope_analyze::scan(&bin.display().to_string(), &img, &ix).map_err(|e| e.to_string())
}

fn our_sites(r: &deferscope_analyze::Scan) -> Vec<OurSite> {
    r.sites
        .iter()
        .map(|s| OurSite {
            function: s.function.clone(),
            entry: r
                .functions
                .iter()
                .find(|f| s.pc >= f.entry && s.pc < f.entry + f.size)
                .map_or(0, |f| f.entry),
            file: s.file.clone(),
            line: s.line,
            kind: s.kind.as_str().to_owned(),
        })
        .collect()
}

/// `file:line` pairs that have instructions, from `go tool objdump` of the
/// unstripped binary, cached as `objdump-lines.txt` beside it.
///
/// objdump prints only the base name of each instruction's file; the full
/// path is in the function's `TEXT sym(SB) file` header. A defer's own line
/// is always in its own function (functions with defers are never inlined),
/// so only instructions whose base name is the header file's are kept, under
/// the header's full path. A line holding a `CALL runtime.deferproc*` is
/// also listed with a `\tdeferproc` suffix: for stack- and heap-allocated
/// defers, that call is the code the line must have (an SSA-dead defer can
/// leave its line on an unrelated exit instruction).
///
/// Only positions in `keep` (base name, line) are kept: the compiler's lines.
fn code_lines(e: &Entry, keep: &HashSet<(String, u32)>) -> Result<HashSet<String>, String> {
    let cache = e.dir.join("objdump-lines.txt");
    if let Ok(t) = std::fs::read_to_string(&cache) {
        return Ok(t.lines().map(str::to_owned).collect());
    }
    let go = e.meta.goroot.join("bin/go");
    if !go.exists() {
        return Err(format!(
            "no objdump-lines.txt and no Go toolchain at {} to make one",
            e.meta.goroot.display()
        ));
    }
    let out = Command::new(&go)
        .args(["tool", "objdump"])
        .arg(e.bin())
        .env("GOROOT", &e.meta.goroot)
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|x| format!("go tool objdump: {x}"))?;
    if !out.status.success() {
        return Err(format!(
            "go tool objdump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut set = HashSet::new();
    let mut header_file = String::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(h) = l.strip_prefix("TEXT ") {
            header_file = h.rsplit(' ').next().unwrap_or("").to_owned();
            continue;
        }
        // "  main.go:13\t0x4a1c20\t..."
        let Some(rest) = l.strip_prefix("  ") else {
            continue;
        };
        let Some((pos, _)) = rest.split_once('\t') else {
            continue;
        };
        let Some((base, line)) = pos.rsplit_once(':') else {
            continue;
        };
        let wanted = line
            .parse()
            .is_ok_and(|l: u32| keep.contains(&(base.to_owned(), l)));
        if wanted && header_file.rsplit('/').next() == Some(base) {
            set.insert(format!("{header_file}:{line}"));
            if rest.contains("CALL runtime.deferproc") {
                set.insert(format!("{header_file}:{line}\tdeferproc"));
            }
        }
    }
    let mut v: Vec<_> = set.iter().cloned().collect();
    v.sort();
    let _ = std::fs::write(&cache, v.join("\n") + "\n");
    Ok(set)
}

/// The module path of one of our fixture programs, from its go.mod.
pub fn module_path(program: &str) -> Option<String> {
    let gomod =
        std::fs::read_to_string(repo_root().join("fixtures/go").join(program).join("go.mod"))
            .ok()?;
    gomod
        .lines()
        .find_map(|l| l.strip_prefix("module "))
        .map(|m| m.trim().to_owned())
}

/// Compare one entry with the compiler's lines.
pub fn check_oracle(e: &Entry) -> Result<String, String> {
    let report = scan(&e.bin())?;
    let twin = e.twin();
    let src = twin.as_ref().filter(|_| e.meta.stripped).unwrap_or(e);
    let text = std::fs::read_to_string(e.dir.join("defer.txt"))
        .or_else(|_| std::fs::read_to_string(src.dir.join("defer.txt")))
        .map_err(|x| format!("defer.txt: {x}"))?;
    let module = module_path(&e.meta.program);
    let trim = match (&module, e.meta.variant.as_str()) {
        (Some(m), "trimpath") => Some((e.meta.build_dir.as_path(), m.as_str())),
        _ => None,
    };
    let comp = Compiler::parse(&text, &e.meta.build_dir, &e.meta.goroot, trim);
    if comp.lines.is_empty() {
        return Err("the compiler printed no defer lines".into());
    }
    let mut ours = our_sites(&report);
    if e.meta.gcflags_scope.as_deref() == Some("main") {
        // Only the listed packages were compiled with -d=defer.
        let files: Vec<&str> = comp.lines.keys().map(|p| p.0.as_str()).collect();
        ours.retain(|s| files.iter().any(|f| crate::oracle::same_file(f, &s.file)));
    }
    // (base name, line, needs a deferproc call) -> full paths with such
    // code there; built on first use.
    type CodeIndex = HashMap<(String, u32, bool), Vec<String>>;
    let lines: Mutex<Option<Result<CodeIndex, String>>> = Mutex::new(None);
    let cmp = compare(&comp, &ours, |file, line, kind| {
        let mut g = lines.lock().unwrap();
        let set = g.get_or_insert_with(|| {
            let mut idx = CodeIndex::new();
            let keep: HashSet<(String, u32)> = comp
                .lines
                .keys()
                .map(|(f, l)| (f.rsplit('/').next().unwrap_or(f).to_owned(), *l))
                .collect();
            for k in code_lines(src, &keep)? {
                let (k, call) = match k.strip_suffix("\tdeferproc") {
                    Some(k) => (k.to_owned(), true),
                    None => (k, false),
                };
                if let Some((f, l)) = k.rsplit_once(':') {
                    let base = f.rsplit('/').next().unwrap_or(f).to_owned();
                    idx.entry((base, l.parse().unwrap_or(0), call))
                        .or_default()
                        .push(f.to_owned());
                }
            }
            Ok(idx)
        });
        let base = file.rsplit('/').next().unwrap_or(file).to_owned();
        match set {
            Ok(idx) => idx
                .get(&(base, line, kind != "open-coded"))
                .is_some_and(|fs| fs.iter().any(|f| crate::oracle::same_file(f, file))),
            // Without the objdump oracle every unmatched line counts.
            Err(_) => true,
        }
    });
    if let Some(Err(why)) = lines.into_inner().unwrap() {
        if !cmp.ok() {
            return Err(format!(
                "{}\n(objdump oracle unavailable: {why})",
                cmp.describe()
            ));
        }
    }
    if cmp.ok() {
        Ok(cmp.describe())
    } else {
        Err(cmp.describe())
    }
}

/// A stripped binary must give the same sites as its unstripped twin.
pub fn check_twin(e: &Entry) -> Result<(), String> {
    let t = e.twin().ok_or("twin entry not found")?;
    let a = scan(&e.bin())?;
    let b = scan(&t.bin())?;
    let key = |r: &deferscope_analyze::Scan| {
        let mut v: Vec<_> = r
            .sites
            .iter()
            .map(|s| (s.function.clone(), s.file.clone(), s.line, s.kind))
            .collect();
        v.sort();
        v
    };
    let (ka, kb) = (key(&a), key(&b));
    if ka != kb {
        let sa: HashSet<_> = ka.iter().collect();
        let sb: HashSet<_> = kb.iter().collect();
        let only_a: Vec<_> = sa.difference(&sb).take(10).collect();
        let only_b: Vec<_> = sb.difference(&sa).take(10).collect();
        return Err(format!(
            "stripped {} sites vs unstripped {}; only stripped: {only_a:?}; only unstripped: {only_b:?}",
            ka.len(),
            kb.len()
        ));
    }
    // Our `stripped` flag against `go tool nm`, which lists Go's symbols
    // when there are any (go1.21 and older keep them on darwin even with -s).
    let go = e.meta.goroot.join("bin/go");
    if go.exists() {
        let nm = Command::new(&go)
            .args(["tool", "nm"])
            .arg(e.bin())
            .env("GOROOT", &e.meta.goroot)
            .env("GOTOOLCHAIN", "local")
            .output()
            .map_err(|x| x.to_string())?;
        let has_go_symbols = String::from_utf8_lossy(&nm.stdout)
            .lines()
            .any(|l| l.ends_with(" T runtime.main"));
        if a.binary.stripped == has_go_symbols {
            return Err(format!(
                "we say stripped={}, go tool nm {} runtime.main",
                a.binary.stripped,
                if has_go_symbols {
                    "lists"
                } else {
                    "does not list"
                }
            ));
        }
    }
    Ok(())
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    let mut roots = vec![committed_root()];
    if let Ok(m) = std::env::var("DEFERSCOPE_MATRIX") {
        if !m.is_empty() {
            roots.push(PathBuf::from(m));
        }
    }
    let mut out = Vec::new();
    for root in roots {
        let tag = if root == committed_root() {
            "committed"
        } else {
            "matrix"
        };
        for e in entries(&root) {
            let name = e.name();
            let e2 = e.clone();
            out.push(Trial::test(format!("oracle::{tag}::{name}"), move || {
                let summary = check_oracle(&e2).map_err(Failed::from)?;
                // DEFERSCOPE_REPORT=FILE collects one summary line per entry.
                if let Ok(path) = std::env::var("DEFERSCOPE_REPORT") {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    writeln!(f, "{}\t{}", e2.name(), summary.lines().next().unwrap_or(""))?;
                }
                Ok(())
            }));
            if e.meta.stripped && e.meta.twin.is_some() {
                out.push(Trial::test(format!("twin::{tag}::{name}"), move || {
                    check_twin(&e).map_err(Failed::from)
                }));
            }
        }
    }
    out
}

/// A Go program of this directory (`crates/cli/tests/integration/<name>.go`,
/// standard library only), built once per test run with the newest
/// toolchain; `None` when none is installed or the build fails.
pub fn go_tool(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, Option<PathBuf>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    built
        .entry(name.to_owned())
        .or_insert_with(|| {
            let (ver, goroot) = toolchains().pop()?;
            let out = std::env::temp_dir().join(format!("deferscope-{name}-{ver}"));
            let src = repo_root().join(format!("crates/cli/tests/integration/{name}.go"));
            let ok = go_cmd(&goroot, &ver, name, &repo_root())
                .arg("build")
                .arg("-o")
                .arg(&out)
                .arg(src)
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(out)
        })
        .clone()
}

/// The go command of `goroot` with an environment of our own: no GO* or
/// CGO_* variables from outside, no network, CGO off, and a GOCACHE of
/// the caller's (`gocache/go<version>-<cache>` under the cache root), run
/// in `dir`.
pub fn go_cmd(goroot: &Path, version: &str, cache: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(goroot.join("bin/go"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("GO") || k.starts_with("CGO_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.current_dir(dir)
        .env("PWD", dir)
        .env("GOROOT", goroot)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("CGO_ENABLED", "0")
        .env(
            "GOCACHE",
            cache_root().join(format!("gocache/go{version}-{cache}")),
        );
    cmd
}
