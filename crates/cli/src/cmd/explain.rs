//! `deferscope explain`: scan, then explain every function and site (why
//! not open-coded, allocations, deferred targets, cost, fix).

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::{ExplainArgs, ReportFormat};

pub fn run(args: ExplainArgs) -> Result<()> {
    super::with_scan(&args.common, |img, ix, report| {
        let cost = if args.published_costs {
            deferscope_analyze::cost::CostTable::published()
        } else {
            deferscope_report::explain::load_cost_table()
        };
        let x = deferscope_analyze::explain::explain(img, ix, &report, &cost);
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        match args.common.format {
            ReportFormat::Text => deferscope_report::explain::text(&report, &x, &mut out)?,
            ReportFormat::Json => deferscope_report::explain::json(&report, &x, &mut out)?,
            ReportFormat::Sarif => deferscope_report::sarif::sarif(&report, Some(&x), &mut out)?,
            ReportFormat::Html => {
                deferscope_report::html::report_explained(img, ix, &report, &x, &mut out)?
            }
        }
        out.flush()?;
        Ok(())
    })
}
