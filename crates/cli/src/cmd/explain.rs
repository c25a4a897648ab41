//! `deferscope explain`: scan, then explain every function and site (why
//! not open-coded, allocations, deferred targets, cost, fix). Several
//! paths, a directory or an image make one report of many binaries
//! ([`super::batch`]).

use anyhow::Result;
use deferscope_analyze::cost::{self, CostTable};
use deferscope_analyze::Request;

use crate::cli::ExplainArgs;

pub fn run(args: ExplainArgs) -> Result<()> {
    let c = &args.common;
    let filter = c.filter.filter()?;
    let cost = if args.published_costs {
        CostTable::published()
    } else {
        cost::load()
    };
    let req = Request {
        explain: Some(&cost),
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
