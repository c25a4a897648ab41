//! `deferscope diff OLD NEW`: added, removed and changed defer sites
//! between two builds (see `deferscope_report::diff` for the matching).
//! Each side is a Go binary (scanned and explained, so changes carry
//! reasons) or a saved `scan`/`explain --format json` document.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use deferscope_analyze::Origin;
use deferscope_index::GoIndex;
use deferscope_report::diff::{self, Side};

use crate::cli::{DiffArgs, OutputFormat};
use crate::progress::Progress;

fn load(path: &Path, args: &DiffArgs, p: &Progress) -> Result<Side> {
    let shown = path.display().to_string();
    let head = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).with_context(|| shown.clone())?;
        let mut b = [0u8; 64];
        let n = f.read(&mut b).with_context(|| shown.clone())?;
        b[..n].to_vec()
    };
    let funcs = super::funcs_regex(args.funcs.as_deref())?;
    let keep = |name: &str, origin: Origin| {
        !(args.no_std && origin == Origin::Std) && funcs.as_ref().is_none_or(|re| re.is_match(name))
    };
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let text = std::fs::read_to_string(path).with_context(|| shown.clone())?;
        let mut side = Side::from_json(&text).with_context(|| shown.clone())?;
        let std = std_functions(&text);
        side.retain(|name| {
            keep(
                name,
                if std.contains(name) {
                    Origin::Std
                } else {
                    Origin::Main
                },
            )
        });
        return Ok(side);
    }
    p.step(format!("scanning {shown}"));
    let mapped = deferscope_load::Mapped::open(path)?;
    let img = mapped.image()?;
    let ix = GoIndex::new(&img).with_context(|| shown.clone())?;
    let mut report = deferscope_analyze::scan(&shown, &img, &ix)?;
    report.retain(keep);
    p.step(format!("explaining {shown}"));
    let cost = deferscope_report::explain::load_cost_table();
    let x = deferscope_analyze::explain::explain(&img, &ix, &report, &cost);
    Ok(Side::from_report(&report, Some(&x)))
}

/// Names of the standard-library functions of a saved JSON report.
fn std_functions(text: &str) -> std::collections::HashSet<String> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    v.get("sites")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .filter(|s| s.get("origin").and_then(|o| o.as_str()) == Some("std"))
        .filter_map(|s| s.get("function")?.as_str().map(str::to_owned))
        .collect()
}

pub fn run(args: DiffArgs) -> Result<()> {
    let p = Progress::start("reading");
    let old = load(&args.old, &args, &p)?;
    let new = load(&args.new, &args, &p)?;
    drop(p);
    let d = diff::diff(&old, &new);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Text => diff::text(&old, &new, &d, &args.fail_on, &mut out)?,
        OutputFormat::Json => diff::json(&old, &new, &d, &args.fail_on, &mut out)?,
    }
    out.flush()?;
    if !d.failed(&args.fail_on).is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
