//! The page of many binaries: a binary selector, a summary, and each
//! binary's own report on demand.
//!
//! Design: each binary's part of the one-binary page (its header,
//! summary, table, panels and `#data`, see [`super::write_body`]) is
//! written into a `<template>`, which the browser parses but neither
//! shows nor runs. The page's script (the one-binary page's, kept once as
//! `text/plain`) is run again by a small selector script each time a
//! binary is chosen: the template is cloned into the view and a new
//! inline `<script>` with that text is added after it, so the one
//! script's `#data` and element ids are always the chosen binary's (the
//! Content-Security-Policy allows inline scripts, and still no request).
//! The summary (a table of the binaries, skipped and failed entries) is
//! plain HTML and reads without JavaScript. Each binary's listings come
//! with the budgets its caller gave the [`super::Collector`] (the CLI
//! gives a batch's binaries a share of the one-binary budgets).

use std::fmt::Write as _;
use std::io::{self, Write};

use deferscope_model::batch::Batch;

use super::{esc, page_head, script, write_body};
use crate::batch::Binary;

const BATCH_CSS: &str = r#"
nav.batch { position: sticky; top: 0; z-index: 5; background: var(--card); border-bottom: 1px solid var(--line);
  padding: 8px 24px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
nav.batch label { font-size: 13px; color: var(--muted); }
nav.batch select { max-width: 70vw; }
#batch-summary { margin: 14px 24px; }
#batch-summary td.path { font-family: var(--mono); font-size: 12px; overflow-wrap: anywhere; }
#batch-summary button.pick { font-family: var(--mono); font-size: 12px; text-align: left; background: none;
  border: none; color: var(--accent); cursor: pointer; padding: 0; overflow-wrap: anywhere; }
#batch-summary ul { font-family: var(--mono); font-size: 12px; }
#binary-view header.top .brand { display: none; }
#batch-summary table.grid { table-layout: auto; }
#batch-summary table.grid th { cursor: default; }
#batch-summary table.grid th::after { content: none; }
#batch-summary td.path { width: 50%; }
"#;

const SELECT_JS: &str = r#"(function () {
  'use strict';
  var sel = document.getElementById('binary-select');
  var view = document.getElementById('binary-view');
  var summary = document.getElementById('batch-summary');
  var code = document.getElementById('report-js').textContent;
  function show(v) {
    while (view.firstChild) view.removeChild(view.firstChild);
    var t = v === '' ? null : document.getElementById('b-' + v);
    summary.hidden = !!t;
    delete document.body.dataset.ready;
    if (!t) { document.body.dataset.ready = '1'; return; }
    view.appendChild(document.importNode(t.content, true));
    var s = document.createElement('script');
    s.textContent = code;
    view.appendChild(s);
    window.scrollTo(0, 0);
  }
  sel.addEventListener('change', function () { show(sel.value); });
  document.querySelectorAll('button.pick').forEach(function (b) {
    b.addEventListener('click', function () { sel.value = b.getAttribute('data-b'); show(sel.value); });
  });
  show(sel.value);
})();
"#;

/// Write the page of a batch: see the module docs.
pub fn write_batch(b: &Batch<Binary>, w: &mut impl Write) -> io::Result<()> {
    let t = b.totals();
    let heading = crate::plural(t.binaries, "Go binary", "Go binaries");
    let title = format!("deferscope: {heading}");
    let mut h = page_head(&title, BATCH_CSS);
    h.push_str(
        "<nav class=\"batch\"><div class=\"brand\">deferscope <span>report</span></div>\
         <label>Binary <select id=\"binary-select\" aria-label=\"binary\">\
         <option value=\"\">Summary of all binaries</option>",
    );
    for (i, (e, a)) in b.done().enumerate() {
        let _ = write!(
            h,
            "<option value=\"{i}\">{} ({} sites)</option>",
            esc(&e.path),
            a.analysis.scan.sites.len()
        );
    }
    h.push_str("</select></label></nav>\n<section id=\"batch-summary\" class=\"box\" aria-label=\"summary\">\n");
    let _ = write!(
        h,
        "<h1>{}</h1>\n<p class=\"hint\">Inputs: {}. {} skipped, {} failed; {} other files and {} links not read.</p>\n",
        esc(&heading),
        esc(&b.inputs.join(", ")),
        t.skipped,
        t.failed,
        b.other_files,
        b.links
    );
    h.push_str(
        "<table class=\"grid\"><thead><tr><th>Binary</th><th>Go version</th><th>Platform</th>\
         <th class=\"c-num\">Sites</th><th class=\"c-num\">open-coded</th>\
         <th class=\"c-num\">stack-allocated</th><th class=\"c-num\">heap-allocated</th>\
         <th class=\"c-num\">not open-coded functions</th></tr></thead><tbody>\n",
    );
    for (i, (e, a)) in b.done().enumerate() {
        let s = &a.analysis.scan;
        let (c, _) = s.counts();
        let not_open = a.analysis.explain.as_ref().map_or(0, |x| {
            x.functions.iter().filter(|f| !f.reasons.is_empty()).count()
        });
        let _ = writeln!(
            h,
            "<tr><td class=\"path\"><button type=\"button\" class=\"pick\" data-b=\"{i}\">{}</button></td>\
             <td>{}</td><td>{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{not_open}</td></tr>",
            esc(&e.path),
            esc(s.binary.go_version.as_deref().unwrap_or("unknown")),
            esc(&s.binary.goos),
            esc(s.binary.goarch),
            s.sites.len(),
            c.open_coded,
            c.stack_allocated,
            c.heap_allocated,
        );
    }
    let _ = writeln!(
        h,
        "<tr><td>total</td><td></td><td></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td></td></tr></tbody></table>",
        t.sites, t.kinds.open_coded, t.kinds.stack_allocated, t.kinds.heap_allocated
    );
    for (label, list) in [
        ("Failed", b.failed().collect::<Vec<_>>()),
        ("Skipped", b.skipped().collect::<Vec<_>>()),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(h, "<h2>{label}</h2><ul>");
        for (e, why) in list {
            let _ = write!(h, "<li>{}: {}</li>", esc(&e.path), esc(why));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n<div id=\"binary-view\"></div>\n");
    w.write_all(h.as_bytes())?;
    for (i, (_, a)) in b.done().enumerate() {
        let x = a
            .analysis
            .explain
            .as_ref()
            .ok_or_else(|| io::Error::other("the HTML report needs the explain pass"))?;
        write!(w, "<template id=\"b-{i}\">")?;
        write_body(
            &a.analysis.scan,
            x,
            a.listings.as_ref(),
            a.analysis.profile.as_ref(),
            w,
        )?;
        w.write_all(b"</template>\n")?;
    }
    w.write_all(b"<script type=\"text/plain\" id=\"report-js\">")?;
    w.write_all(script().as_bytes())?;
    w.write_all(b"</script>\n<script>")?;
    w.write_all(SELECT_JS.as_bytes())?;
    w.write_all(b"</script>\n</body>\n</html>\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's script is carried as the text of a `<script>` element:
    /// nothing in it may end that element or open a comment there.
    #[test]
    fn the_carried_script_cannot_close_its_element() {
        for text in [script(), SELECT_JS] {
            let t = text.to_ascii_lowercase();
            assert!(!t.contains("</script") && !t.contains("<!--") && !t.contains("<script"));
        }
    }
}
