//! `deferscope scan`: list every defer site.

use std::io::{self, Write};

use anyhow::{Context, Result};

use crate::cli::{OutputFormat, ScanArgs};

pub fn run(args: ScanArgs) -> Result<()> {
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
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.explain {
        let cost = deferscope_report::explain::load_cost_table();
        let x = deferscope_analyze::explain::explain(&img, &ix, &report, &cost);
        match args.format {
            OutputFormat::Text => deferscope_report::explain::text(&report, &x, &mut out)?,
            OutputFormat::Json => deferscope_report::explain::json(&report, &x, &mut out)?,
        }
        out.flush()?;
        return Ok(());
    }
    match args.format {
        OutputFormat::Text => deferscope_report::text(&report, &mut out)?,
        OutputFormat::Json => deferscope_report::json(&report, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
