//! `deferscope scan`: list every defer site (`--explain`: with reasons,
//! targets and costs, as `deferscope explain` prints them).

use std::io::{self, Write};

use anyhow::Result;
use deferscope_analyze::Report;
use deferscope_index::GoIndex;
use deferscope_load::Image;

use crate::cli::{ReportFormat, ScanArgs};

pub fn run(args: ScanArgs) -> Result<()> {
    super::with_scan(&args.common, |img, ix, report| {
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        print(args.common.format, args.explain, img, ix, &report, &mut out)?;
        out.flush()?;
        Ok(())
    })
}

/// Print a scan in `format`, explained when `explain` (SARIF results then
/// carry the reasons); shared by `scan` and `check`.
pub fn print(
    format: ReportFormat,
    explain: bool,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    report: &Report,
    out: &mut impl Write,
) -> Result<()> {
    if explain {
        let cost = deferscope_report::explain::load_cost_table();
        let x = deferscope_analyze::explain::explain(img, ix, report, &cost);
        match format {
            ReportFormat::Text => deferscope_report::explain::text(report, &x, out)?,
            ReportFormat::Json => deferscope_report::explain::json(report, &x, out)?,
            ReportFormat::Sarif => deferscope_report::sarif::sarif(report, Some(&x), out)?,
            ReportFormat::Html => {
                deferscope_report::html::report_explained(img, ix, report, &x, out)?
            }
        }
    } else {
        match format {
            ReportFormat::Text => deferscope_report::text(report, out)?,
            ReportFormat::Json => deferscope_report::json(report, out)?,
            ReportFormat::Sarif => deferscope_report::sarif::sarif(report, None, out)?,
            ReportFormat::Html => {
                let cost = deferscope_report::explain::load_cost_table();
                deferscope_report::html::report(img, ix, report, &cost, out)?
            }
        }
    }
    Ok(())
}
