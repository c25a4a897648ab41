//! `deferscope explain`: scan, then explain every function and site (why
//! not open-coded, allocations, deferred targets, cost, fix).

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
    super::analyze(
        &c.binary,
        &c.binary.display().to_string(),
        &filter,
        req,
        |img, ix, a| super::print(&a, c.format, img, ix),
    )
}
