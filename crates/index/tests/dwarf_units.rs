//! `Dwarf::want` (units indexed on demand, design.md §6.4 "Loading")
//! gives the answers a full index gives: on the matrix's cmd/go of each Go
//! release (scripts/build-matrix.py; `DEFERSCOPE_MATRIX` or
//! ~/.cache/deferscope/matrix, a missing binary skipped with a note), every
//! closure's captures and every function's results, asked of a `Dwarf`
//! that was told only the closures (with their Go line-table entry lines),
//! equal those of a `Dwarf` that indexed every unit and read `.debug_line`.

use std::path::PathBuf;

use deferscope_index::{Dwarf, GoIndex, Wanted};
use deferscope_load::Mapped;

const VERSIONS: [&str; 4] = ["1.19", "1.22.10", "1.23.9", "1.27.3"];

fn matrix() -> PathBuf {
    std::env::var_os("DEFERSCOPE_MATRIX").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/deferscope/matrix")
        },
        PathBuf::from,
    )
}

/// A closure's name: `...func1`, `...func1.2`, `...deferwrap1`.
fn is_closure(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or("");
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(last)
        || ["func", "deferwrap", "gowrap"]
            .iter()
            .any(|k| last.strip_prefix(k).is_some_and(digits))
}

#[test]
fn wanted_units_answer_as_the_full_index() {
    let mut ran = 0;
    for v in VERSIONS {
        for arch in ["linux-amd64", "linux-arm64"] {
            let bin = matrix().join(format!("go{v}/{arch}/default/cmdgo/bin"));
            if !bin.exists() {
                eprintln!("note: {} missing, skipped", bin.display());
                continue;
            }
            let m = Mapped::open(&bin).unwrap();
            let img = m.image().unwrap();
            let ix = GoIndex::new(&img).unwrap();
            let full = Dwarf::load(&img).expect("unstripped binary has DWARF");
            assert!(
                full.functions() > 1000,
                "go{v} {arch}: {}",
                full.functions()
            );
            let wanted = Dwarf::load(&img).unwrap();
            assert!(wanted.prepare());
            let closures: Vec<Wanted<'_>> = ix
                .funcs()
                .filter(|f| is_closure(ix.name(f)))
                .map(|f| Wanted {
                    entry: f.entry,
                    name: ix.name(&f),
                    line: ix.lines(&f).at(f.entry).map(|(_, l)| u64::from(l)),
                    near: [None, None],
                })
                .collect();
            // Told in batches, as explain's DWARF thread is.
            for batch in closures.chunks(64) {
                wanted.want(batch);
            }
            let (mut named, mut results) = (0, 0);
            for w in &closures {
                let a = wanted.closure_captures(w.entry);
                assert_eq!(
                    a,
                    full.closure_captures(w.entry),
                    "go{v} {arch}: {}",
                    w.name
                );
                named += usize::from(a.is_some_and(|c| !c.is_empty()));
            }
            // Functions never wanted: answered after indexing the rest.
            for f in ix.funcs().step_by(97) {
                let a = wanted.results(f.entry);
                assert_eq!(a, full.results(f.entry), "go{v} {arch}: {}", ix.name(&f));
                results += usize::from(a.is_some());
            }
            eprintln!(
                "go{v} {arch}: {} closures, {named} with captures; {results} results",
                closures.len()
            );
            assert!(named > 50, "go{v} {arch}: {named} closures with captures");
            ran += 1;
        }
    }
    if ran == 0 {
        eprintln!("note: no matrix cmd/go found, nothing checked");
    }
}
