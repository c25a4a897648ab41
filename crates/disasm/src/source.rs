//! Source lines for `--source` (objdump `-S`).
//!
//! A pclntab path is tried, in order: after `--source-root OLD=NEW`
//! remaps; as is (with `$GOROOT` expanded); for a standard-library file
//! (`.../src/<pkg>/<file>`, `$GOROOT/src/...`, or a `-trimpath` path like
//! `runtime/proc.go`), under each candidate GOROOT (`$GOROOT`, then
//! `~/.cache/deferscope/toolchains/go<version>/go`); for a `-trimpath`
//! module path (`example.com/m/pkg/f.go`), under each `NEW` root with and
//! without the main module's prefix. Files are cached whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `--source-root` remaps and roots.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// (old prefix, new prefix). An empty old prefix makes `new` a root
    /// for relative (`-trimpath`) paths.
    pub roots: Vec<(String, PathBuf)>,
}

/// Reads and caches source files.
pub struct SourceCache {
    opts: SourceOptions,
    goroots: Vec<PathBuf>,
    main_module: Option<String>,
    files: HashMap<String, Option<Vec<String>>>,
}

impl SourceCache {
    /// `version` is the binary's `go1.X.Y`; `main_module` its module path.
    pub fn new(
        opts: SourceOptions,
        version: Option<String>,
        main_module: Option<String>,
    ) -> SourceCache {
        let mut goroots = Vec::new();
        if let Some(g) = std::env::var_os("GOROOT") {
            goroots.push(PathBuf::from(g));
        }
        if let (Some(v), Some(home)) = (version, std::env::var_os("HOME")) {
            let base = Path::new(&home).join(".cache/deferscope/toolchains");
            // go1.22.10, and go1.19 for a toolchain installed by minor.
            let minor = v.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
            for name in [v.clone(), minor] {
                let p = base.join(&name).join("go");
                if p.is_dir() && !goroots.contains(&p) {
                    goroots.push(p);
                }
            }
        }
        SourceCache {
            opts,
            goroots,
            main_module,
            files: HashMap::new(),
        }
    }

    fn candidates(&self, file: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (old, new) in &self.opts.roots {
            if !old.is_empty() {
                if let Some(rest) = file.strip_prefix(old.as_str()) {
                    out.push(new.join(rest.trim_start_matches('/')));
                }
            }
        }
        if let Some(rest) = file.strip_prefix("$GOROOT/") {
            for g in &self.goroots {
                out.push(g.join(rest));
            }
        } else {
            out.push(PathBuf::from(file));
        }
        // The part after the last "/src/" of a GOROOT path.
        if let Some(i) = file.rfind("/src/") {
            for g in &self.goroots {
                out.push(g.join("src").join(&file[i + 5..]));
            }
        }
        if !file.starts_with('/') && !file.starts_with('$') {
            for (old, new) in &self.opts.roots {
                if old.is_empty() {
                    out.push(new.join(file));
                    if let Some(m) = &self.main_module {
                        if let Some(rest) = file.strip_prefix(m.as_str()) {
                            out.push(new.join(rest.trim_start_matches('/')));
                        }
                    }
                }
            }
            for g in &self.goroots {
                out.push(g.join("src").join(file));
            }
        }
        out
    }

    /// How many distinct Go source files were looked up and found, and
    /// how many were not found.
    pub fn files_found_missing(&self) -> (usize, usize) {
        let found = self.files.values().filter(|t| t.is_some()).count();
        (found, self.files.len() - found)
    }

    /// Line `line` (1-based) of `file`, without its newline; `None` when the
    /// file cannot be found or is not Go source.
    pub fn line(&mut self, file: &str, line: i64) -> Option<String> {
        if !file.ends_with(".go") || line < 1 {
            return None;
        }
        if !self.files.contains_key(file) {
            let text = self
                .candidates(file)
                .into_iter()
                .find_map(|p| std::fs::read_to_string(p).ok())
                .map(|t| t.split('\n').map(str::to_owned).collect());
            self.files.insert(file.to_owned(), text);
        }
        self.files
            .get(file)?
            .as_ref()?
            .get(line as usize - 1)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaps_and_roots() {
        let dir = std::env::temp_dir().join(format!("ds-src-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("pkg/a.go"), "package pkg\n\nfunc A() {}\n").unwrap();
        let mut c = SourceCache::new(
            SourceOptions {
                roots: vec![
                    ("/build/m".into(), dir.clone()),
                    (String::new(), dir.clone()),
                ],
            },
            None,
            Some("example.com/m".into()),
        );
        assert_eq!(
            c.line("/build/m/pkg/a.go", 3).as_deref(),
            Some("func A() {}")
        );
        assert_eq!(
            c.line("example.com/m/pkg/a.go", 1).as_deref(),
            Some("package pkg")
        );
        assert_eq!(c.line("pkg/a.go", 2).as_deref(), Some(""));
        assert_eq!(c.line("/elsewhere/a.go", 1), None);
        assert_eq!(c.line("/build/m/pkg/a.s", 1), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
