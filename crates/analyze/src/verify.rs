//! `deferscope check --verify`: the Go compiler's `-gcflags=all=-d=defer`
//! output, parsed and compared with a scan of the binary it built.
//!
//! The compiler prints one `file:line:col: <kind> defer` line per `defer`
//! statement per package compile. Its quirks, and how they are handled
//! (the same rules as the integration tests' oracle):
//! - **duplicates**: the same position can be printed under two packages
//!   (generic instantiations), and one line stands for several compiled
//!   functions (generic shapes, closures cloned by inlining): comparison is
//!   per (file, line, kind), with the set of columns counting how many sites
//!   one function may hold at that line;
//! - **dead code and linker-dropped functions**: the compiler prints
//!   defers SSA deleted and functions the linker never kept. A compiler
//!   line we did not find is excused only when the binary has no code at
//!   that file:line ([`CodeLines`], from the binary's own line table); for
//!   a stack- or heap-allocated line, the code it must have is a
//!   `CALL runtime.deferproc*` at that line (a dead defer can leave its
//!   line on an unrelated exit instruction);
//! - **paths**: `./x.go` and `../x.go` are relative to the build directory,
//!   `GOROOT/...` to the Go root, and with `-trimpath` the main module's
//!   files are spelled `module/path/x.go` like the pclntab; a file matches
//!   when equal or a path suffix of the other at a `/`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use deferscope_index::runtime::{Runtime, RuntimeFn};
use deferscope_index::GoIndex;
use deferscope_load::Image;
use deferscope_model::verify::{Disagreement, Verification};
use deferscope_model::{Kind, Scan};

/// A `file:line` position.
pub type Pos = (String, u32);

/// The compiler's lines: position -> kind -> distinct columns.
#[derive(Default, Debug, Clone)]
pub struct CompilerLines {
    pub lines: BTreeMap<Pos, BTreeMap<Kind, BTreeSet<u32>>>,
}

/// How to turn the compiler's spellings of files into the pclntab's.
#[derive(Debug, Clone, Default)]
pub struct PathContext {
    /// Directory the go command ran in.
    pub build_dir: PathBuf,
    /// The Go root (`go env GOROOT`).
    pub goroot: PathBuf,
    /// With `-trimpath`: the main module's root directory and module path.
    pub trim: Option<(PathBuf, String)>,
}

fn normalise(path: &Path) -> String {
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

impl PathContext {
    /// The file as the pclntab spells it (absolute, or module-relative with
    /// `-trimpath`).
    pub fn resolve(&self, p: &str) -> String {
        let abs = if let Some(rest) = p.strip_prefix("GOROOT/") {
            normalise(&self.goroot.join(rest))
        } else if Path::new(p).is_absolute() {
            normalise(Path::new(p))
        } else if p.starts_with("./") || p.starts_with("../") {
            normalise(&self.build_dir.join(p))
        } else {
            // -trimpath prints module-relative paths, as the pclntab does.
            return p.to_owned();
        };
        if let Some((root, module)) = &self.trim {
            if let Ok(rel) = Path::new(&abs).strip_prefix(root) {
                return format!("{module}/{}", rel.to_string_lossy());
            }
        }
        abs
    }
}

/// Parse one `-d=defer` line: `(file, line, column, kind)`.
pub fn parse_line(l: &str) -> Option<(&str, u32, u32, Kind)> {
    let (pos, what) = l.trim_end().rsplit_once(": ")?;
    let kind = Kind::parse(what.strip_suffix(" defer")?)?;
    let mut it = pos.rsplitn(3, ':');
    let col = it.next()?.parse().ok()?;
    let line = it.next()?.parse().ok()?;
    let file = it.next().filter(|f| !f.is_empty())?;
    Some((file, line, col, kind))
}

impl CompilerLines {
    /// Parse the go command's output (its stderr). Other lines (`# pkg`
    /// headers, warnings) are ignored.
    pub fn parse(text: &str, ctx: &PathContext) -> CompilerLines {
        let mut c = CompilerLines::default();
        for l in text.lines() {
            if let Some((file, line, col, kind)) = parse_line(l) {
                c.lines
                    .entry((ctx.resolve(file), line))
                    .or_default()
                    .entry(kind)
                    .or_default()
                    .insert(col);
            }
        }
        c
    }

    /// Number of (position, kind) pairs.
    pub fn len(&self) -> usize {
        self.lines.values().map(|k| k.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Whether two spellings of a file name the same file: equal, or one is a
/// path suffix of the other at a `/`.
pub fn same_file(a: &str, b: &str) -> bool {
    let suffix = |long: &str, short: &str| {
        long.len() > short.len()
            && long.ends_with(short)
            && long.as_bytes()[long.len() - short.len() - 1] == b'/'
    };
    a == b || suffix(a, b) || suffix(b, a)
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Source lines that have code in a binary, from its own pclntab: for
/// open-coded defers, any instruction at the line in a function whose
/// first instruction is in the same file (a defer's line is always in its
/// own function: functions that defer are not inlined); for stack and heap
/// defers, a `CALL runtime.deferproc*` at the line.
#[derive(Default, Debug)]
pub struct CodeLines {
    /// (file, line) with code.
    pub code: HashSet<Pos>,
    /// (file, line) with a call to a deferproc entry point.
    pub deferproc_calls: HashSet<Pos>,
}

impl CodeLines {
    /// Collect the lines among `wanted` (base name, line): only those are
    /// kept.
    pub fn collect(
        img: &Image<'_>,
        ix: &GoIndex<'_>,
        wanted: &HashSet<(String, u32)>,
    ) -> CodeLines {
        let mut out = CodeLines::default();
        let wants = |file: &str, line: u32| wanted.contains(&(base(file).to_owned(), line));
        for f in ix.funcs() {
            let lines = ix.lines(&f);
            let Some((header, _)) = lines.at(f.entry) else {
                continue;
            };
            for &(start, _, line) in lines.line_runs() {
                let Ok(line) = u32::try_from(line) else {
                    continue;
                };
                if !wants(header, line) {
                    continue;
                }
                if let Some((file, _)) = lines.at(start) {
                    if base(file) == base(header) {
                        out.code.insert((header.to_owned(), line));
                    }
                }
            }
        }
        let rt = Runtime::find(ix);
        let targets: Vec<u64> = RuntimeFn::REGISTER
            .iter()
            .filter_map(|&f| rt.entry(f))
            .collect();
        if targets.is_empty() {
            return out;
        }
        let Some((start, end)) = ix.text_range() else {
            return out;
        };
        let Some(text) = img.read(start, end.saturating_sub(start)) else {
            return out;
        };
        let mut cands = deferscope_decode::call_candidates(img.arch, text, start, &targets);
        cands.sort_unstable();
        // Confirm each candidate by decoding its function.
        let mut done = HashSet::new();
        for &pc in &cands {
            let Some(f) = ix.func_for_pc(pc) else {
                continue;
            };
            if !done.insert(f.entry) {
                continue;
            }
            let Some(code) = img.read(f.entry, f.end.saturating_sub(f.entry)) else {
                continue;
            };
            let lines = ix.lines(&f);
            let Some((header, _)) = lines.at(f.entry) else {
                continue;
            };
            deferscope_decode::scan(img.arch, code, f.entry, |e| {
                if let deferscope_decode::Event::Call { pc, target } = e {
                    if targets.contains(&target) {
                        if let Some((_, line)) = lines.at(pc) {
                            out.deferproc_calls.insert((header.to_owned(), line));
                        }
                    }
                }
            });
        }
        out
    }

    /// Whether a defer of `kind` at `file:line` would have left code here.
    pub fn has(&self, file: &str, line: u32, kind: Kind) -> bool {
        let set = if kind == Kind::OpenCoded {
            &self.code
        } else {
            &self.deferproc_calls
        };
        set.iter()
            .any(|(f, l)| *l == line && base(f) == base(file) && same_file(f, file))
    }
}

/// Compare a scan with the compiler's lines. `has_code(file, line, kind)`
/// is asked only about compiler lines the scan did not report.
pub fn compare(
    comp: &CompilerLines,
    report: &Scan,
    mut has_code: impl FnMut(&str, u32, Kind) -> bool,
) -> Verification {
    let mut out = Verification {
        compiler_lines: comp.len(),
        ..Default::default()
    };
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
    let mut seen: HashMap<&Pos, BTreeSet<Kind>> = HashMap::new();
    let mut per_func: BTreeMap<(&str, u64, &Pos, Kind), usize> = BTreeMap::new();
    // Function entries tell apart go1.18-1.19 generic shapes, which share
    // one name.
    let entry_of: HashMap<&str, Vec<(u64, u64)>> =
        report.functions.iter().fold(HashMap::new(), |mut m, f| {
            m.entry(f.name.as_str())
                .or_default()
                .push((f.entry, f.entry + f.size));
            m
        });
    for s in &report.sites {
        let entry = entry_of
            .get(s.function.as_str())
            .and_then(|v| v.iter().find(|(a, b)| (*a..*b).contains(&s.pc)))
            .map_or(0, |(a, _)| *a);
        match find(&s.file, s.line) {
            None => out.disagreements.push(Disagreement::Extra {
                file: s.file.clone(),
                line: s.line,
                kind: s.kind,
                function: s.function.clone(),
            }),
            Some(pos) => {
                let kinds = &comp.lines[pos];
                if !kinds.contains_key(&s.kind) {
                    out.disagreements.push(Disagreement::WrongKind {
                        file: s.file.clone(),
                        line: s.line,
                        ours: s.kind,
                        compiler: kinds.keys().copied().collect(),
                        function: s.function.clone(),
                    });
                }
                seen.entry(pos).or_default().insert(s.kind);
                *per_func
                    .entry((&s.function, entry, pos, s.kind))
                    .or_default() += 1;
            }
        }
    }
    for ((func, _, pos, kind), n) in per_func {
        let cols = comp.lines[pos].get(&kind).map_or(0, |c| c.len());
        if cols > 0 && n > cols {
            out.disagreements.push(Disagreement::Count {
                file: pos.0.clone(),
                line: pos.1,
                kind,
                function: func.to_owned(),
                ours: n,
                compiler: cols,
            });
        }
    }
    for (pos, kinds) in &comp.lines {
        for &kind in kinds.keys() {
            if seen.get(pos).is_some_and(|k| k.contains(&kind)) {
                out.matched += 1;
            } else if has_code(&pos.0, pos.1, kind) {
                out.disagreements.push(Disagreement::Missed {
                    file: pos.0.clone(),
                    line: pos.1,
                    kind,
                });
            } else {
                out.excused += 1;
            }
        }
    }
    out
}

/// [`compare`] with the binary's own line table deciding which compiler
/// lines have code.
pub fn verify(
    comp: &CompilerLines,
    report: &Scan,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
) -> Verification {
    let mut code: Option<CodeLines> = None;
    compare(comp, report, |file, line, kind| {
        code.get_or_insert_with(|| {
            let wanted = comp
                .lines
                .keys()
                .map(|(f, l)| (base(f).to_owned(), *l))
                .collect();
            CodeLines::collect(img, ix, &wanted)
        })
        .has(file, line, kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use deferscope_model::{BinaryInfo, FuncInfo, Origin, Site};

    // Hand-written samples of `go build -gcflags=all=-d=defer` output, in
    // the compiler's format (header lines, relative and GOROOT paths, a
    // generic position printed under two packages).
    const SAMPLE: &str = "\
# example.com/m/lib
./lib/lib.go:9:2: open-coded defer
# example.com/m
./main.go:10:2: open-coded defer
./main.go:20:3: stack-allocated defer
./main.go:30:4: heap-allocated defer
./main.go:40:2: open-coded defer
./sub/../main.go:50:2: open-coded defer
./main.go:50:14: open-coded defer
GOROOT/src/sync/once.go:5:2: open-coded defer
# example.com/m/other
/home/u/m/lib/lib.go:9:2: open-coded defer
";

    fn ctx() -> PathContext {
        PathContext {
            build_dir: "/home/u/m".into(),
            goroot: "/opt/go".into(),
            trim: None,
        }
    }

    fn site(function: &str, file: &str, line: u32, kind: Kind, pc: u64) -> Site {
        Site {
            function: function.into(),
            file: file.into(),
            line,
            kind,
            pc,
            package: "main".into(),
            origin: Origin::Main,
            index: None,
        }
    }

    fn report(sites: Vec<Site>) -> Scan {
        Scan {
            binary: BinaryInfo {
                path: "bin".into(),
                functions: 0,
                ..Default::default()
            },
            functions: sites
                .iter()
                .map(|s| FuncInfo {
                    name: s.function.clone(),
                    entry: s.pc,
                    size: 1,
                    file: s.file.clone(),
                    line: s.line,
                    package: "main".into(),
                    origin: Origin::Main,
                    sites: 1,
                    open_coded_defers: None,
                    calls_deferrangefunc: false,
                    deferreturn: 0,
                })
                .collect(),
            sites,
        }
    }

    fn good() -> Vec<Site> {
        vec![
            site("main.a", "/home/u/m/main.go", 10, Kind::OpenCoded, 1),
            site("main.b", "/home/u/m/main.go", 20, Kind::StackAllocated, 2),
            site("main.c", "/home/u/m/main.go", 30, Kind::HeapAllocated, 3),
            site("main.e", "/home/u/m/main.go", 50, Kind::OpenCoded, 4),
            site("main.e.func1", "/home/u/m/main.go", 50, Kind::OpenCoded, 5),
            site(
                "sync.(*Once).x",
                "/opt/go/src/sync/once.go",
                5,
                Kind::OpenCoded,
                6,
            ),
            site(
                "lib.F[go.shape.int]",
                "/home/u/m/lib/lib.go",
                9,
                Kind::OpenCoded,
                7,
            ),
            site(
                "lib.F[go.shape.string]",
                "/home/u/m/lib/lib.go",
                9,
                Kind::OpenCoded,
                8,
            ),
        ]
    }

    // Line 40 has no code in the binary (a dead defer).
    fn has_code(_: &str, line: u32, _: Kind) -> bool {
        line != 40
    }

    #[test]
    fn parse_lines() {
        assert_eq!(
            parse_line("./a.go:12:3: heap-allocated defer"),
            Some(("./a.go", 12, 3, Kind::HeapAllocated))
        );
        assert_eq!(
            parse_line("C:/x/a.go:1:2: open-coded defer\r"),
            Some(("C:/x/a.go", 1, 2, Kind::OpenCoded))
        );
        assert_eq!(parse_line("# example.com/m"), None);
        assert_eq!(parse_line("./a.go:12:3: declared and not used: x"), None);
        assert_eq!(parse_line("./a.go:12:3: open-coded defer foo"), None);
        let c = CompilerLines::parse(SAMPLE, &ctx());
        // lib.go:9 printed twice (two packages, relative and absolute) and
        // main.go:50 at two columns, once through ../.
        assert!(c.lines.contains_key(&("/home/u/m/main.go".to_owned(), 50)));
        assert_eq!(
            c.lines[&("/home/u/m/main.go".to_owned(), 50)][&Kind::OpenCoded].len(),
            2
        );
        assert!(c
            .lines
            .contains_key(&("/opt/go/src/sync/once.go".to_owned(), 5)));
        assert!(c
            .lines
            .contains_key(&("/home/u/m/lib/lib.go".to_owned(), 9)));
    }

    #[test]
    fn agreement_with_duplicates_and_dead_code() {
        let c = CompilerLines::parse(SAMPLE, &ctx());
        let v = compare(&c, &report(good()), has_code);
        assert!(v.disagreements.is_empty(), "{:?}", v.disagreements);
        assert_eq!(v.excused, 1);
        assert_eq!(v.matched, c.len() - 1);
    }

    #[test]
    fn each_disagreement_is_found() {
        let c = CompilerLines::parse(SAMPLE, &ctx());
        let mut s = good();
        s.remove(1);
        let v = compare(&c, &report(s), has_code);
        assert_eq!(
            v.disagreements,
            vec![Disagreement::Missed {
                file: "/home/u/m/main.go".into(),
                line: 20,
                kind: Kind::StackAllocated
            }]
        );

        let mut s = good();
        s[2].kind = Kind::StackAllocated;
        let v = compare(&c, &report(s), has_code);
        assert!(matches!(
            v.disagreements[0],
            Disagreement::WrongKind { line: 30, .. }
        ));

        let mut s = good();
        s.push(site("main.z", "/home/u/m/main.go", 60, Kind::OpenCoded, 9));
        let v = compare(&c, &report(s), has_code);
        assert!(matches!(
            v.disagreements[..],
            [Disagreement::Extra { line: 60, .. }]
        ));

        let mut s = good();
        s.push(site("main.a", "/home/u/m/main.go", 10, Kind::OpenCoded, 1));
        let v = compare(&c, &report(s), has_code);
        assert!(matches!(
            v.disagreements[..],
            [Disagreement::Count {
                line: 10,
                ours: 2,
                compiler: 1,
                ..
            }]
        ));
    }

    #[test]
    fn trimpath_spelling() {
        let ctx = PathContext {
            trim: Some(("/home/u/m".into(), "example.com/m".into())),
            ..ctx()
        };
        let c = CompilerLines::parse("./lib/l.go:3:2: open-coded defer\n", &ctx);
        let r = report(vec![site(
            "example.com/m/lib.F",
            "example.com/m/lib/l.go",
            3,
            Kind::OpenCoded,
            1,
        )]);
        let v = compare(&c, &r, |_, _, _| true);
        assert!(v.disagreements.is_empty() && v.matched == 1);
    }
}
