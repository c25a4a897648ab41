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
    let cost = if args.published_costs {
        CostTable::published()
    } else {
        cost::load()
    };
    let req = Request {
        explain: Some(&cost),
        verify: None,
    };
    super::report(c, req)
}
