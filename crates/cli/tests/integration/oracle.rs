//! The compiler oracle: `go build -gcflags=all=-d=defer` output, parsed and
//! compared with deferscope's sites.
//!
//! The rules follow the defer spec §4:
//! - one compiler line per `defer` statement per package compile; the same
//!   position can be printed under two packages (generic instantiations), and
//!   one line can stand for several compiled functions (generic shapes,
//!   closures cloned by inlining), so we compare per (file, line, kind);
//! - a line is expected in the binary only when that line has code there
//!   (dead defers and linker-dropped functions print lines but leave no
//!   code); `go tool objdump` of the unstripped binary says which lines do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

/// A `file:line` key, with the file normalised to an absolute-looking path.
pub type Pos = (String, u32);

/// Compiler lines: (file, line) -> kind -> number of distinct columns.
#[derive(Default, Debug)]
pub struct Compiler {
    pub lines: BTreeMap<Pos, BTreeMap<String, BTreeSet<u32>>>,
}

/// With `-trimpath`, the pclntab spells a main-module file as the module
/// path plus its path in the module: (module root directory, module path).
pub type Trim<'a> = Option<(&'a Path, &'a str)>;

/// Resolve `p` (as the go command printed it) against the build directory,
/// then, for a `-trimpath` build, rewrite main-module files as the pclntab
/// spells them.
pub fn resolve(p: &str, build_dir: &Path, goroot: &Path, trim: Trim<'_>) -> String {
    let abs = resolve_abs(p, build_dir, goroot);
    if let Some((root, module)) = trim {
        if let Ok(rel) = Path::new(&abs).strip_prefix(root) {
            return format!("{module}/{}", rel.to_string_lossy());
        }
    }
    abs
}

fn resolve_abs(p: &str, build_dir: &Path, goroot: &Path) -> String {
    let path = if let Some(rest) = p.strip_prefix("GOROOT/") {
        goroot.join(rest)
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else if p.starts_with("./") || p.starts_with("../") {
        build_dir.join(p)
    } else {
        // -trimpath prints module-relative paths like the pclntab does.
        return p.to_owned();
    };
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.to_string_lossy().into_owned()
}

impl Compiler {
    pub fn parse(text: &str, build_dir: &Path, goroot: &Path, trim: Trim<'_>) -> Compiler {
        let re = regex::Regex::new(
            r"^(.+):(\d+):(\d+): (open-coded|stack-allocated|heap-allocated) defer$",
        )
        .unwrap();
        let mut c = Compiler::default();
        for l in text.lines() {
            let Some(m) = re.captures(l.trim_end()) else {
                continue;
            };
            let file = resolve(&m[1], build_dir, goroot, trim);
            let line: u32 = m[2].parse().unwrap();
            let col: u32 = m[3].parse().unwrap();
            c.lines
                .entry((file, line))
                .or_default()
                .entry(m[4].to_owned())
                .or_default()
                .insert(col);
        }
        c
    }
}

/// Whether two spellings of a file name the same file: equal, or one is a
/// path suffix of the other (the pclntab of a `-trimpath` build spells
/// `example.com/m/main.go` where the compiler printed an absolute path).
pub fn same_file(a: &str, b: &str) -> bool {
    a == b
        || (a.len() > b.len() && a.ends_with(b) && a.as_bytes()[a.len() - b.len() - 1] == b'/')
        || (b.len() > a.len() && b.ends_with(a) && b.as_bytes()[b.len() - a.len() - 1] == b'/')
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// A site as the tests see it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OurSite {
    /// Function name and entry: go1.18-1.19 name every generic shape
    /// `F[...]`, so the name alone does not identify a function.
    pub function: String,
    pub entry: u64,
    pub file: String,
    pub line: u32,
    pub kind: String,
}

/// The outcome of comparing one binary with the compiler.
#[derive(Default, Debug)]
pub struct Comparison {
    pub matched: usize,
    pub excused: usize,
    pub missed: Vec<String>,
    pub wrong_kind: Vec<String>,
    pub extra: Vec<String>,
    pub multiplicity: Vec<String>,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.missed.is_empty()
            && self.wrong_kind.is_empty()
            && self.extra.is_empty()
            && self.multiplicity.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "matched {} compiler lines, {} without code in the binary; {} missed, {} wrong kind, {} extra, {} count mismatches\n",
            self.matched,
            self.excused,
            self.missed.len(),
            self.wrong_kind.len(),
            self.extra.len(),
            self.multiplicity.len()
        );
        for (what, v) in [
            ("missed", &self.missed),
            ("wrong kind", &self.wrong_kind),
            ("extra", &self.extra),
            ("count", &self.multiplicity),
        ] {
            for x in v.iter().take(40) {
                s.push_str(&format!("  {what}: {x}\n"));
            }
        }
        s
    }
}

/// Compare `ours` with the compiler. `has_code(file, line, kind)` says
/// whether the binary has the code such a defer leaves at that line (from
/// `go tool objdump`); it is asked only about compiler lines we did not
/// report.
pub fn compare(
    comp: &Compiler,
    ours: &[OurSite],
    mut has_code: impl FnMut(&str, u32, &str) -> bool,
) -> Comparison {
    let mut out = Comparison::default();
    // Index compiler positions by (basename, line) for suffix matching.
    let mut by_base: HashMap<(&str, u32), Vec<&Pos>> = HashMap::new();
    for pos in comp.lines.keys() {
        by_base.entry((base(&pos.0), pos.1)).or_default().push(pos);
    }
    let find = |file: &str, line: u32| -> Option<&Pos> {
        by_base
            .get(&(base(file), line))?
            .iter()
            .copied()
            .find(|p| same_file(&p.0, file))
    };
    // Our sites grouped by compiler position.
    let mut seen: HashMap<&Pos, BTreeSet<&str>> = HashMap::new();
    let mut per_func: BTreeMap<(&str, u64, &Pos, &str), usize> = BTreeMap::new();
    for s in ours {
        match find(&s.file, s.line) {
            None => out.extra.push(format!(
                "{}:{}: {} defer in {}",
                s.file, s.line, s.kind, s.function
            )),
            Some(pos) => {
                let kinds = &comp.lines[pos];
                if !kinds.contains_key(&s.kind) {
                    out.wrong_kind.push(format!(
                        "{}:{}: we say {} in {}, the compiler says {:?}",
                        s.file,
                        s.line,
                        s.kind,
                        s.function,
                        kinds.keys().collect::<Vec<_>>()
                    ));
                }
                seen.entry(pos).or_default().insert(&s.kind);
                *per_func
                    .entry((&s.function, s.entry, pos, &s.kind))
                    .or_default() += 1;
            }
        }
    }
    // Each function holds at most as many sites at a line as the compiler
    // printed distinct columns there.
    for ((func, _, pos, kind), n) in per_func {
        let cols = comp.lines[pos].get(kind).map_or(0, |c| c.len());
        if cols > 0 && n > cols {
            out.multiplicity.push(format!(
                "{}:{}: {n} {kind} sites in {func}, compiler printed {cols}",
                pos.0, pos.1
            ));
        }
    }
    for (pos, kinds) in &comp.lines {
        for kind in kinds.keys() {
            if seen.get(pos).is_some_and(|k| k.contains(kind.as_str())) {
                out.matched += 1;
            } else if has_code(&pos.0, pos.1, kind) {
                out.missed
                    .push(format!("{}:{}: {} defer", pos.0, pos.1, kind));
            } else {
                out.excused += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {}
