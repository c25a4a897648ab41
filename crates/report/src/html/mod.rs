//! `--format html`: one self-contained HTML file for people.
//!
//! What it holds: a header (the binary's headline), summary cards and a
//! chart of sites per kind per package (inline SVG drawn here, readable
//! without JavaScript), a sortable, filterable table of every site, and a
//! panel per function with the explain pass's reasons, targets, costs and
//! fixes and the annotated disassembly of `deferscope disasm --defer-only`.
//!
//! Design:
//!
//! - **Self-contained, offline.** CSS and JavaScript are inlined from
//!   `assets/` (compiled in with `include_str!`); no fonts, images or
//!   scripts are fetched, and a Content-Security-Policy of
//!   `default-src 'none'` forbids the page any request at all.
//! - **Data once, rendered on demand.** The sites and functions are one
//!   JSON document in a `<script type="application/json">` element, with
//!   file and package names interned; the script builds the table rows and
//!   builds a function panel's body (and its disassembly) only when it is
//!   opened. Past [`ROW_LIMIT`] table rows (and 300 function panels) the
//!   rest come in on request; the counts always cover every match.
//! - **Escaping.** Everything that comes from the binary (function names,
//!   file paths, package paths, build settings) goes through [`esc`] in the
//!   HTML and SVG written here, and through `textContent` in the script
//!   (never `innerHTML`). The embedded JSON has `<`, `>` and `&` written as
//!   `\u003c`, `\u003e`, `\u0026`, so no string in it can close the
//!   `<script>` element or open a comment.
//! - **Size.** Disassembly is the bulk. Listings are stored compactly (one
//!   line per instruction: `file:line` only when it changes, the pc as an
//!   offset from the entry, no instruction bytes). Functions are ranked
//!   most severe first (heap sites, stack sites, reasons; main module,
//!   then dependencies, then the standard library). Those whose defers are
//!   not all open-coded get their whole listing within
//!   [`FULL_LISTING_BUDGET`]; the others get an excerpt (the annotated
//!   instructions with one instruction of context either side, and the
//!   count left out) within [`EXCERPT_BUDGET`]; past both, a panel names
//!   the `deferscope disasm --funcs` command instead. So the listings
//!   never pass about 4 MiB whatever the binary; cmd/go's whole page is
//!   about 1.3 MB.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use deferscope_model::cost::CostTable;
use deferscope_model::explain::{Explain, InlineCandidate};
use deferscope_model::{Kind, Origin, Scan};
use serde::Serialize;

use crate::headline;

mod batch;
mod listing;

pub use batch::write_batch;
pub use listing::{Collector, ListingMode, Listings};

/// Bytes of compact listing text given to full listings, over all
/// functions; past it, functions get excerpts.
pub const FULL_LISTING_BUDGET: usize = 2 << 20;

/// Bytes of compact listing text given to excerpts; past it, functions get
/// no listing (the panel names the `deferscope disasm` command instead).
pub const EXCERPT_BUDGET: usize = 2 << 20;

/// Above this many bytes of code a function gets an excerpt even within
/// the budget (about 4,000 instructions).
pub const FULL_LISTING_MAX_FUNC_BYTES: u64 = 16 << 10;

/// Table rows the page renders before it offers "show all"; the counts
/// always cover every match.
pub const ROW_LIMIT: usize = 5000;

const CSS: &str = include_str!("../../assets/report.css");
const JS: &str = include_str!("../../assets/report.js");

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// JSON that is safe inside a `<script>` element: `<`, `>` and `&` (which
/// JSON allows only inside strings) become `\u` escapes.
pub fn script_json<T: Serialize>(v: &T) -> io::Result<String> {
    let s = serde_json::to_string(v).map_err(io::Error::other)?;
    let mut o = String::with_capacity(s.len() + 64);
    for c in s.chars() {
        match c {
            '<' => o.push_str("\\u003c"),
            '>' => o.push_str("\\u003e"),
            '&' => o.push_str("\\u0026"),
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c => o.push(c),
        }
    }
    Ok(o)
}

// ---- the embedded data ----

/// A site: [function, file, line, kind, pc, est_ns, target, via, flags,
/// closure bytes, closure allocator, loop, reasons]. Flags: 1 indirect
/// call, 2 calls recover.
type SiteRow<'a> = (
    usize,
    usize,
    u32,
    u8,
    u64,
    f64,
    Option<&'a str>,
    Option<&'a str>,
    u8,
    Option<u64>,
    Option<&'a str>,
    Option<(usize, u32, u32)>,
    Vec<&'static str>,
);

#[derive(Serialize)]
struct FuncData<'a> {
    /// name, package index, origin, file index, line, entry, size
    n: &'a str,
    p: usize,
    o: &'static str,
    f: usize,
    l: u32,
    e: u64,
    z: u64,
    /// reasons: [code, detail, fix]
    r: Vec<(&'static str, &'a str, &'a str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ret: Option<usize>,
    drb: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    osb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ecb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dc: Option<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rf: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    od: Option<u8>,
    /// listing mode and text
    #[serde(skip_serializing_if = "Option::is_none")]
    dm: Option<ListingMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<&'a str>,
}

#[derive(Serialize)]
struct Data<'a> {
    binary: &'a str,
    goarch: &'a str,
    files: Vec<&'a str>,
    pkgs: Vec<&'a str>,
    funcs: Vec<FuncData<'a>>,
    sites: Vec<SiteRow<'a>>,
    cost: &'a CostTable,
    inline: &'a [InlineCandidate],
    limit: usize,
    listings: bool,
}

#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<&'a str, usize>,
    list: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: &'a str) -> usize {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        self.list.push(s);
        self.ids.insert(s, self.list.len() - 1);
        self.list.len() - 1
    }
}

fn kind_ix(k: Kind) -> u8 {
    match k {
        Kind::OpenCoded => 0,
        Kind::StackAllocated => 1,
        Kind::HeapAllocated => 2,
    }
}

fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Main => "main",
        Origin::Std => "std",
        Origin::Dependency => "dep",
    }
}

/// Index of the function holding each site: by name and pc range (the
/// explain printer's rule), else by name.
fn site_funcs(r: &Scan) -> Vec<Option<usize>> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in r.functions.iter().enumerate() {
        by_name.entry(f.name.as_str()).or_default().push(i);
    }
    r.sites
        .iter()
        .map(|s| {
            let c = by_name.get(s.function.as_str())?;
            c.iter()
                .copied()
                .find(|&i| {
                    let f = &r.functions[i];
                    s.pc >= f.entry && s.pc < f.entry + f.size
                })
                .or_else(|| c.first().copied())
        })
        .collect()
}

fn build_data<'a>(r: &'a Scan, x: &'a Explain, l: Option<&'a Listings>) -> Data<'a> {
    let mut files = Interner::default();
    let mut pkgs = Interner::default();
    let mut funcs: Vec<FuncData<'a>> = Vec::with_capacity(r.functions.len());
    for (i, f) in r.functions.iter().enumerate() {
        let fx = x.functions.get(i);
        let listing = l.and_then(|l| l.by_entry.get(&f.entry));
        funcs.push(FuncData {
            n: &f.name,
            p: pkgs.id(&f.package),
            o: origin_str(f.origin),
            f: files.id(&f.file),
            l: f.line,
            e: f.entry,
            z: f.size,
            r: fx
                .map(|fx| {
                    fx.reason_details
                        .iter()
                        .map(|d| (d.code.as_str(), d.detail.as_str(), d.fix.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
            ret: fx.and_then(|fx| fx.est_returns),
            drb: fx.map_or(0, |fx| fx.defer_record_bytes),
            osb: fx.and_then(|fx| fx.open_slot_bytes),
            ecb: fx.and_then(|fx| fx.exit_code_bytes),
            dc: fx.and_then(|fx| fx.direct_callers),
            rf: f.calls_deferrangefunc,
            od: f.open_coded_defers,
            dm: listing.map(|(m, _)| *m),
            d: listing.map(|(_, s)| s.as_str()),
        });
    }
    // Sites whose function is not in the table (should not happen) get a
    // function entry of their own, so every site has a panel.
    let owners = site_funcs(r);
    let mut extra: HashMap<&str, usize> = HashMap::new();
    let mut sites = Vec::with_capacity(r.sites.len());
    for (j, s) in r.sites.iter().enumerate() {
        let fi = match owners[j] {
            Some(i) => i,
            None => *extra.entry(s.function.as_str()).or_insert_with(|| {
                funcs.push(FuncData {
                    n: &s.function,
                    p: pkgs.id(&s.package),
                    o: origin_str(s.origin),
                    f: files.id(&s.file),
                    l: s.line,
                    e: s.pc,
                    z: 0,
                    r: Vec::new(),
                    ret: None,
                    drb: 0,
                    osb: None,
                    ecb: None,
                    dc: None,
                    rf: false,
                    od: None,
                    dm: None,
                    d: None,
                });
                funcs.len() - 1
            }),
        };
        let sx = x.sites.get(j);
        let file = files.id(&s.file);
        sites.push((
            fi,
            file,
            s.line,
            kind_ix(s.kind),
            s.pc,
            sx.map_or(0.0, |sx| (sx.est_ns * 10.0).round() / 10.0),
            sx.and_then(|sx| sx.deferred_target.as_deref()),
            sx.and_then(|sx| sx.deferred_via.as_deref()),
            sx.map_or(0, |sx| {
                u8::from(sx.deferred_indirect) | (u8::from(sx.calls_recover) << 1)
            }),
            sx.and_then(|sx| sx.heap_closure_bytes),
            sx.and_then(|sx| sx.heap_closure_allocator.as_deref()),
            sx.and_then(|sx| sx.loop_lines.as_ref())
                .map(|lp| (files.id(&lp.file), lp.first_line, lp.last_line)),
            sx.map(|sx| sx.reasons.iter().map(|c| c.as_str()).collect())
                .unwrap_or_default(),
        ));
    }
    Data {
        binary: &r.binary.path,
        goarch: r.binary.goarch,
        files: files.list,
        pkgs: pkgs.list,
        funcs,
        sites,
        cost: &x.cost_table,
        inline: &x.inline_candidates,
        limit: ROW_LIMIT,
        listings: l.is_some(),
    }
}

// ---- the static parts ----

/// Kind colours (fill), shared by the chart and the stylesheet.
const KIND_COLOURS: [&str; 3] = ["#6cbf94", "#e9b04f", "#e0665f"];

/// Rows of the package chart before the rest is summed into one.
const CHART_ROWS: usize = 15;

/// Width of the chart's label column (user units, 1 px at full size); a
/// label ends 10 units left of the bars.
const LABEL_W: f64 = 300.0;

/// Characters of a label that fit in its column: 12 px monospace text is
/// about 0.6 em a character (DejaVu Sans Mono, Liberation Mono, Menlo:
/// 0.60 to 0.602), so 38 characters take at most 38 x 7.44 = 283 of the
/// 288 units between the chart's edge and the label's anchor. The page's
/// script shortens a label further if its font is wider.
const LABEL_CHARS: usize = 38;

/// A package path as the chart shows it: whole when it fits in `max`
/// characters, else its end after an ellipsis, from a `/` when one leaves
/// at least half of the room (`…/certificates/authority`), so a label
/// never runs past the chart's left edge; the full path is in the bar's
/// `<title>`.
fn chart_label(name: &str, max: usize) -> String {
    let n = name.chars().count();
    if n <= max {
        return name.to_owned();
    }
    let tail: String = name.chars().skip(n - (max - 1)).collect();
    let cut = tail
        .char_indices()
        .find(|&(i, c)| c == '/' && i > 0 && tail[i..].chars().count() >= max / 2)
        .map_or(0, |(i, _)| i);
    format!("\u{2026}{}", &tail[cut..])
}

fn chart_svg(r: &Scan) -> String {
    let per = r.per_package();
    let mut rows: Vec<(String, [usize; 3], bool)> = per
        .iter()
        .map(|(p, c)| {
            (
                (*p).to_owned(),
                [c.open_coded, c.stack_allocated, c.heap_allocated],
                false,
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        let ta: usize = a.1.iter().sum();
        let tb: usize = b.1.iter().sum();
        tb.cmp(&ta).then(a.0.cmp(&b.0))
    });
    if rows.len() > CHART_ROWS + 1 {
        let rest = rows.split_off(CHART_ROWS);
        let mut sum = [0usize; 3];
        for (_, c, _) in &rest {
            for k in 0..3 {
                sum[k] += c[k];
            }
        }
        rows.push((format!("{} more packages", rest.len()), sum, true));
    }
    let max = rows
        .iter()
        .map(|(_, c, _)| c.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_w, bar_w, num_w, row_h) = (LABEL_W, 520.0, 60.0, 22.0);
    let width = label_w + bar_w + num_w;
    let height = row_h * rows.len() as f64 + 4.0;
    let mut s = String::new();
    // data-label-room: the room a label has left of its anchor, which the
    // page's script checks with the font it got (see `LABEL_CHARS`).
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" data-label-room="{}" role="img" aria-label="defer sites per kind per package">"#,
        label_w - 12.0
    );
    for (i, (name, c, rest)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let total: usize = c.iter().sum();
        let shown = chart_label(name, LABEL_CHARS);
        let attr = if *rest {
            String::new()
        } else {
            format!(r#" data-pkg="{}""#, esc(name))
        };
        let _ = write!(
            s,
            r#"<g class="bar{}"{attr}><title>{}: {} open-coded, {} stack-allocated, {} heap-allocated</title>"#,
            if *rest { " rest" } else { "" },
            esc(name),
            c[0],
            c[1],
            c[2]
        );
        let _ = write!(
            s,
            r#"<rect class="hit" x="0" y="{y}" width="{width}" height="{row_h}"/><text class="lbl" x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 10.0,
            y + 15.0,
            esc(&shown)
        );
        let mut x = label_w;
        for (k, colour) in KIND_COLOURS.iter().enumerate() {
            if c[k] == 0 {
                continue;
            }
            let w = (c[k] as f64 / max as f64 * bar_w).max(1.5);
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{}" width="{w:.1}" height="{}" fill="{colour}"/>"#,
                y + 4.0,
                row_h - 8.0
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<text class="num" x="{:.1}" y="{}">{total}</text></g>"#,
            x + 6.0,
            y + 15.0
        );
    }
    s.push_str("</svg>");
    s
}

fn card(class: &str, label: &str, value: usize, sub: &str) -> String {
    format!(
        r#"<div class="card {class}"><div class="v">{value}</div><div class="l">{}</div><div class="s">{}</div></div>"#,
        esc(label),
        esc(sub)
    )
}

fn pct(n: usize, total: usize) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.0}% of sites", n as f64 * 100.0 / total as f64)
    }
}

/// Write the page. `listings` is `None` when no disassembly is wanted.
pub fn write(
    r: &Scan,
    x: &Explain,
    listings: Option<&Listings>,
    w: &mut impl Write,
) -> io::Result<()> {
    write_page(r, x, listings, None, w)
}

/// Write the page, with a profile's shares per function and site
/// ([`crate::profile::html_section`]) when there is one.
pub fn write_page(
    r: &Scan,
    x: &Explain,
    listings: Option<&Listings>,
    profile: Option<&deferscope_model::profile::Attribution>,
    w: &mut impl Write,
) -> io::Result<()> {
    let b = &r.binary;
    let title = format!(
        "deferscope: {}",
        b.path.rsplit(['/', '\\']).next().unwrap_or(&b.path)
    );
    w.write_all(page_head(&title, "").as_bytes())?;
    write_body(r, x, listings, profile, w)?;
    w.write_all(b"<script>")?;
    w.write_all(JS.as_bytes())?;
    w.write_all(b"</script>\n</body>\n</html>\n")?;
    Ok(())
}

/// The page's script, which builds the table and the panels from the
/// `#data` element in the document.
pub(crate) fn script() -> &'static str {
    JS
}

/// From the doctype to `<body>`: `title`, the stylesheet and `extra_css`.
pub(crate) fn page_head(title: &str, extra_css: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="generator" content="deferscope {ver}">
<title>{title}</title>
<style>{CSS}{extra_css}</style>
</head>
<body>
"#,
        ver = env!("CARGO_PKG_VERSION"),
        title = esc(title),
    )
}

/// One binary's part of the page: its header, summary, table and panels,
/// and its data (`<script type="application/json" id="data">`), which
/// the page's script reads.
pub(crate) fn write_body(
    r: &Scan,
    x: &Explain,
    listings: Option<&Listings>,
    profile: Option<&deferscope_model::profile::Attribution>,
    w: &mut impl Write,
) -> io::Result<()> {
    let data = build_data(r, x, listings);
    let json = script_json(&data)?;
    let mut h = String::with_capacity(json.len() + 64 * 1024);
    header_html(r, &mut h);
    summary_html(r, x, &mut h);
    if let Some(p) = profile {
        h.push_str(&crate::profile::html_section(p));
    }
    h.push_str(SITES_AND_FUNCTIONS);
    let _ = write!(
        h,
        r#"{} · {} · self-contained: no network access</footer>
<script type="application/json" id="data">"#,
        env!("CARGO_PKG_VERSION"),
        esc(&headline(r)),
    );
    w.write_all(h.as_bytes())?;
    w.write_all(json.as_bytes())?;
    w.write_all(b"</script>\n")?;
    Ok(())
}

/// The page's header: the binary's path and its facts as chips.
fn header_html(r: &Scan, h: &mut String) {
    let b = &r.binary;
    let _ = write!(
        h,
        r#"<header class="top">
<div class="brand">deferscope <span>report</span></div>
<h1 title="{path}">{path}</h1>
<div class="meta">"#,
        path = esc(&b.path),
    );
    let mut chips: Vec<String> = vec![
        b.go_version
            .clone()
            .unwrap_or_else(|| "go version unknown".into()),
        format!("{}/{}", b.goos, b.goarch),
        match b.format {
            "elf" => "ELF",
            "pe" => "PE",
            _ => "Mach-O",
        }
        .to_owned()
            + if b.pie { " PIE" } else { "" },
        if b.stripped {
            "stripped".into()
        } else {
            "not stripped".into()
        },
    ];
    if let Some(m) = &b.main_module {
        chips.push(format!("main module {m}"));
    }
    if let Some(g) = &b.gopath_build {
        chips.push(crate::gopath_words(g)[2..].to_owned());
    }
    chips.push(format!("{} functions in the binary", b.functions));
    for c in chips {
        let _ = write!(h, "<span>{}</span>", esc(&c));
    }
}

/// The summary: the cards, the chart per package, the table by origin
/// and the cost per executed defer.
fn summary_html(r: &Scan, x: &Explain, h: &mut String) {
    let (all, by) = r.counts();
    let nfuncs = r.functions.iter().filter(|f| f.sites > 0).count();
    let not_open = x.functions.iter().filter(|f| !f.reasons.is_empty()).count();
    let _ = write!(
        h,
        r#"</div>
</header>
<main>
<noscript><p class="note">The summary below works without JavaScript; the table of sites and the function panels need it.</p></noscript>
<section class="summary" aria-label="summary">
<div class="cards">"#
    );
    h.push_str(&card(
        "total",
        "defer sites",
        r.sites.len(),
        &format!("in {nfuncs} function{}", if nfuncs == 1 { "" } else { "s" }),
    ));
    for (k, cls) in Kind::ALL.iter().zip(["k0", "k1", "k2"]) {
        h.push_str(&card(
            cls,
            k.as_str(),
            all.get(*k),
            &pct(all.get(*k), r.sites.len()),
        ));
    }
    h.push_str(&card(
        "why",
        "not open-coded",
        not_open,
        "functions with a reason",
    ));
    h.push_str("</div>\n<div class=\"panels\">\n<figure class=\"box\"><figcaption>Defer sites per package <span class=\"legend\">");
    for (k, colour) in Kind::ALL.iter().zip(KIND_COLOURS) {
        let _ = write!(
            h,
            r#"<span><i style="background:{colour}"></i>{}</span>"#,
            k.as_str()
        );
    }
    h.push_str("</span></figcaption>\n");
    h.push_str(&chart_svg(r));
    h.push_str("</figure>\n<div class=\"box origins\"><h2>By origin</h2><table class=\"mini\"><thead><tr><th></th><th>sites</th>");
    let origins: Vec<Origin> = by.keys().copied().collect();
    for o in &origins {
        let _ = write!(h, "<th>{}</th>", esc(crate::origin_label(*o, &r.binary)));
    }
    h.push_str("</tr></thead><tbody>");
    for (k, cls) in Kind::ALL.iter().zip(["k0", "k1", "k2"]) {
        let _ = write!(
            h,
            r#"<tr><td><span class="kind {cls}">{}</span></td><td>{}</td>"#,
            k.as_str(),
            all.get(*k)
        );
        for o in &origins {
            let _ = write!(h, "<td>{}</td>", by[o].get(*k));
        }
        h.push_str("</tr>");
    }
    let t = &x.cost_table;
    let _ = write!(
        h,
        r#"</tbody></table>
<h2>Cost per executed defer</h2>
<table class="mini"><tbody>
<tr><td><span class="kind k0">open-coded</span></td><td>{}</td></tr>
<tr><td><span class="kind k1">stack-allocated</span></td><td>{}</td></tr>
<tr><td><span class="kind k2">heap-allocated</span></td><td>{}</td></tr>
{}</tbody></table>
<p class="src">costs: {}</p>
</div>
</div>
</section>
"#,
        ns(t.open_coded_ns),
        ns(t.stack_allocated_ns),
        ns(t.heap_allocated_ns),
        t.heap_closure_ns
            .map(|v| format!(
                "<tr><td><span class=\"kind k2\">heap + closure</span></td><td>{}</td></tr>\n",
                ns(v)
            ))
            .unwrap_or_default(),
        esc(&t.source),
    );
}

/// The table of sites with its filters and the functions' panels (filled
/// by the page's script from the data), and the footer's start.
const SITES_AND_FUNCTIONS: &str = r#"<section class="box sites" aria-label="defer sites">
<div class="toolbar">
<h2>Defer sites</h2>
<input id="f-q" type="search" placeholder="Filter by function, file or package" aria-label="filter text">
<select id="f-kind" aria-label="kind"><option value="">all kinds</option><option value="0">open-coded</option><option value="1">stack-allocated</option><option value="2">heap-allocated</option></select>
<select id="f-origin" aria-label="origin"><option value="">all origins</option><option value="main">main module</option><option value="std">standard library</option><option value="dep">dependencies</option></select>
<select id="f-reason" aria-label="reason"><option value="">any reason</option></select>
<select id="f-pkg" aria-label="package"><option value="">all packages</option></select>
<button id="f-reset" type="button">Reset</button>
<span id="count" class="count" aria-live="polite"></span>
</div>
<div class="tablewrap">
<table id="sites" class="grid">
<thead><tr>
<th data-key="kind" aria-sort="none" class="c-kind">Kind</th>
<th data-key="func" aria-sort="none">Function</th>
<th data-key="loc" aria-sort="none">Location</th>
<th data-key="pkg" aria-sort="none">Package</th>
<th data-key="why" aria-sort="none">Why not open-coded</th>
<th data-key="target" aria-sort="none">Deferred call</th>
<th data-key="ns" aria-sort="none" class="c-num">Cost</th>
</tr></thead>
<tbody></tbody>
</table>
</div>
<div id="more-sites" class="more"></div>
</section>
<section class="box funcs" aria-label="functions">
<div class="toolbar"><h2>Functions</h2><span class="hint">Functions with a matching site; open one for its reasons and annotated disassembly.</span><span id="fcount" class="count"></span></div>
<div id="funcs"></div>
<div id="more-funcs" class="more"></div>
</section>
</main>
<footer>Generated by deferscope "#;

fn ns(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0} ns")
    } else {
        format!("{x:.1} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_labels_fit_their_column() {
        assert_eq!(chart_label("runtime", 38), "runtime");
        let p = "github.com/smallstep/certificates/authority";
        let l = chart_label(p, 38);
        assert_eq!(l, "\u{2026}/smallstep/certificates/authority");
        assert!(l.chars().count() <= 38);
        // No '/' that leaves half the room: cut inside the element.
        let l = chart_label(
            "example.com/averyveryveryveryveryveryverylongelementname",
            38,
        );
        assert_eq!(l.chars().count(), 38);
        assert!(l.ends_with("longelementname"));
        // Multi-byte characters count as one.
        let l = chart_label(&"é".repeat(50), 38);
        assert_eq!(l.chars().count(), 38);
    }

    #[test]
    fn esc_covers_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn script_json_cannot_close_the_script() {
        let s = script_json(&vec!["</script><script>alert(1)</script>", "<!--", "a&b"]).unwrap();
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: Vec<String> = serde_json::from_str(&s).unwrap();
        assert_eq!(back[0], "</script><script>alert(1)</script>");
        assert_eq!(back[1], "<!--");
        assert_eq!(back[2], "a&b");
    }
}
