//! `deferscope scan`: list every defer site (`--explain`: with reasons,
//! targets and costs, as `deferscope explain` prints them). Several
//! paths, a directory or an image make one report of many binaries
//! ([`super::batch`]).

use anyhow::Result;
use deferscope_analyze::Request;

use crate::cli::{ReportFormat, ScanArgs};

pub fn run(args: ScanArgs) -> Result<()> {
    let c = &args.common;
    let filter = c.filter.filter()?;
    // The HTML page always carries the explain pass.
    let cost =
        (args.explain || c.format == ReportFormat::Html).then(deferscope_analyze::cost::load);
    let req = Request {
        explain: cost.as_ref(),
        verify: None,
    };
    if super::batch::is_batch(&c.paths) {
        return super::batch::report(&c.paths, c.format, &filter, req, c.jobs);
    }
    let binary = &c.paths[0];
    super::analyze(
        binary,
        &binary.display().to_string(),
        &filter,
        req,
        |img, ix, a| super::print(&a, c.format, img, ix),
    )
}
