//! Printers for `deferscope explain`: text for people (one paragraph per
//! function: where, why, calls, alloc, cost, fix) and JSON (the scan
//! contract of `docs/json.md` with the explain fields added to each site and
//! function, plus `cost_table` and `inline_candidates`).

use std::collections::HashMap;
use std::io::{self, Write};

use deferscope_model::cost::CostTable;
use deferscope_model::explain::{
    AllocPer, CaptureMode, Explain, FuncExplain, InlineCandidate, SiteExplain,
};
use deferscope_model::{FuncInfo, Kind, Origin, Scan, Site};
use serde::Serialize;

use crate::{headline, JSON_SCHEMA_VERSION};

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn ns(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0} ns")
    } else {
        format!("{x:.1} ns")
    }
}

fn kinds_phrase(sites: &[&Site]) -> String {
    let mut parts = Vec::new();
    for k in Kind::ALL {
        let n = sites.iter().filter(|s| s.kind == k).count();
        if n > 0 {
            parts.push(format!("{n} {k} defer{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() {
        "no defer site of its own".into()
    } else {
        parts.join(", ")
    }
}

/// The text report: a paragraph per function that is not open-coded, then
/// a line per open-coded function, inlining candidates, the cost table.
pub fn text(r: &Scan, x: &Explain, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "{}", headline(r))?;
    let t = &x.cost_table;
    let table_words = match t.origin.as_str() {
        "measured" => format!(
            "costs measured on this machine{} (deferscope bench)",
            t.go_version
                .as_deref()
                .map(|v| format!(" with {v}"))
                .unwrap_or_default()
        ),
        _ => format!("costs: {}", t.source),
    };
    let not_open = x.functions.iter().filter(|f| !f.reasons.is_empty()).count();
    writeln!(
        w,
        "{} functions with defers, {} not open-coded; {}\n",
        r.functions.len(),
        not_open,
        table_words
    )?;
    let mut order: Vec<usize> = (0..r.functions.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (&r.functions[a], &r.functions[b]);
        (fa.origin, &fa.file, fa.line, &fa.name).cmp(&(fb.origin, &fb.file, fb.line, &fb.name))
    });
    // Sites by function name, in order: a function's sites are those of
    // its name inside its range (no scan of every site per function).
    let mut sites_named: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, s) in r.sites.iter().enumerate() {
        sites_named.entry(s.function.as_str()).or_default().push(j);
    }
    let mut open_lines = Vec::new();
    for i in order {
        let f = &r.functions[i];
        let fx = &x.functions[i];
        let mut idx: Vec<usize> = sites_named
            .get(f.name.as_str())
            .map(|c| {
                c.iter()
                    .copied()
                    .filter(|&j| in_func(f, &r.sites[j]))
                    .collect()
            })
            .unwrap_or_default();
        // In source order (the code is not: inlined and moved blocks).
        idx.sort_by_key(|&j| (&r.sites[j].file, r.sites[j].line, r.sites[j].pc));
        let sites: Vec<&Site> = idx.iter().map(|&j| &r.sites[j]).collect();
        if fx.reasons.is_empty() {
            if !sites.is_empty() {
                open_lines.push(open_line(f, fx, &sites, &idx, x));
            }
            continue;
        }
        function_paragraph(w, f, fx, &sites, &idx, x)?;
    }
    if !open_lines.is_empty() {
        writeln!(w, "# open-coded (about {} per defer)", ns(t.open_coded_ns))?;
        for l in open_lines {
            writeln!(w, "{l}")?;
        }
        writeln!(w)?;
    }
    if !x.inline_candidates.is_empty() {
        // design.md §5.4: Go never inlines a function holding a defer, but
        // whether it would inline without one is not in the binary.
        writeln!(
            w,
            "# small functions that defer (direct callers): Go does not inline a function that \
             holds a defer statement (inl.go: \"unhandled op DEFER\"), so every call pays a call; \
             whether it would inline without the defer (cost within the budget of 80, no \
             //go:noinline) the binary does not show"
        )?;
        for c in x.inline_candidates.iter().take(20) {
            writeln!(
                w,
                "{:>6}  {} ({} bytes): not inlined while it defers; without the defer: unknown",
                c.direct_callers, c.function, c.size
            )?;
        }
        writeln!(w)?;
    }
    writeln!(
        w,
        "# cost per executed defer, including the call ({})",
        t.origin
    )?;
    writeln!(w, "  direct call      {}", ns(t.direct_call_ns))?;
    writeln!(w, "  open-coded       {}", ns(t.open_coded_ns))?;
    writeln!(w, "  stack-allocated  {}", ns(t.stack_allocated_ns))?;
    writeln!(w, "  heap-allocated   {}", ns(t.heap_allocated_ns))?;
    if let Some(v) = t.heap_closure_ns {
        writeln!(w, "  heap + closure   {}", ns(v))?;
    }
    if let Some(v) = t.panic_recover_ns {
        writeln!(w, "  panic + recover  {}", ns(v))?;
    }
    if let Some(v) = t.cgo_call_ns {
        writeln!(w, "  + cgo crossing   {} (a deferred call into C)", ns(v))?;
    }
    writeln!(w, "  source: {}", t.source)?;
    Ok(())
}

fn in_func(f: &FuncInfo, s: &Site) -> bool {
    s.pc >= f.entry && s.pc < f.entry + f.size
}

fn target_phrase(s: &Site, sx: &SiteExplain) -> String {
    let via_name = sx.deferred_via.as_deref().unwrap_or("the wrapper");
    let t = match (&sx.deferred_target, sx.deferred_indirect) {
        (Some(t), _) if sx.deferred_intrinsic => {
            format!("{t} (an intrinsic: no call left in {via_name})")
        }
        (Some(t), _) if sx.deferred_inlined => format!("{t} (inlined into {via_name})"),
        (Some(t), _) => t.clone(),
        (None, true) => "an indirect call (func value or interface method)".into(),
        (None, false) if sx.deferred_elided => {
            format!("nothing (the call was inlined into {via_name} and compiled to no code)")
        }
        (None, false) => "unresolved".into(),
    };
    let named = sx.deferred_inlined || sx.deferred_intrinsic || sx.deferred_elided;
    let via = sx
        .deferred_via
        .as_deref()
        .filter(|_| !named)
        .map(|v| format!(" (via {v})"))
        .unwrap_or_default();
    let rec = if sx.calls_recover {
        ", calls recover"
    } else {
        ""
    };
    let cgo = match (&sx.c_function, sx.crosses_cgo) {
        (Some(c), _) => format!(", calls {c} through runtime.cgocall"),
        (None, true) => ", calls C through runtime.cgocall".to_string(),
        _ => String::new(),
    };
    format!("{}:{} -> {t}{via}{rec}{cgo}", base(&s.file), s.line)
}

/// What a site's deferred call receives: `&a by reference (moved to
/// heap), b 8 B copied at the defer`; a field without a name is `#N`.
fn captures_phrase(sx: &SiteExplain) -> Option<String> {
    let caps = sx.captures.as_ref()?;
    if caps.is_empty() {
        return None;
    }
    let parts: Vec<String> = caps
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let heap = if c.moved_to_heap {
                " (moved to heap)"
            } else {
                ""
            };
            match (c.mode, &c.name) {
                (CaptureMode::Ref, Some(n)) => format!("&{n} by reference{heap}"),
                (CaptureMode::Ref, None) => format!("field {} by reference{heap}", i + 1),
                (CaptureMode::Value, Some(n)) => format!("{n} ({} B) copied at the defer", c.bytes),
                (CaptureMode::Value, None) => {
                    format!("field {} ({} B) copied at the defer", i + 1, c.bytes)
                }
            }
        })
        .collect();
    Some(parts.join(", "))
}

/// The per-site lines under a function: captures, results rewritten.
fn site_detail_lines(s: &Site, sx: &SiteExplain) -> Vec<(&'static str, String)> {
    let at = format!("{}:{}", base(&s.file), s.line);
    let mut out = Vec::new();
    if let Some(c) = captures_phrase(sx) {
        out.push(("captures", format!("{at}: {c}")));
    }
    if !sx.writes_results.is_empty() {
        out.push((
            "writes",
            format!(
                "{at}: the deferred call rewrites {} after the return statement set it",
                sx.writes_results.join(", ")
            ),
        ));
    }
    out
}

/// A site's heap allocations: per execution, and once per call.
fn memory_phrase(s: &Site, sx: &SiteExplain) -> Option<String> {
    if sx.allocations.is_empty() {
        return None;
    }
    let part = |per: AllocPer| -> Vec<String> {
        sx.allocations
            .iter()
            .filter(|a| a.per == per)
            .map(|a| format!("{} B {} by {}", a.bytes, a.what, a.allocator))
            .collect()
    };
    let (exec, call) = (part(AllocPer::Exec), part(AllocPer::Call));
    let mut text = format!("{}:{}: ", base(&s.file), s.line);
    match (sx.allocs_per_exec, sx.bytes_per_exec) {
        (Some(n), Some(b)) => text.push_str(&format!(
            "{n} allocation{}, {b} B per execution",
            if n == 1 { "" } else { "s" }
        )),
        _ => text.push_str("allocations per execution not known"),
    }
    if !exec.is_empty() {
        text.push_str(&format!(" ({})", exec.join(", ")));
    }
    if !call.is_empty() {
        text.push_str(&format!("; once per call: {}", call.join(", ")));
    }
    Some(text)
}

fn open_line(
    f: &FuncInfo,
    fx: &FuncExplain,
    sites: &[&Site],
    idx: &[usize],
    x: &Explain,
) -> String {
    let calls: Vec<String> = sites
        .iter()
        .zip(idx)
        .map(|(s, &j)| target_phrase(s, &x.sites[j]))
        .collect();
    let mut extra = String::new();
    if let Some(b) = fx.open_slot_bytes {
        extra.push_str(&format!("; {b} B of frame"));
    }
    match fx.exit_code_bytes {
        Some(0) => extra.push_str(", no open-coded exit found"),
        Some(b) => extra.push_str(&format!(", about {b} B of exit code")),
        None => {}
    }
    let mut line = format!(
        "{}:{}: {}  {}{}",
        f.file,
        f.line,
        f.name,
        calls.join("; "),
        extra
    );
    for (s, &j) in sites.iter().zip(idx) {
        let sx = &x.sites[j];
        for (label, text) in site_detail_lines(s, sx) {
            line.push_str(&format!("\n    {label} {text}"));
        }
        if let Some(m) = memory_phrase(s, sx) {
            line.push_str(&format!("\n    alloc {m}"));
        }
    }
    line
}

fn function_paragraph(
    w: &mut impl Write,
    f: &FuncInfo,
    fx: &FuncExplain,
    sites: &[&Site],
    idx: &[usize],
    x: &Explain,
) -> io::Result<()> {
    writeln!(
        w,
        "{}  {}:{}  {}",
        f.name,
        f.file,
        f.line,
        kinds_phrase(sites)
    )?;
    for (k, d) in fx.reason_details.iter().enumerate() {
        let label = if k == 0 { "why" } else { "" };
        writeln!(w, "  {label:<6} {} ({})", d.detail, d.code)?;
    }
    for (k, (s, &j)) in sites.iter().zip(idx).enumerate() {
        let label = if k == 0 { "calls" } else { "" };
        writeln!(w, "  {label:<6} {}", target_phrase(s, &x.sites[j]))?;
    }
    for (s, &j) in sites.iter().zip(idx) {
        for (label, text) in site_detail_lines(s, &x.sites[j]) {
            writeln!(w, "  {label:<6} {text}")?;
        }
    }
    let mut alloc = Vec::new();
    for (s, &j) in sites.iter().zip(idx) {
        let sx = &x.sites[j];
        if let Some(m) = memory_phrase(s, sx) {
            alloc.push(m);
        } else if let Some(a) = &sx.heap_closure_allocator {
            alloc.push(format!(
                "{}:{}: a {} heap closure per execution ({a})",
                base(&s.file),
                s.line,
                sx.heap_closure_bytes
                    .map_or("heap".to_string(), |b| format!("{b}-byte"))
                    .replace("heap heap", "heap")
            ));
        }
    }
    if fx.defer_record_bytes > 0 {
        let each: Vec<u64> = idx
            .iter()
            .filter_map(|&j| x.sites[j].record_bytes)
            .collect();
        let sizes = match each.as_slice() {
            [b, rest @ ..] if rest.iter().all(|r| r == b) => {
                format!(" ({} × {b} B)", each.len())
            }
            _ => String::new(),
        };
        alloc.push(format!(
            "{} B of _defer records in the frame{sizes}",
            fx.defer_record_bytes
        ));
    }
    let nheap = sites
        .iter()
        .filter(|s| s.kind == Kind::HeapAllocated)
        .count();
    if nheap > 0 {
        alloc.push(format!(
            "{nheap} heap _defer record{} (from the per-P pool)",
            if nheap == 1 { "" } else { "s" }
        ));
    }
    for (k, a) in alloc.iter().enumerate() {
        let label = if k == 0 { "alloc" } else { "" };
        writeln!(w, "  {label:<6} {a}")?;
    }
    let t = &x.cost_table;
    let mut cost: Vec<String> = Vec::new();
    for (s, &j) in sites.iter().zip(idx) {
        let sx = &x.sites[j];
        cost.push(format!(
            "{}:{} about {}",
            base(&s.file),
            s.line,
            ns(sx.est_ns)
        ));
    }
    writeln!(
        w,
        "  {:<6} {} per execution, instead of about {} open-coded ({} table)",
        "cost",
        cost.join(", "),
        ns(t.open_coded_ns),
        t.origin
    )?;
    let mut fixes: Vec<&str> = fx.reason_details.iter().map(|d| d.fix.as_str()).collect();
    fixes.dedup();
    for (k, fix) in fixes.iter().enumerate() {
        let label = if k == 0 { "fix" } else { "" };
        writeln!(w, "  {label:<6} {fix}")?;
    }
    writeln!(w)
}

#[derive(Serialize)]
struct SiteOut<'a> {
    #[serde(flatten)]
    site: &'a Site,
    #[serde(flatten)]
    explain: &'a SiteExplain,
}

#[derive(Serialize)]
struct FuncOut<'a> {
    #[serde(flatten)]
    func: &'a FuncInfo,
    #[serde(flatten)]
    explain: &'a FuncExplain,
}

#[derive(Serialize)]
pub(crate) struct Doc<'a> {
    schema_version: u32,
    binary: &'a deferscope_model::BinaryInfo,
    summary: serde_json::Value,
    sites: Vec<SiteOut<'a>>,
    functions: Vec<FuncOut<'a>>,
    inline_candidates: &'a [InlineCandidate],
    cost_table: &'a CostTable,
}

/// The JSON document: scan's, with the explain fields (docs/json.md).
pub fn json(r: &Scan, x: &Explain, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &doc(r, x)?)?;
    writeln!(w)
}

/// The JSON document of `r` and its explain pass `x`.
pub(crate) fn doc<'a>(r: &'a Scan, x: &'a Explain) -> io::Result<Doc<'a>> {
    Ok(Doc {
        schema_version: JSON_SCHEMA_VERSION,
        binary: &r.binary,
        summary: summary(r)?,
        sites: r
            .sites
            .iter()
            .zip(&x.sites)
            .map(|(site, explain)| SiteOut { site, explain })
            .collect(),
        functions: r
            .functions
            .iter()
            .zip(&x.functions)
            .map(|(func, explain)| FuncOut { func, explain })
            .collect(),
        inline_candidates: &x.inline_candidates,
        cost_table: &x.cost_table,
    })
}

/// Scan's `summary` object (as [`crate::scan::json`] writes it), as a JSON value
/// built from the counts: the document must not be written and parsed
/// again for it (that costs memory in proportion to the sites).
fn summary(r: &Scan) -> io::Result<serde_json::Value> {
    let (all, by) = r.counts();
    let get = |o| by.get(&o).copied().unwrap_or_default();
    let v = |c| serde_json::to_value(c).map_err(io::Error::other);
    let mut m = serde_json::Map::new();
    m.insert("sites".into(), r.sites.len().into());
    m.insert(
        "functions".into(),
        r.functions.iter().filter(|f| f.sites > 0).count().into(),
    );
    m.insert("kinds".into(), v(all)?);
    m.insert("main".into(), v(get(Origin::Main))?);
    m.insert("std".into(), v(get(Origin::Std))?);
    m.insert("dep".into(), v(get(Origin::Dependency))?);
    Ok(serde_json::Value::Object(m))
}

/// One cost table as a JSON object.
pub fn cost_table_json(t: &CostTable) -> String {
    serde_json::to_string(t).unwrap_or_else(|_| "null".into())
}
