//! `deferscope diff`: what changed in the defers between two builds.
//!
//! Design: functions are matched by name; within a function, sites are
//! matched by **position**, not by absolute line, so code that merely moved
//! (lines added above, or between two defers) shows no change:
//! - when both builds have the same number of sites in the function, the
//!   i-th site in source order (line, then pc) of one is the i-th of the
//!   other;
//! - otherwise the two lists are aligned by a longest common subsequence
//!   on each site's line offset from the function's own first line, and
//!   the sites left over are added or removed.
//!
//! A matched pair whose kind differs is a **change** (`open-coded ->
//! heap-allocated`), with the new side's reasons when explain data is
//! available. Either side can be a scan ([`side_of`] a [`Scan`], with or
//! without an [`Explain`]) or a saved `deferscope scan --format json` /
//! `explain --format json` document ([`side_from_json`]). The printers are
//! `deferscope_report::diff`'s.

use std::collections::BTreeMap;

use deferscope_model::diff::{Change, ChangeKind, Diff, DiffSite, Side};
use deferscope_model::explain::Explain;
use deferscope_model::{Kind, Scan};
use serde_json::Value;

/// Errors reading a saved JSON document. `Json`'s parser message is its
/// `source()`, not repeated in its own text (anyhow's `{:#}` prints both).
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("not JSON")]
    Json(#[from] serde_json::Error),
    #[error("not a deferscope scan or explain JSON document: {0}")]
    Shape(&'static str),
}

/// One build's sites from a scan, with reasons when `x` (the explain of
/// `r`) is given.
pub fn side_of(r: &Scan, x: Option<&Explain>) -> Side {
    let mut side = Side {
        path: r.binary.path.clone(),
        go_version: r.binary.go_version.clone(),
        functions: BTreeMap::new(),
    };
    let first: BTreeMap<&str, u32> = r
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f.line))
        .collect();
    for (i, s) in r.sites.iter().enumerate() {
        let reasons = x
            .and_then(|x| x.sites.get(i))
            .map(|e| e.reasons.iter().map(|r| r.as_str().to_owned()).collect())
            .unwrap_or_default();
        let start = first.get(s.function.as_str()).copied().unwrap_or(0);
        side.functions
            .entry(s.function.clone())
            .or_insert_with(|| (start, Vec::new()))
            .1
            .push(DiffSite {
                file: s.file.clone(),
                line: s.line,
                kind: s.kind,
                pc: s.pc,
                reasons,
            });
    }
    side.sort();
    side
}

/// One build's sites from a saved `scan`/`explain --format json` document.
pub fn side_from_json(text: &str) -> Result<Side, DiffError> {
    let v: Value = serde_json::from_str(text)?;
    let bin = v.get("binary").ok_or(DiffError::Shape("no binary"))?;
    let mut side = Side {
        path: bin
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        go_version: bin
            .get("go_version")
            .and_then(Value::as_str)
            .map(str::to_owned),
        functions: BTreeMap::new(),
    };
    let mut first: BTreeMap<&str, u32> = BTreeMap::new();
    for f in v
        .get("functions")
        .and_then(Value::as_array)
        .ok_or(DiffError::Shape("no functions list"))?
    {
        if let (Some(n), Some(l)) = (
            f.get("name").and_then(Value::as_str),
            f.get("line").and_then(Value::as_u64),
        ) {
            first.insert(n, u32::try_from(l).unwrap_or(0));
        }
    }
    for s in v
        .get("sites")
        .and_then(Value::as_array)
        .ok_or(DiffError::Shape("no sites list"))?
    {
        let get_str = |k: &'static str| {
            s.get(k)
                .and_then(Value::as_str)
                .ok_or(DiffError::Shape("a site lacks function, file or kind"))
        };
        let function = get_str("function")?;
        let kind = Kind::parse(get_str("kind")?).ok_or(DiffError::Shape("unknown kind"))?;
        let line = s
            .get("line")
            .and_then(Value::as_u64)
            .and_then(|l| u32::try_from(l).ok())
            .ok_or(DiffError::Shape("a site lacks its line"))?;
        let reasons = s
            .get("reasons")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let start = first.get(function).copied().unwrap_or(0);
        side.functions
            .entry(function.to_owned())
            .or_insert_with(|| (start, Vec::new()))
            .1
            .push(DiffSite {
                file: get_str("file")?.to_owned(),
                line,
                kind,
                pc: s.get("pc").and_then(Value::as_u64).unwrap_or(0),
                reasons,
            });
    }
    side.sort();
    Ok(side)
}

/// Pair the sites of one function: indexes into `a` and `b`.
fn align(a: &[DiffSite], a0: u32, b: &[DiffSite], b0: u32) -> Vec<(Option<usize>, Option<usize>)> {
    if a.len() == b.len() {
        return (0..a.len()).map(|i| (Some(i), Some(i))).collect();
    }
    // LCS on the line offset from the function's first line.
    let off = |s: &DiffSite, base: u32| i64::from(s.line) - i64::from(base);
    let (n, m) = (a.len(), b.len());
    let mut t = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if off(&a[i], a0) == off(&b[j], b0) {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n && j < m {
        if off(&a[i], a0) == off(&b[j], b0) {
            out.push((Some(i), Some(j)));
            i += 1;
            j += 1;
        } else if t[i + 1][j] >= t[i][j + 1] {
            out.push((Some(i), None));
            i += 1;
        } else {
            out.push((None, Some(j)));
            j += 1;
        }
    }
    out.extend((i..n).map(|i| (Some(i), None)));
    out.extend((j..m).map(|j| (None, Some(j))));
    out
}

/// Compare two builds.
pub fn diff(old: &Side, new: &Side) -> Diff {
    let mut d = Diff {
        old: old.counts(),
        new: new.counts(),
        unchanged: 0,
        changes: Vec::new(),
    };
    let empty = (0, Vec::new());
    let names: std::collections::BTreeSet<&String> =
        old.functions.keys().chain(new.functions.keys()).collect();
    for name in names {
        let (a0, a) = old.functions.get(name).unwrap_or(&empty);
        let (b0, b) = new.functions.get(name).unwrap_or(&empty);
        for (i, j) in align(a, *a0, b, *b0) {
            let (o, n) = (i.map(|i| a[i].clone()), j.map(|j| b[j].clone()));
            let change = match (&o, &n) {
                (Some(x), Some(y)) if x.kind == y.kind => {
                    d.unchanged += 1;
                    continue;
                }
                (Some(_), Some(_)) => ChangeKind::Changed,
                (None, Some(_)) => ChangeKind::Added,
                _ => ChangeKind::Removed,
            };
            d.changes.push(Change {
                change,
                function: name.clone(),
                old: o,
                new: n,
            });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: u32, kind: Kind) -> DiffSite {
        DiffSite {
            file: "/m/a.go".into(),
            line,
            kind,
            pc: u64::from(line),
            reasons: vec![],
        }
    }

    fn side(funcs: &[(&str, u32, Vec<DiffSite>)]) -> Side {
        Side {
            path: "x".into(),
            go_version: None,
            functions: funcs
                .iter()
                .map(|(n, l, v)| (n.to_string(), (*l, v.clone())))
                .collect(),
        }
    }

    #[test]
    fn shifted_lines_are_no_change() {
        let a = side(&[(
            "main.f",
            10,
            vec![s(12, Kind::OpenCoded), s(14, Kind::OpenCoded)],
        )]);
        // Three lines added above the function, one between the defers.
        let b = side(&[(
            "main.f",
            13,
            vec![s(15, Kind::OpenCoded), s(18, Kind::OpenCoded)],
        )]);
        let d = diff(&a, &b);
        assert!(d.changes.is_empty());
        assert_eq!(d.unchanged, 2);
    }

    #[test]
    fn kind_change_and_added() {
        let a = side(&[("main.f", 10, vec![s(12, Kind::OpenCoded)])]);
        let b = side(&[
            ("main.f", 10, vec![s(12, Kind::HeapAllocated)]),
            ("main.g", 30, vec![s(31, Kind::StackAllocated)]),
        ]);
        let d = diff(&a, &b);
        assert_eq!(d.changes.len(), 2);
        assert_eq!(d.changes[0].change, ChangeKind::Changed);
        assert_eq!(d.changes[1].change, ChangeKind::Added);
        assert_eq!(
            d.failed(&[Kind::HeapAllocated, Kind::OpenCoded]),
            vec![Kind::HeapAllocated]
        );
    }

    #[test]
    fn unequal_counts_align_by_offset() {
        let a = side(&[(
            "main.f",
            10,
            vec![s(12, Kind::OpenCoded), s(20, Kind::OpenCoded)],
        )]);
        let b = side(&[(
            "main.f",
            10,
            vec![
                s(12, Kind::OpenCoded),
                s(16, Kind::OpenCoded),
                s(20, Kind::OpenCoded),
            ],
        )]);
        let d = diff(&a, &b);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].change, ChangeKind::Added);
        assert_eq!(d.changes[0].new.as_ref().unwrap().line, 16);
    }

    #[test]
    fn json_input() {
        let t = r#"{"binary":{"path":"p","go_version":"go1.22.1"},
            "functions":[{"name":"main.f","line":3}],
            "sites":[{"function":"main.f","file":"a.go","line":5,"kind":"heap-allocated","pc":1,"reasons":["in-loop"]}]}"#;
        let side = side_from_json(t).unwrap();
        assert_eq!(side.functions["main.f"].0, 3);
        assert_eq!(side.functions["main.f"].1[0].reasons, vec!["in-loop"]);
        assert!(side_from_json("{}").is_err());
        assert!(side_from_json("nope").is_err());
    }
}
