//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`
//! and stays thin: flags in, [`deferscope_analyze::run`] (through
//! [`analyze`]), a printer of `deferscope-report` out.

pub mod batch;
pub mod bench;
pub mod check;
pub mod diff;
pub mod disasm;
pub mod explain;
pub mod profile;
pub mod scan;
pub mod trace;

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use deferscope_analyze::{Analysis, Filter, Request};
use deferscope_index::GoIndex;
use deferscope_load::Image;
use deferscope_report::html;

use crate::cli::ReportFormat;

/// The front every report command shares: map and index `path`, analyse
/// it as `req` asks, keep what `filter` selects, and hand the binary and
/// the [`Analysis`] to `f` (they borrow from the map, hence the callback).
/// The report names the binary `shown`.
pub fn analyze<T>(
    path: &Path,
    shown: &str,
    filter: &Filter,
    req: Request<'_>,
    f: impl FnOnce(&Image<'_>, &GoIndex<'_>, Analysis) -> Result<T>,
) -> Result<T> {
    deferscope_analyze::with_binary(path, |img, ix| {
        let a = deferscope_analyze::run(shown, img, ix, filter, req)?;
        f(img, ix, a)
    })
}

/// `scan` and `explain`: analyse the binaries of `c` as `req` asks and
/// print one report (a batch when there are several, or a directory or an
/// image).
pub fn report(c: &crate::cli::BinaryArgs, req: Request<'_>) -> Result<()> {
    let filter = c.filter.filter_for(c.format)?;
    if batch::is_batch(&c.paths) {
        return batch::report(&c.paths, c.format, &filter, req, c.jobs);
    }
    let binary = &c.paths[0];
    analyze(
        binary,
        &binary.display().to_string(),
        &filter,
        req,
        |img, ix, a| print(&a, c.format, img, ix),
    )
}

/// Print `a` to stdout in `format`; the HTML page also lists the code of
/// the report's functions.
pub fn print(a: &Analysis, format: ReportFormat, img: &Image<'_>, ix: &GoIndex<'_>) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    print_to(a, format, img, ix, &mut out)?;
    out.flush()?;
    Ok(())
}

/// [`print`] to `out`.
pub fn print_to(
    a: &Analysis,
    format: ReportFormat,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    out: &mut impl Write,
) -> Result<()> {
    let listings = match (format, &a.explain) {
        (ReportFormat::Html, Some(x)) => Some(html_listings(a, x, img, ix)?),
        _ => None,
    };
    deferscope_report::write(a, format.into(), listings.as_ref(), out)?;
    Ok(())
}

/// The HTML page's listings: the annotated code of the report's
/// functions, collected from the disassembler's rows.
fn html_listings(
    a: &Analysis,
    x: &deferscope_analyze::explain::Explain,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
) -> Result<html::Listings> {
    listings_within(a, img, ix, html::Collector::new(&a.scan, x))
}

/// The listings `c` collects of the report's functions.
pub(crate) fn listings_within(
    a: &Analysis,
    img: &Image<'_>,
    ix: &GoIndex<'_>,
    mut c: html::Collector,
) -> Result<html::Listings> {
    let opts = deferscope_disasm::Options {
        filter: deferscope_disasm::Filter {
            defer_only: true,
            ..Default::default()
        },
        real_names: true,
        site_notes: a
            .explain
            .as_ref()
            .map(|x| deferscope_analyze::explain::listing_notes(&a.scan, x))
            .unwrap_or_default(),
        ..Default::default()
    };
    deferscope_disasm::list_rows(img, ix, Some(&a.scan), &opts, &mut c)?;
    Ok(c.finish())
}
