//! `deferscope profile`: a profile's samples attributed to the defer
//! sites, as text, as JSON (`docs/json.md`, "deferscope profile") and as a
//! section of the HTML page.
//!
//! [`crate::write`] dispatches here when the analysis has a profile
//! (`Analysis::profile`); the HTML page adds [`html_section`] to the
//! report it always shows.

use std::fmt::Write as _;
use std::io::{self, Write};

use deferscope_model::profile::{Attribution, Phases};
use deferscope_model::Scan;
use serde::Serialize;

use crate::html::esc;

/// A value in the profile's unit, for people: `1.25s`, `3.4MB`, `120`.
pub fn amount(v: i64, unit: &str) -> String {
    let f = v as f64;
    match unit {
        "nanoseconds" => {
            if v.abs() >= 1_000_000_000 {
                format!("{:.2}s", f / 1e9)
            } else if v.abs() >= 1_000_000 {
                format!("{:.1}ms", f / 1e6)
            } else if v.abs() >= 1_000 {
                format!("{:.1}us", f / 1e3)
            } else {
                format!("{v}ns")
            }
        }
        "bytes" => {
            if v.abs() >= 1 << 30 {
                format!("{:.2}GB", f / f64::from(1u32 << 30))
            } else if v.abs() >= 1 << 20 {
                format!("{:.1}MB", f / f64::from(1u32 << 20))
            } else if v.abs() >= 1 << 10 {
                format!("{:.1}kB", f / 1024.0)
            } else {
                format!("{v}B")
            }
        }
        _ => format!("{v}"),
    }
}

/// `part` as a percentage of `whole`.
pub fn share(part: i64, whole: i64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn phases_text(p: &Phases, unit: &str) -> String {
    format!(
        "register {}, run {}, panic {}",
        amount(p.register, unit),
        amount(p.run, unit),
        amount(p.panic, unit)
    )
}

/// The text report.
pub fn text(scan: &Scan, a: &Attribution, w: &mut impl Write) -> io::Result<()> {
    let u = a.unit.as_str();
    writeln!(w, "{}", crate::headline(scan))?;
    for (p, m) in a.profiles.iter().zip(&a.matched) {
        let how = match m.by {
            "symbols" => format!(
                "matched by symbols ({} of {} names agree)",
                m.agreed, m.checked
            ),
            "forced" => "NOT matched (--force)".to_owned(),
            by => format!("matched by {by}"),
        };
        writeln!(w, "profile {p}: {how}, load bias {:#x}", m.bias)?;
    }
    writeln!(
        w,
        "{} ({}): {} in {} sample records",
        a.sample_type,
        u,
        amount(a.total_samples, u),
        a.sample_records
    )?;
    writeln!(
        w,
        "defer machinery: {} ({} of all; {})",
        amount(a.machinery_samples, u),
        share(a.machinery_samples, a.total_samples),
        phases_text(&a.phases, u)
    )?;
    writeln!(
        w,
        "deferred calls:  {} ({} of all)",
        amount(a.deferred_call_samples, u),
        share(a.deferred_call_samples, a.total_samples)
    )?;
    if a.unattributed_machinery_samples != 0 {
        writeln!(
            w,
            "machinery caused outside the reported functions: {}",
            amount(a.unattributed_machinery_samples, u)
        )?;
    }
    if let Some(x) = &a.allocs {
        writeln!(
            w,
            "allocated by the machinery: {} _defer records ({}), {} closures ({})",
            x.defer_records,
            amount(x.defer_record_bytes, "bytes"),
            x.closures,
            amount(x.closure_bytes, "bytes")
        )?;
    }
    for f in a
        .functions
        .iter()
        .filter(|f| f.machinery_samples != 0 || f.deferred_call_samples != 0)
    {
        writeln!(w)?;
        writeln!(
            w,
            "{} ({}:{}): {} on stack, machinery {} ({} of the function, {} of all), deferred calls {}",
            f.function,
            base(&f.file),
            f.line,
            amount(f.samples, u),
            amount(f.machinery_samples, u),
            share(f.machinery_samples, f.samples),
            share(f.machinery_samples, a.total_samples),
            amount(f.deferred_call_samples, u)
        )?;
        for s in &f.sites {
            let mut line = format!(
                "  {}:{}: {} defer: machinery {} ({}), deferred call {}",
                base(&s.file),
                s.line,
                s.kind,
                amount(s.machinery_samples, u),
                share(s.machinery_samples, a.total_samples),
                amount(s.deferred_call_samples, u)
            );
            if let Some(x) = &s.allocs {
                let _ = write!(
                    line,
                    "; allocated {} _defer records ({}), {} closures ({})",
                    x.defer_records,
                    amount(x.defer_record_bytes, "bytes"),
                    x.closures,
                    amount(x.closure_bytes, "bytes")
                );
            }
            if !s.reasons.is_empty() {
                let r: Vec<&str> = s.reasons.iter().map(|r| r.as_str()).collect();
                let _ = write!(line, "; why: {}", r.join(", "));
            }
            writeln!(w, "{line}")?;
            if let Some(fix) = &s.fix {
                writeln!(w, "    fix: {fix}")?;
            }
        }
        if f.unattributed_machinery_samples != 0 {
            writeln!(
                w,
                "  (not one site's: {} of deferreturn or panics over several sites)",
                amount(f.unattributed_machinery_samples, u)
            )?;
        }
    }
    if !a.runtime_functions.is_empty() {
        writeln!(w)?;
        writeln!(w, "runtime defer functions (flat, cum):")?;
        for r in &a.runtime_functions {
            writeln!(
                w,
                "  {:<40} {:>12} {:>12}",
                r.function,
                amount(r.flat, u),
                amount(r.cum, u)
            )?;
        }
    }
    Ok(())
}

fn base(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

/// The JSON document (`docs/json.md`, "deferscope profile").
pub fn json(scan: &Scan, a: &Attribution, w: &mut impl Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        schema_version: u32,
        binary: &'a deferscope_model::BinaryInfo,
        #[serde(flatten)]
        attribution: &'a Attribution,
    }
    serde_json::to_writer_pretty(
        &mut *w,
        &Doc {
            schema_version: crate::JSON_SCHEMA_VERSION,
            binary: &scan.binary,
            attribution: a,
        },
    )?;
    writeln!(w)
}

/// The HTML page's profile section: cards and a table of the functions
/// and sites with their shares (no script needed).
pub fn html_section(a: &Attribution) -> String {
    let u = a.unit.as_str();
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<section class="box profile" aria-label="profile">
<h2>Profile: {st} ({unit})</h2>
<p class="src">{files}</p>
<table class="mini"><tbody>
<tr><td>total</td><td>{total}</td><td></td></tr>
<tr><td>defer machinery</td><td>{mach}</td><td>{mshare}</td></tr>
<tr><td>deferred calls</td><td>{def}</td><td>{dshare}</td></tr>
<tr><td>machinery by phase</td><td colspan="2">{phases}</td></tr>
</tbody></table>
<table class="grid" id="profile-functions"><thead><tr><th>Function / site</th><th>Kind</th><th class="c-num">On stack</th><th class="c-num">Machinery</th><th class="c-num">Share of all</th><th class="c-num">Deferred call</th><th>Why</th></tr></thead><tbody>
"#,
        st = esc(&a.sample_type),
        unit = esc(u),
        files = esc(&a.profiles.join(", ")),
        total = esc(&amount(a.total_samples, u)),
        mach = esc(&amount(a.machinery_samples, u)),
        mshare = share(a.machinery_samples, a.total_samples),
        def = esc(&amount(a.deferred_call_samples, u)),
        dshare = share(a.deferred_call_samples, a.total_samples),
        phases = esc(&phases_text(&a.phases, u)),
    );
    for f in a.functions.iter().take(500) {
        let _ = writeln!(
            h,
            r#"<tr class="pf"><td>{}</td><td></td><td class="c-num">{}</td><td class="c-num">{}</td><td class="c-num">{}</td><td class="c-num">{}</td><td></td></tr>"#,
            esc(&f.function),
            esc(&amount(f.samples, u)),
            esc(&amount(f.machinery_samples, u)),
            share(f.machinery_samples, a.total_samples),
            esc(&amount(f.deferred_call_samples, u)),
        );
        for s in &f.sites {
            let r: Vec<&str> = s.reasons.iter().map(|r| r.as_str()).collect();
            let _ = writeln!(
                h,
                r#"<tr class="ps"><td>&nbsp;&nbsp;{}:{}</td><td>{}</td><td></td><td class="c-num">{}</td><td class="c-num">{}</td><td class="c-num">{}</td><td>{}</td></tr>"#,
                esc(base(&s.file)),
                s.line,
                s.kind,
                esc(&amount(s.machinery_samples, u)),
                share(s.machinery_samples, a.total_samples),
                esc(&amount(s.deferred_call_samples, u)),
                esc(&r.join(", ")),
            );
        }
    }
    h.push_str("</tbody></table>\n</section>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(amount(1_500_000_000, "nanoseconds"), "1.50s");
        assert_eq!(amount(2_500_000, "nanoseconds"), "2.5ms");
        assert_eq!(amount(3 << 20, "bytes"), "3.0MB");
        assert_eq!(amount(7, "count"), "7");
        assert_eq!(share(1, 4), "25.0%");
        assert_eq!(share(1, 0), "-");
    }
}
