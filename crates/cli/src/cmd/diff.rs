//! `deferscope diff OLD NEW`: added, removed and changed defer sites
//! between two builds (see `deferscope_analyze::diff` for the matching).
//! Each side is a Go binary (scanned and explained, so changes carry
//! reasons) or a saved `scan`/`explain --format json` document; two
//! directories or images are compared binary by binary
//! ([`super::batch::diff`]).

use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use deferscope_analyze::diff;
use deferscope_analyze::{Filter, Origin, Request};
use deferscope_model::diff::Side;

use crate::cli::{DiffArgs, OutputFormat};
use crate::progress::Progress;

fn load(path: &Path, filter: &Filter, p: &Progress) -> Result<Side> {
    let shown = path.display().to_string();
    let head = {
        let mut f = std::fs::File::open(path).with_context(|| shown.clone())?;
        let mut b = [0u8; 64];
        let n = f.read(&mut b).with_context(|| shown.clone())?;
        b[..n].to_vec()
    };
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let text = std::fs::read_to_string(path).with_context(|| shown.clone())?;
        let mut side = diff::side_from_json(&text).with_context(|| shown.clone())?;
        let std = std_functions(&text);
        side.retain(|name| {
            let origin = if std.contains(name) {
                Origin::Std
            } else {
                Origin::Main
            };
            filter.keeps(name, origin)
        });
        return Ok(side);
    }
    p.step(format!("scanning {shown}"));
    let cost = deferscope_analyze::cost::load();
    let req = Request {
        explain: Some(&cost),
        verify: None,
    };
    super::analyze(path, &shown, filter, req, |_, _, a| {
        Ok(diff::side_of(&a.scan, a.explain.as_ref()))
    })
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
    let filter = args.filter.filter()?;
    let many = [&args.old, &args.new].map(|p| deferscope_inputs::is_batch_input(p));
    match many {
        [true, true] => {
            return super::batch::diff(
                &args.old,
                &args.new,
                &filter,
                &args.fail_on,
                args.format == OutputFormat::Json,
                args.jobs,
            )
        }
        [true, false] | [false, true] => anyhow::bail!(
            "{} is a directory or image and {} is not: compare two binaries (or saved \
             reports), or two directories or images",
            if many[0] { &args.old } else { &args.new }.display(),
            if many[0] { &args.new } else { &args.old }.display(),
        ),
        _ => {}
    }
    let p = Progress::start("reading");
    let old = load(&args.old, &filter, &p)?;
    let new = load(&args.new, &filter, &p)?;
    drop(p);
    let d = diff::diff(&old, &new);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Text => {
            deferscope_report::diff::text(&old, &new, &d, &args.fail_on, &mut out)?
        }
        OutputFormat::Json => {
            deferscope_report::diff::json(&old, &new, &d, &args.fail_on, &mut out)?
        }
    }
    out.flush()?;
    if !d.failed(&args.fail_on).is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
