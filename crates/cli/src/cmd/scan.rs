//! `deferscope scan`: list every defer site (`--explain`: with reasons,
//! targets and costs, as `deferscope explain` prints them). Several
//! paths, a directory or an image make one report of many binaries
//! ([`super::batch`]).

use anyhow::Result;
use deferscope_analyze::Request;

use crate::cli::{ReportFormat, ScanArgs};

pub fn run(args: ScanArgs) -> Result<()> {
    let c = &args.common;
    // The HTML page always carries the explain pass.
    let cost =
        (args.explain || c.format == ReportFormat::Html).then(deferscope_analyze::cost::load);
    let req = Request {
        explain: cost.as_ref(),
        verify: None,
    };
    super::report(c, req)
}
