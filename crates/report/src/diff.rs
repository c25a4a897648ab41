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
//! available. Either side can be a scan (a [`Report`], with or without an
//! [`Explain`]) or a saved `deferscope scan --format json` /
//! `explain --format json` document ([`Side::from_json`]).

use std::collections::BTreeMap;
use std::io::{self, Write};

use deferscope_analyze::explain::Explain;
use deferscope_analyze::{Counts, Kind, Report};
use serde::Serialize;
use serde_json::Value;

/// Errors reading a saved JSON document.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a deferscope scan or explain JSON document: {0}")]
    Shape(&'static str),
}

/// One site as the diff sees it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DiffSite {
    pub file: String,
    pub line: u32,
    pub kind: Kind,
    #[serde(skip)]
    pub pc: u64,
    /// Reason codes (explain data), empty when unknown or open-coded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// One build: where it came from and its sites per function.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub path: String,
    pub go_version: Option<String>,
    /// Function name -> (first line of the function, its sites in source
    /// order).
    pub functions: BTreeMap<String, (u32, Vec<DiffSite>)>,
}

impl Side {
    /// From a scan, with reasons when `x` (the explain of `r`) is given.
    pub fn from_report(r: &Report, x: Option<&Explain>) -> Side {
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

    /// From a saved `scan`/`explain --format json` document.
    pub fn from_json(text: &str) -> Result<Side, DiffError> {
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

    fn sort(&mut self) {
        for (_, sites) in self.functions.values_mut() {
            sites.sort_by_key(|s| (s.line, s.pc));
        }
    }

    /// Sites per kind.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (_, sites) in self.functions.values() {
            for s in sites {
                c.add(s.kind);
            }
        }
        c
    }

    /// Keep only the functions `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.functions.retain(|name, _| keep(name));
    }
}

/// What happened to one site.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Changed,
    Added,
    Removed,
}

/// One change between the builds.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    pub function: String,
    pub old: Option<DiffSite>,
    pub new: Option<DiffSite>,
}

/// The result of [`diff`].
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub old: Counts,
    pub new: Counts,
    pub unchanged: usize,
    pub changes: Vec<Change>,
}

impl Diff {
    /// The kinds among `fail_on` that have more sites in the new build.
    pub fn failed(&self, fail_on: &[Kind]) -> Vec<Kind> {
        fail_on
            .iter()
            .copied()
            .filter(|&k| self.new.get(k) > self.old.get(k))
            .collect()
    }
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

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn reasons_suffix(s: &DiffSite) -> String {
    if s.reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.reasons.join(", "))
    }
}

/// Print the diff for people.
pub fn text(
    old: &Side,
    new: &Side,
    d: &Diff,
    fail_on: &[Kind],
    w: &mut impl Write,
) -> io::Result<()> {
    let ver = |s: &Side| {
        s.go_version
            .clone()
            .unwrap_or_else(|| "go version unknown".into())
    };
    writeln!(w, "old: {} ({})", old.path, ver(old))?;
    writeln!(w, "new: {} ({})", new.path, ver(new))?;
    if d.changes.is_empty() {
        writeln!(w, "\nno defer changed ({} sites matched)", d.unchanged)?;
    } else {
        writeln!(w)?;
        for c in &d.changes {
            match (c.change, &c.old, &c.new) {
                (ChangeKind::Changed, Some(o), Some(n)) => writeln!(
                    w,
                    "changed  {}:{}: {} -> {} defer in {}{}",
                    n.file,
                    n.line,
                    o.kind,
                    n.kind,
                    c.function,
                    reasons_suffix(n)
                )?,
                (ChangeKind::Added, _, Some(n)) => writeln!(
                    w,
                    "added    {}:{}: {} defer in {}{}",
                    n.file,
                    n.line,
                    n.kind,
                    c.function,
                    reasons_suffix(n)
                )?,
                (_, Some(o), _) => writeln!(
                    w,
                    "removed  {}:{}: {} defer in {}",
                    o.file, o.line, o.kind, c.function
                )?,
                _ => {}
            }
        }
        writeln!(
            w,
            "\n{} changed, {} added, {} removed, {} unchanged",
            d.changes
                .iter()
                .filter(|c| c.change == ChangeKind::Changed)
                .count(),
            d.changes
                .iter()
                .filter(|c| c.change == ChangeKind::Added)
                .count(),
            d.changes
                .iter()
                .filter(|c| c.change == ChangeKind::Removed)
                .count(),
            d.unchanged
        )?;
    }
    writeln!(w, "\n{:<17}{:>7}{:>7}{:>8}", "", "old", "new", "change")?;
    for k in Kind::ALL {
        let (a, b) = (d.old.get(k), d.new.get(k));
        writeln!(
            w,
            "{:<17}{:>7}{:>7}{:>8}",
            k.as_str(),
            a,
            b,
            signed(b as i64 - a as i64)
        )?;
    }
    for k in d.failed(fail_on) {
        writeln!(
            w,
            "\nFAIL: more {k} defers ({} -> {}), --fail-on {k}",
            d.old.get(k),
            d.new.get(k)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Build<'a> {
    path: &'a str,
    go_version: Option<&'a str>,
    kinds: Counts,
}

#[derive(Serialize)]
struct JsonDiff<'a> {
    schema_version: u32,
    old: Build<'a>,
    new: Build<'a>,
    unchanged: usize,
    changes: &'a [Change],
    fail_on: Vec<Kind>,
    failed: Vec<Kind>,
}

/// Print the diff as JSON (`docs/json.md`, "deferscope diff").
pub fn json(
    old: &Side,
    new: &Side,
    d: &Diff,
    fail_on: &[Kind],
    w: &mut impl Write,
) -> io::Result<()> {
    let doc = JsonDiff {
        schema_version: crate::JSON_SCHEMA_VERSION,
        old: Build {
            path: &old.path,
            go_version: old.go_version.as_deref(),
            kinds: d.old,
        },
        new: Build {
            path: &new.path,
            go_version: new.go_version.as_deref(),
            kinds: d.new,
        },
        unchanged: d.unchanged,
        changes: &d.changes,
        fail_on: fail_on.to_vec(),
        failed: d.failed(fail_on),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
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
        let side = Side::from_json(t).unwrap();
        assert_eq!(side.functions["main.f"].0, 3);
        assert_eq!(side.functions["main.f"].1[0].reasons, vec!["in-loop"]);
        assert!(Side::from_json("{}").is_err());
        assert!(Side::from_json("nope").is_err());
    }
}
