//! Printers for `deferscope diff` (the matching is
//! `deferscope_analyze::diff`'s): text for people, JSON for scripts.

use std::io::{self, Write};

use deferscope_model::diff::{Change, ChangeKind, Diff, DiffSite, Side};
use deferscope_model::{Counts, Kind};
use serde::Serialize;

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

/// One build in a diff's JSON: where it came from and its sites per kind.
#[derive(Serialize)]
pub(crate) struct Build<'a> {
    pub(crate) path: &'a str,
    pub(crate) go_version: Option<&'a str>,
    pub(crate) kinds: Counts,
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
