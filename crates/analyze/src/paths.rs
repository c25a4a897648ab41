//! File paths as people read them: the path a `-trimpath` build would have
//! recorded, worked out from the absolute paths the binary records
//! (docs/design.md §4.10).
//!
//! The compiler records each file's absolute path on the build machine.
//! `go build -trimpath` instead rewrites a package's directory to its
//! import path, or `module@version/...` for a package of a versioned
//! module (cmd/go/internal/work.(*Action).trimpath): `runtime/proc.go`,
//! `example.com/x/cmd/tool/main.go`, `golang.org/x/sync@v0.7.0/errgroup/
//! errgroup.go`. [`PathMap`] gives that spelling for a recorded path when
//! the binary tells which directory is which:
//!
//! - GOROOT: `runtime.main` is in `GOROOT/src/runtime/proc.go`, so
//!   `GOROOT/src/` is cut from every path under it;
//! - the main module: `main.main`'s file is in the main package's
//!   directory, whose import path is the build info's `path` line; its
//!   part below the module path (`mod` line) is cut from the directory's
//!   end to give the module's root, which becomes the module path. In a
//!   GOPATH build (no `mod` line) the whole import path is cut, leaving
//!   `GOPATH/src/`, which is dropped;
//! - the module cache: a dependency `path version` of the build info lives
//!   in `.../path@version/` with upper-case letters written `!` + lower
//!   case (golang.org/x/mod/module.EscapePath); the directory becomes
//!   `path@version`, and so does `ROOT/vendor/path/` in the main module;
//! - replacements (`=>` lines): a module replaced by another is in the
//!   cache under the replacement's path and version, one replaced by a
//!   directory (`./yaml.v3`) is there relative to the main module's root;
//!   either is still spelled by the replaced module's path and version,
//!   as `-trimpath` does.
//!
//! A path none of these covers (cgo's generated files, a main package
//! outside its module's tree, a path already trimmed) is shown as
//! recorded.

use std::borrow::Cow;
use std::collections::HashMap;

use deferscope_index::{BuildInfo, GoIndex};
use deferscope_model::Analysis;

/// How recorded paths of one binary are shown.
#[derive(Clone, Debug, Default)]
pub struct PathMap {
    /// `GOROOT/src/` (with the slash).
    goroot_src: Option<String>,
    /// Module cache directories: (`/escaped-path@escaped-version/`,
    /// `path@version/`).
    modules: Vec<(String, String)>,
    /// The main module's vendor directory (`ROOT/vendor/`), with the
    /// dependencies' paths: (`path/`, `path@version/`).
    vendor: Option<(String, Vec<(String, String)>)>,
    /// Directory prefixes, what replaces them, and whether files in
    /// their subdirectories are covered; longest first: the main module's
    /// root, or GOPATH/src (with subdirectories), and the main package's
    /// directory (its own files only: a subdirectory is another package,
    /// whose path is not known without the module's root).
    dirs: Vec<(String, String, bool)>,
}

/// golang.org/x/mod/module.EscapePath's rule: an upper-case letter is
/// written `!` and its lower case.
fn escape_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_absolute(p: &str) -> bool {
    p.starts_with('/')
        || (p.len() > 2 && p.as_bytes()[0].is_ascii_alphabetic() && p.as_bytes()[1] == b':')
}

/// `p` with `.` and `..` elements resolved and no trailing slash.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for e in p.split('/') {
        match e {
            "." => {}
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
            }
            "" if !out.is_empty() => {}
            e => out.push(e),
        }
    }
    out.join("/")
}

/// The directory of `file` (no trailing slash).
fn dir_of(file: &str) -> Option<&str> {
    file.rsplit_once('/').map(|(d, _)| d)
}

impl PathMap {
    /// The map for the binary `ix` indexes.
    pub fn new(ix: &GoIndex<'_>) -> PathMap {
        let found = ix.find_funcs(&["runtime.main", "main.main"]);
        let file_of = |i: usize| -> Option<&str> {
            let f = found[i]?;
            let (file, _) = ix.lines(&f).at(f.entry)?;
            is_absolute(file).then_some(file)
        };
        PathMap::from_facts(file_of(0), file_of(1), ix.buildinfo.as_ref())
    }

    /// The map from what the binary says: the recorded files of
    /// `runtime.main` and `main.main`, and the build info.
    pub fn from_facts(
        runtime_main: Option<&str>,
        main_main: Option<&str>,
        bi: Option<&BuildInfo>,
    ) -> PathMap {
        let goroot_src = runtime_main
            .and_then(|f| f.strip_suffix("runtime/proc.go"))
            .filter(|g| g.ends_with("/src/"))
            .map(str::to_owned);
        let empty = BuildInfo::default();
        let bi = bi.unwrap_or(&empty);
        let main_package = bi.path.as_deref();
        let main_module = bi.main_module.as_ref().map(|m| m.0.as_str());
        // A replaced module is spelled by its own path and version too.
        let replaced = |i: usize| bi.replacements.iter().find(|r| r.0 == i);
        let is_dir = |p: &str| p.starts_with("./") || p.starts_with("../") || is_absolute(p);
        let modules: Vec<(String, String)> = bi
            .deps
            .iter()
            .enumerate()
            .filter_map(|(i, (p, v))| {
                let (fp, fv) = match replaced(i) {
                    Some((_, rp, _)) if is_dir(rp) => return None,
                    Some((_, rp, rv)) => (rp, rv),
                    None => (p, v),
                };
                (!fp.is_empty() && !fv.is_empty()).then(|| {
                    (
                        format!("/{}@{}/", escape_case(fp), escape_case(fv)),
                        format!("{p}@{v}/"),
                    )
                })
            })
            .collect();
        let mut dirs = Vec::new();
        let mut vendor = None;
        if let (Some(dir), Some(pkg)) = (main_main.and_then(dir_of), main_package) {
            let root = match main_module {
                // The main package's path below the module's.
                Some(m) => pkg
                    .strip_prefix(m)
                    .filter(|r| r.is_empty() || r.starts_with('/'))
                    .and_then(|below| dir.strip_suffix(below))
                    .map(|root| (format!("{root}/"), format!("{m}/"))),
                // GOPATH: GOPATH/src/ + the import path.
                None => dir
                    .strip_suffix(pkg)
                    .filter(|r| r.ends_with('/'))
                    .map(|r| (r.to_owned(), String::new())),
            };
            if let Some((root, module)) = root {
                if main_module.is_some() {
                    let deps = bi
                        .deps
                        .iter()
                        .map(|(p, v)| (format!("{p}/"), format!("{p}@{v}/")))
                        .collect();
                    vendor = Some((format!("{root}vendor/"), deps));
                    // Modules replaced by directories, relative to the
                    // main module's root.
                    for (i, rp, _) in &bi.replacements {
                        let Some((p, v)) = bi.deps.get(*i).filter(|_| is_dir(rp)) else {
                            continue;
                        };
                        let d = if is_absolute(rp) {
                            clean(rp)
                        } else {
                            clean(&format!("{root}{rp}"))
                        };
                        dirs.push((format!("{d}/"), format!("{p}@{v}/"), true));
                    }
                }
                dirs.push((root, module, true));
            }
            dirs.push((format!("{dir}/"), format!("{pkg}/"), false));
        }
        // Longest first; of equal ones, the one with subdirectories.
        dirs.sort_by_key(|(d, _, deep)| (std::cmp::Reverse(d.len()), !deep));
        PathMap {
            goroot_src,
            modules,
            vendor,
            dirs,
        }
    }

    /// The path `recorded` as shown: what `-trimpath` would have recorded,
    /// or `recorded` itself when the binary does not say.
    pub fn show<'a>(&self, recorded: &'a str) -> Cow<'a, str> {
        if !is_absolute(recorded) {
            return Cow::Borrowed(recorded);
        }
        if let Some(rest) = self
            .goroot_src
            .as_deref()
            .and_then(|g| recorded.strip_prefix(g))
        {
            return Cow::Borrowed(rest);
        }
        if let Some((vendor, deps)) = &self.vendor {
            if let Some(rest) = recorded.strip_prefix(vendor.as_str()) {
                // The longest dependency path the file is under.
                if let Some((p, shown)) = deps
                    .iter()
                    .filter(|(p, _)| rest.starts_with(p.as_str()))
                    .max_by_key(|(p, _)| p.len())
                {
                    return Cow::Owned(format!("{shown}{}", &rest[p.len()..]));
                }
            }
        }
        for (needle, shown) in &self.modules {
            if let Some(at) = recorded.find(needle.as_str()) {
                return Cow::Owned(format!("{shown}{}", &recorded[at + needle.len()..]));
            }
        }
        for (dir, shown, deep) in &self.dirs {
            if let Some(rest) = recorded.strip_prefix(dir.as_str()) {
                if *deep || !rest.contains('/') {
                    return Cow::Owned(format!("{shown}{rest}"));
                }
            }
        }
        Cow::Borrowed(recorded)
    }

    /// Rewrite every file path of `a` for showing: sites, functions, loop
    /// lines and profile shares (not the verification's lines, which keep
    /// the compiler's spelling).
    pub fn apply(&self, a: &mut Analysis) {
        let mut memo: HashMap<String, String> = HashMap::new();
        let mut fix = |p: &mut String| {
            if let Some(s) = memo.get(p.as_str()) {
                p.clone_from(s);
                return;
            }
            let shown = self.show(p).into_owned();
            memo.insert(std::mem::replace(p, shown.clone()), shown);
        };
        for s in &mut a.scan.sites {
            fix(&mut s.file);
        }
        for f in &mut a.scan.functions {
            fix(&mut f.file);
        }
        if let Some(x) = &mut a.explain {
            for s in &mut x.sites {
                if let Some(l) = &mut s.loop_lines {
                    fix(&mut l.file);
                }
            }
        }
        if let Some(p) = &mut a.profile {
            for f in &mut p.functions {
                fix(&mut f.file);
                for s in &mut f.sites {
                    fix(&mut s.file);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, module: Option<&str>) -> BuildInfo {
        BuildInfo {
            path: Some(path.into()),
            main_module: module.map(|m| (m.into(), "(devel)".into())),
            deps: vec![
                ("github.com/BurntSushi/toml".into(), "v1.3.2".into()),
                ("golang.org/x/sync".into(), "v0.7.0".into()),
                ("example.com/x/yaml.v3".into(), "v0.0.0".into()),
                ("example.com/old".into(), "v1.0.0".into()),
            ],
            replacements: vec![
                (2, "./yaml.v3".into(), "(devel)".into()),
                (3, "example.com/New".into(), "v1.1.0".into()),
            ],
            ..Default::default()
        }
    }

    // The expected spellings are -trimpath's rule (module comment).
    #[test]
    fn module_build() {
        let m = PathMap::from_facts(
            Some("/opt/go/src/runtime/proc.go"),
            Some("/home/u/x/cmd/tool/main.go"),
            Some(&info("example.com/x/cmd/tool", Some("example.com/x"))),
        );
        assert_eq!(m.show("/opt/go/src/runtime/proc.go"), "runtime/proc.go");
        assert_eq!(
            m.show("/opt/go/src/net/http/server.go"),
            "net/http/server.go"
        );
        assert_eq!(
            m.show("/home/u/x/cmd/tool/main.go"),
            "example.com/x/cmd/tool/main.go"
        );
        assert_eq!(
            m.show("/home/u/x/internal/a/a.go"),
            "example.com/x/internal/a/a.go"
        );
        assert_eq!(
            m.show("/home/u/go/pkg/mod/github.com/!burnt!sushi/toml@v1.3.2/decode.go"),
            "github.com/BurntSushi/toml@v1.3.2/decode.go"
        );
        assert_eq!(
            m.show("/home/u/x/vendor/golang.org/x/sync/errgroup/errgroup.go"),
            "golang.org/x/sync@v0.7.0/errgroup/errgroup.go"
        );
        assert_eq!(
            m.show("/home/u/x/yaml.v3/yaml.go"),
            "example.com/x/yaml.v3@v0.0.0/yaml.go"
        );
        assert_eq!(
            m.show("/m/example.com/!new@v1.1.0/a/b.go"),
            "example.com/old@v1.0.0/a/b.go"
        );
        // Not covered, or already trimmed: as recorded.
        assert_eq!(
            m.show("/tmp/go-build1/b001/_cgo_gotypes.go"),
            "/tmp/go-build1/b001/_cgo_gotypes.go"
        );
        assert_eq!(m.show("runtime/proc.go"), "runtime/proc.go");
        assert_eq!(m.show("<autogenerated>"), "<autogenerated>");
    }

    #[test]
    fn cleaned() {
        assert_eq!(clean("/a/b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/a/../../b"), "/b");
    }

    #[test]
    fn gopath_build() {
        let m = PathMap::from_facts(
            Some("/usr/lib/go-1.19/src/runtime/proc.go"),
            Some("/b/gopath/src/github.com/acme/tool/cmd/tool/main.go"),
            Some(&BuildInfo {
                path: Some("github.com/acme/tool/cmd/tool".into()),
                ..Default::default()
            }),
        );
        assert_eq!(
            m.show("/b/gopath/src/github.com/acme/tool/internal/x/x.go"),
            "github.com/acme/tool/internal/x/x.go"
        );
        assert_eq!(
            m.show("/b/gopath/src/golang.org/x/sys/unix/a.go"),
            "golang.org/x/sys/unix/a.go"
        );
        assert_eq!(m.show("/usr/lib/go-1.19/src/os/file.go"), "os/file.go");
    }

    #[test]
    fn command_line_arguments() {
        // `go build main.go`: the main package's directory only.
        let m = PathMap::from_facts(
            None,
            Some("/w/main.go"),
            Some(&BuildInfo {
                path: Some("command-line-arguments".into()),
                main_module: Some(("example.com/w".into(), "(devel)".into())),
                ..Default::default()
            }),
        );
        assert_eq!(m.show("/w/main.go"), "command-line-arguments/main.go");
        assert_eq!(m.show("/w/lib/a.go"), "/w/lib/a.go");
        assert_eq!(
            m.show("/opt/go/src/runtime/proc.go"),
            "/opt/go/src/runtime/proc.go"
        );
    }
}
