//! `deferscope explain`: scan, then explain every function and site (why
//! not open-coded, allocations, deferred targets, cost, fix).

use std::io::{self, Write};

use anyhow::{Context, Result};

use crate::cli::{ExplainArgs, OutputFormat};

pub fn run(args: ExplainArgs) -> Result<()> {
    let funcs = args
        .funcs
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("bad --funcs regular expression")?;
    let mapped = deferscope_load::Mapped::open(&args.binary)?;
    let img = mapped.image()?;
    let path = args.binary.display().to_string();
    let ix = deferscope_index::GoIndex::new(&img).with_context(|| path.clone())?;
    let mut report = deferscope_analyze::scan(&path, &img, &ix)?;
    report.retain(|name, origin| {
        !(args.no_std && origin == deferscope_analyze::Origin::Std)
            && funcs.as_ref().is_none_or(|re| re.is_match(name))
    });
    let cost = if args.published_costs {
        deferscope_analyze::cost::CostTable::published()
    } else {
        deferscope_report::explain::load_cost_table()
    };
    let x = deferscope_analyze::explain::explain(&img, &ix, &report, &cost);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Text => deferscope_report::explain::text(&report, &x, &mut out)?,
        OutputFormat::Json => deferscope_report::explain::json(&report, &x, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
