//! `deferscope scan`: list every defer site (`--explain`: with reasons,
//! targets and costs, as `deferscope explain` prints them).

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::{OutputFormat, ScanArgs};

pub fn run(args: ScanArgs) -> Result<()> {
    super::with_scan(&args.common, |img, ix, report| {
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        if args.explain {
            let cost = deferscope_report::explain::load_cost_table();
            let x = deferscope_analyze::explain::explain(img, ix, &report, &cost);
            match args.common.format {
                OutputFormat::Text => deferscope_report::explain::text(&report, &x, &mut out)?,
                OutputFormat::Json => deferscope_report::explain::json(&report, &x, &mut out)?,
            }
        } else {
            match args.common.format {
                OutputFormat::Text => deferscope_report::text(&report, &mut out)?,
                OutputFormat::Json => deferscope_report::json(&report, &mut out)?,
            }
        }
        out.flush()?;
        Ok(())
    })
}
