//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod bench;
pub mod check;
pub mod diff;
pub mod disasm;
pub mod explain;
pub mod scan;
pub mod trace;

use anyhow::{Context, Result};
use deferscope_analyze::{Origin, Report};
use deferscope_index::GoIndex;
use deferscope_load::Image;

/// Compile a `--funcs` regular expression.
pub fn funcs_regex(funcs: Option<&str>) -> Result<Option<regex::Regex>> {
    funcs
        .map(regex::Regex::new)
        .transpose()
        .context("bad --funcs regular expression")
}

/// The shared front of the commands that read a binary: map it, index it,
/// scan it, keep the functions `--funcs` and `--no-std` select, and hand the
/// image, index and report to `f` (they borrow from the map, hence the
/// callback).
pub fn with_scan<T>(
    args: &crate::cli::BinaryArgs,
    f: impl FnOnce(&Image<'_>, &GoIndex<'_>, Report) -> Result<T>,
) -> Result<T> {
    let funcs = funcs_regex(args.funcs.as_deref())?;
    let mapped = deferscope_load::Mapped::open(&args.binary)?;
    let img = mapped.image()?;
    let path = args.binary.display().to_string();
    let ix = GoIndex::new(&img).with_context(|| path.clone())?;
    let mut report = deferscope_analyze::scan(&path, &img, &ix)?;
    report.retain(|name, origin| {
        !(args.no_std && origin == Origin::Std) && funcs.as_ref().is_none_or(|re| re.is_match(name))
    });
    f(&img, &ix, report)
}
