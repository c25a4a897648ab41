//! Printers of a scan alone: compiler-style text (`file:line: kind defer
//! in func`, which editors can jump to and which can be diffed against
//! `go build -gcflags=all=-d=defer`) and the JSON contract of
//! `docs/json.md`.

use std::io::{self, Write};

use deferscope_model::{BinaryInfo, Counts, FuncInfo, Kind, Origin, Scan, Site};
use serde::Serialize;

use crate::{headline, plural, JSON_SCHEMA_VERSION};

/// Print the text report: headline, one line per site, summary tables.
pub fn text(r: &Scan, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "{}", headline(r))?;
    let nfuncs = r.functions.iter().filter(|f| f.sites > 0).count();
    writeln!(
        w,
        "{} in {}",
        plural(r.sites.len(), "defer site", "defer sites"),
        plural(nfuncs, "function", "functions")
    )?;
    let mut sites: Vec<_> = r.sites.iter().collect();
    sites.sort_by(|a, b| (a.origin, &a.file, a.line, a.pc).cmp(&(b.origin, &b.file, b.line, b.pc)));
    let mut last = None;
    for s in sites {
        if last != Some(s.origin) {
            writeln!(w, "\n# {}", crate::origin_label(s.origin, &r.binary))?;
            last = Some(s.origin);
        }
        writeln!(
            w,
            "{}:{}: {} defer in {}",
            s.file, s.line, s.kind, s.function
        )?;
    }
    let rangefunc: Vec<_> = r
        .functions
        .iter()
        .filter(|f| f.calls_deferrangefunc)
        .collect();
    if !rangefunc.is_empty() {
        writeln!(
            w,
            "\n# functions enclosing a range-over-func loop that defers (runtime.deferrangefunc)"
        )?;
        for f in rangefunc {
            writeln!(w, "{}:{}: {}", f.file, f.line, f.name)?;
        }
    }

    let (all, by) = r.counts();
    let origins: Vec<Origin> = by.keys().copied().collect();
    writeln!(w)?;
    let mut header = format!("{:<17}{:>7}", "", "sites");
    for o in &origins {
        header.push_str(&format!("  {:>16}", crate::origin_label(*o, &r.binary)));
    }
    writeln!(w, "{}", header.trim_end())?;
    for k in Kind::ALL {
        let mut line = format!("{:<17}{:>7}", k.as_str(), all.get(k));
        for o in &origins {
            line.push_str(&format!("  {:>16}", by[o].get(k)));
        }
        writeln!(w, "{line}")?;
    }

    let per = r.per_package();
    if !per.is_empty() {
        let width = per.keys().map(|p| p.len()).max().unwrap_or(7).max(7);
        writeln!(
            w,
            "\n{:<width$}  {:>10}  {:>15}  {:>14}",
            "package", "open-coded", "stack-allocated", "heap-allocated"
        )?;
        for (p, c) in per {
            writeln!(
                w,
                "{:<width$}  {:>10}  {:>15}  {:>14}",
                p, c.open_coded, c.stack_allocated, c.heap_allocated
            )?;
        }
    }
    Ok(())
}

/// The JSON document: the report plus a summary, as documented in
/// `docs/json.md`.
#[derive(Serialize)]
pub(crate) struct JsonDoc<'a> {
    schema_version: u32,
    binary: &'a BinaryInfo,
    summary: Summary,
    sites: &'a [Site],
    functions: &'a [FuncInfo],
}

#[derive(Serialize)]
struct Summary {
    sites: usize,
    functions: usize,
    kinds: Counts,
    main: Counts,
    std: Counts,
    dep: Counts,
}

/// Print the report as JSON.
pub fn json(r: &Scan, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &doc(r))?;
    writeln!(w)
}

/// The JSON document of `r`.
pub(crate) fn doc(r: &Scan) -> JsonDoc<'_> {
    let (all, by) = r.counts();
    let get = |o| by.get(&o).copied().unwrap_or_default();
    JsonDoc {
        schema_version: JSON_SCHEMA_VERSION,
        binary: &r.binary,
        summary: Summary {
            sites: r.sites.len(),
            functions: r.functions.iter().filter(|f| f.sites > 0).count(),
            kinds: all,
            main: get(Origin::Main),
            std: get(Origin::Std),
            dep: get(Origin::Dependency),
        },
        sites: &r.sites,
        functions: &r.functions,
    }
}
