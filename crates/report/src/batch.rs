//! Printers of a batch (`deferscope scan|explain PATH...` over several
//! binaries, directories and images): a section per binary in the
//! one-binary format, and a combined summary.
//!
//! - **text**: `==> PATH <==` before each binary's report (as `head` does
//!   for many files), then `==> summary <==`: a table of the binaries
//!   (Go version, platform, sites per kind), the totals, and the skipped
//!   and failed entries with their reasons;
//! - **JSON**: `{schema_version, inputs, binaries: [the one-binary
//!   document of each], skipped, failed, summary}` (`docs/json.md`);
//! - **SARIF**: one run per binary (with `automationDetails.id` set to
//!   `deferscope/<path inside the argument>/` so code scanning keeps them
//!   apart), and, when entries were skipped or failed, a last run without
//!   results whose invocation lists them;
//! - **HTML**: [`crate::html::write_batch`].
//!
//! The diff of two batches ([`diff_text`], [`diff_json`]) lists every
//! binary that changed, was added or removed, in the one-binary diff's
//! words, then a table of all of them.

use std::io::{self, Write};

use deferscope_model::batch::{Batch, BatchDiff, Entry, Totals};
use deferscope_model::{Analysis, Counts, Kind, Origin};
use serde::Serialize;

use crate::diff::Build;
use serde_json::{json, Value};

use crate::{html, plural, Format, JSON_SCHEMA_VERSION};

/// One analysed binary of a batch: the analysis and, for the HTML page,
/// its listings.
#[derive(Debug)]
pub struct Binary {
    pub analysis: Analysis,
    pub listings: Option<html::Listings>,
}

impl AsRef<Analysis> for Binary {
    fn as_ref(&self) -> &Analysis {
        &self.analysis
    }
}

/// Print `b` in `format` (the HTML page needs every binary's explain
/// pass).
pub fn write(b: &Batch<Binary>, format: Format, w: &mut impl Write) -> io::Result<()> {
    match format {
        Format::Text => text(b, w),
        Format::Json => json(b, w),
        Format::Sarif => sarif(b, w),
        Format::Html => html::write_batch(b, w),
    }
}

fn platform(a: &Analysis) -> String {
    let b = &a.scan.binary;
    format!("{}/{}", b.goos, b.goarch)
}

/// The text report: see the module docs.
pub fn text<T: AsRef<Analysis>>(b: &Batch<T>, w: &mut impl Write) -> io::Result<()> {
    for (e, a) in b.done() {
        let a = a.as_ref();
        writeln!(w, "==> {} <==", e.path)?;
        crate::write(a, Format::Text, None, w)?;
        writeln!(w)?;
    }
    writeln!(w, "==> summary <==")?;
    let t = b.totals();
    writeln!(w, "{}", summary_line(b, &t))?;
    let rows: Vec<(&Entry<T>, &Analysis)> = b.done().map(|(e, a)| (e, a.as_ref())).collect();
    if !rows.is_empty() {
        let width = rows
            .iter()
            .map(|(e, _)| e.path.len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            w,
            "\n{:<width$}  {:<12}  {:<13}  {:>6}  {:>10}  {:>15}  {:>14}",
            "binary",
            "go version",
            "platform",
            "sites",
            "open-coded",
            "stack-allocated",
            "heap-allocated"
        )?;
        for (e, a) in &rows {
            let (c, _) = a.scan.counts();
            writeln!(
                w,
                "{:<width$}  {:<12}  {:<13}  {:>6}  {:>10}  {:>15}  {:>14}",
                e.path,
                a.scan.binary.go_version.as_deref().unwrap_or("unknown"),
                platform(a),
                a.scan.sites.len(),
                c.open_coded,
                c.stack_allocated,
                c.heap_allocated
            )?;
        }
        writeln!(
            w,
            "{:<width$}  {:<12}  {:<13}  {:>6}  {:>10}  {:>15}  {:>14}",
            "total",
            "",
            "",
            t.sites,
            t.kinds.open_coded,
            t.kinds.stack_allocated,
            t.kinds.heap_allocated
        )?;
    }
    let failed: Vec<_> = b.failed().collect();
    if !failed.is_empty() {
        writeln!(w, "\n# failed")?;
        for (e, why) in failed {
            writeln!(w, "{}: {why}", e.path)?;
        }
    }
    let skipped: Vec<_> = b.skipped().collect();
    if !skipped.is_empty() {
        writeln!(w, "\n# skipped")?;
        for (e, why) in skipped {
            writeln!(w, "{}: {why}", e.path)?;
        }
    }
    Ok(())
}

/// `3 Go binaries, 1 skipped, 1 failed; 12 other files and 2 links not read`.
fn summary_line<T>(b: &Batch<T>, t: &Totals) -> String {
    let mut s = plural(t.binaries, "Go binary", "Go binaries");
    s.push_str(&format!(", {} skipped, {} failed", t.skipped, t.failed));
    s.push_str(&format!(
        "; {} and {} not read",
        plural(b.other_files, "other file", "other files"),
        plural(b.links, "link", "links")
    ));
    s.push_str(&format!(
        "; {} in {}",
        plural(t.sites, "defer site", "defer sites"),
        plural(t.functions, "function", "functions")
    ));
    s
}

/// A binary's JSON document: scan's, or explain's when it has one.
#[derive(Serialize)]
#[serde(untagged)]
enum PerBinary<'a> {
    Scan(crate::scan::JsonDoc<'a>),
    Explain(crate::explain::Doc<'a>),
}

#[derive(Serialize)]
struct Skip<'a> {
    path: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct Fail<'a> {
    path: &'a str,
    error: &'a str,
}

#[derive(Serialize)]
struct Summary {
    binaries: usize,
    skipped: usize,
    failed: usize,
    other_files: usize,
    links: usize,
    sites: usize,
    functions: usize,
    kinds: Counts,
    main: Counts,
    std: Counts,
    dep: Counts,
}

#[derive(Serialize)]
struct BatchDoc<'a> {
    schema_version: u32,
    inputs: &'a [String],
    binaries: Vec<PerBinary<'a>>,
    skipped: Vec<Skip<'a>>,
    failed: Vec<Fail<'a>>,
    summary: Summary,
}

/// The JSON document (`docs/json.md`, "many binaries").
pub fn json<T: AsRef<Analysis>>(b: &Batch<T>, w: &mut impl Write) -> io::Result<()> {
    let t = b.totals();
    let mut binaries = Vec::new();
    for (_, a) in b.done() {
        let a = a.as_ref();
        binaries.push(match &a.explain {
            Some(x) => PerBinary::Explain(crate::explain::doc(&a.scan, x)?),
            None => PerBinary::Scan(crate::scan::doc(&a.scan)),
        });
    }
    let doc = BatchDoc {
        schema_version: JSON_SCHEMA_VERSION,
        inputs: &b.inputs,
        binaries,
        skipped: b
            .skipped()
            .map(|(e, reason)| Skip {
                path: &e.path,
                reason,
            })
            .collect(),
        failed: b
            .failed()
            .map(|(e, error)| Fail {
                path: &e.path,
                error,
            })
            .collect(),
        summary: Summary {
            binaries: t.binaries,
            skipped: t.skipped,
            failed: t.failed,
            other_files: b.other_files,
            links: b.links,
            sites: t.sites,
            functions: t.functions,
            kinds: t.kinds,
            main: t.origin(Origin::Main),
            std: t.origin(Origin::Std),
            dep: t.origin(Origin::Dependency),
        },
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

/// The SARIF log: see the module docs.
pub fn sarif<T: AsRef<Analysis>>(b: &Batch<T>, w: &mut impl Write) -> io::Result<()> {
    let mut runs = Vec::new();
    for (e, a) in b.done() {
        let a = a.as_ref();
        let mut log = crate::sarif::sarif_value(&a.scan, a.explain.as_ref());
        if let Some(mut run) = log
            .get_mut("runs")
            .and_then(|r| r.get_mut(0))
            .map(Value::take)
        {
            run["automationDetails"] = json!({ "id": format!("deferscope/{}/", e.key) });
            runs.push(run);
        }
    }
    let mut notes = Vec::new();
    for (e, why) in b.failed() {
        notes
            .push(json!({ "level": "error", "message": { "text": format!("{}: {why}", e.path) } }));
    }
    for (e, why) in b.skipped() {
        notes.push(json!({ "level": "note", "message": { "text": format!("{}: skipped: {why}", e.path) } }));
    }
    if !notes.is_empty() {
        runs.push(json!({
            "tool": { "driver": {
                "name": "deferscope",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/deferscope",
            }},
            "automationDetails": { "id": "deferscope/inputs/" },
            "invocations": [{
                "executionSuccessful": !b.any_failed(),
                "toolExecutionNotifications": notes,
            }],
            "results": [],
        }));
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": runs,
    });
    serde_json::to_writer_pretty(&mut *w, &log)?;
    writeln!(w)
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// The diff of two batches for people: see the module docs.
pub fn diff_text(d: &BatchDiff, fail_on: &[Kind], w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "old: {}", d.old)?;
    writeln!(w, "new: {}", d.new)?;
    for bd in &d.binaries {
        if bd.status() == "unchanged" {
            continue;
        }
        writeln!(w, "\n==> {} ({}) <==", bd.key, bd.status())?;
        let empty = deferscope_model::diff::Side {
            path: "(none)".into(),
            ..Default::default()
        };
        let old = bd.old.as_ref().unwrap_or(&empty);
        let new = bd.new.as_ref().unwrap_or(&empty);
        crate::diff::text(old, new, &bd.diff, &[], w)?;
    }
    writeln!(w, "\n==> summary <==")?;
    let count = |s: &str| d.binaries.iter().filter(|b| b.status() == s).count();
    writeln!(
        w,
        "{}: {} changed, {} added, {} removed, {} unchanged; {} failed",
        plural(d.binaries.len(), "binary", "binaries"),
        count("changed"),
        count("added"),
        count("removed"),
        count("unchanged"),
        d.errors.len()
    )?;
    let width = d
        .binaries
        .iter()
        .map(|b| b.key.len())
        .max()
        .unwrap_or(6)
        .max(6);
    if !d.binaries.is_empty() {
        writeln!(
            w,
            "\n{:<width$}  {:<9}  {:>15}  {:>15}  {:>15}",
            "binary", "status", "open-coded", "stack-allocated", "heap-allocated"
        )?;
        for bd in &d.binaries {
            let cell = |k: Kind| {
                let (a, b) = (bd.diff.old.get(k), bd.diff.new.get(k));
                format!("{a}->{b} ({})", signed(b as i64 - a as i64))
            };
            writeln!(
                w,
                "{:<width$}  {:<9}  {:>15}  {:>15}  {:>15}",
                bd.key,
                bd.status(),
                cell(Kind::OpenCoded),
                cell(Kind::StackAllocated),
                cell(Kind::HeapAllocated)
            )?;
        }
    }
    if !d.errors.is_empty() {
        writeln!(w, "\n# failed")?;
        for (p, why) in &d.errors {
            writeln!(w, "{p}: {why}")?;
        }
    }
    let (o, n) = d.totals();
    for k in d.failed(fail_on) {
        writeln!(
            w,
            "\nFAIL: more {k} defers in at least one binary (all binaries: {} -> {}), --fail-on {k}",
            o.get(k),
            n.get(k)
        )?;
    }
    Ok(())
}

/// The diff of two batches as JSON (`docs/json.md`).
pub fn diff_json(d: &BatchDiff, fail_on: &[Kind], w: &mut impl Write) -> io::Result<()> {
    let binaries: Vec<Value> = d
        .binaries
        .iter()
        .map(|bd| {
            fn side(s: &Option<deferscope_model::diff::Side>, c: Counts) -> Option<Build<'_>> {
                s.as_ref().map(|s| Build {
                    path: &s.path,
                    go_version: s.go_version.as_deref(),
                    kinds: c,
                })
            }
            json!({
                "key": bd.key,
                "status": bd.status(),
                "old": side(&bd.old, bd.diff.old),
                "new": side(&bd.new, bd.diff.new),
                "unchanged": bd.diff.unchanged,
                "changes": bd.diff.changes,
                "failed": bd.diff.failed(fail_on),
            })
        })
        .collect();
    let (o, n) = d.totals();
    let doc = json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "old": { "path": d.old, "kinds": o },
        "new": { "path": d.new, "kinds": n },
        "binaries": binaries,
        "errors": d.errors.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
        "fail_on": fail_on,
        "failed": d.failed(fail_on),
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}
