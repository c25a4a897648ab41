//! The compiler oracle: `go build -gcflags=all=-d=defer` output, parsed and
//! compared with deferscope's sites.
//!
//! The rules follow docs/design.md §1.6:
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

/// Self-tests of the comparison: it must flag each kind of disagreement.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    use libtest_mimic::Trial;
    let text = "# example.com/m\n\
                ./a.go:10:2: open-coded defer\n\
                ./a.go:20:2: stack-allocated defer\n\
                ./a.go:30:3: heap-allocated defer\n\
                ./a.go:40:2: open-coded defer\n\
                /goroot/src/sync/x.go:5:2: open-coded defer\n";
    let comp = || Compiler::parse(text, Path::new("/src/m"), Path::new("/goroot"), None);
    let site = |f: &str, file: &str, line: u32, kind: &str| OurSite {
        function: f.into(),
        entry: 0,
        file: file.into(),
        line,
        kind: kind.into(),
    };
    let good = move || {
        vec![
            site("main.a", "/src/m/a.go", 10, "open-coded"),
            site("main.b", "/src/m/a.go", 20, "stack-allocated"),
            site("main.c", "/src/m/a.go", 30, "heap-allocated"),
            site("sync.x", "/goroot/src/sync/x.go", 5, "open-coded"),
        ]
    };
    // Line 40 has no code in the binary: excused. Everything else has.
    let has_code = |_: &str, line: u32, _: &str| line != 40;
    vec![
        Trial::test("oracle::selftest::agreement", move || {
            let c = compare(&comp(), &good(), has_code);
            if c.ok() && c.matched == 4 && c.excused == 1 {
                Ok(())
            } else {
                Err(c.describe().into())
            }
        }),
        Trial::test("oracle::selftest::missed", move || {
            let mut ours = good();
            ours.remove(1);
            let c = compare(&comp(), &ours, has_code);
            (c.missed.len() == 1 && c.missed[0].contains("a.go:20"))
                .then_some(())
                .ok_or_else(|| c.describe().into())
        }),
        Trial::test("oracle::selftest::wrong_kind", move || {
            let mut ours = good();
            ours[2].kind = "stack-allocated".into();
            let c = compare(&comp(), &ours, has_code);
            (c.wrong_kind.len() == 1 && !c.ok())
                .then_some(())
                .ok_or_else(|| c.describe().into())
        }),
        Trial::test("oracle::selftest::extra", move || {
            let mut ours = good();
            ours.push(site("main.d", "/src/m/a.go", 50, "open-coded"));
            let c = compare(&comp(), &ours, has_code);
            (c.extra.len() == 1)
                .then_some(())
                .ok_or_else(|| c.describe().into())
        }),
        Trial::test("oracle::selftest::count", move || {
            let mut ours = good();
            ours.push(site("main.a", "/src/m/a.go", 10, "open-coded"));
            let c = compare(&comp(), &ours, has_code);
            (c.multiplicity.len() == 1)
                .then_some(())
                .ok_or_else(|| c.describe().into())
        }),
        Trial::test("oracle::selftest::trimpath_paths", || {
            let t = "./lib/l.go:3:2: open-coded defer\n";
            let c = Compiler::parse(
                t,
                Path::new("/src/m"),
                Path::new("/g"),
                Some((Path::new("/src/m"), "example.com/m")),
            );
            let ours = vec![OurSite {
                function: "example.com/m/lib.F".into(),
                entry: 0,
                file: "example.com/m/lib/l.go".into(),
                line: 3,
                kind: "open-coded".into(),
            }];
            let r = compare(&c, &ours, |_, _, _| true);
            r.ok().then_some(()).ok_or_else(|| r.describe().into())
        }),
    ]
}
