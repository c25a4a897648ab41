//! Many binaries at once: `scan|explain PATH...` with several paths, a
//! directory or a container image, and `diff` of two directories or
//! images. Discovery and the worker pool are `deferscope-inputs`'s, one
//! binary's analysis `deferscope_analyze::batch`'s, the printers
//! `deferscope_report::batch`'s; this module joins them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use deferscope_analyze::{Filter, Request};
use deferscope_inputs::Options;
use deferscope_model::batch::Batch;
use deferscope_model::diff::Side;
use deferscope_report::batch::Binary;
use deferscope_report::html;

use crate::cli::ReportFormat;
use crate::progress::Progress;

/// Bytes of full listings, and of excerpts, each binary of a batch's HTML
/// page may carry (a one-binary page has 2 MiB of each).
const BATCH_LISTING_BUDGET: usize = 256 << 10;

/// Whether `paths` make a batch: more than one, or a directory or an
/// image. A single regular file keeps the one-binary report.
pub fn is_batch(paths: &[PathBuf]) -> bool {
    paths.len() > 1
        || paths
            .first()
            .is_some_and(|p| deferscope_inputs::is_batch_input(p))
}

fn options(jobs: Option<usize>) -> Options {
    jobs.map_or_else(Options::default, Options::with_workers)
}

/// Run `work` on every binary under `paths`, with a progress line.
fn run<T: Send>(
    paths: &[PathBuf],
    jobs: Option<usize>,
    work: &(dyn Fn(&deferscope_inputs::Name, &[u8]) -> deferscope_model::batch::Outcome<T> + Sync),
) -> Batch<T> {
    let p = Progress::start("reading");
    let n = AtomicUsize::new(0);
    let started = |path: &str| {
        let i = n.fetch_add(1, Ordering::Relaxed) + 1;
        p.step(format!("analysing binary {i}: {path}"));
    };
    deferscope_inputs::run(paths, &options(jobs), &started, work)
}

/// Say on stderr how many entries failed (the report lists them), and
/// exit with status 2 when any did.
fn exit_if_failed(failed: usize, total: usize) {
    if failed > 0 {
        eprintln!(
            "deferscope: {failed} of {total} entries could not be read (the report lists them)"
        );
        std::process::exit(2);
    }
}

/// `scan`/`explain` over many binaries: one report.
pub fn report(
    paths: &[PathBuf],
    format: ReportFormat,
    filter: &Filter,
    req: Request<'_>,
    jobs: Option<usize>,
) -> Result<()> {
    let want_listings = format == ReportFormat::Html;
    let b = run(paths, jobs, &|name, data| {
        deferscope_analyze::batch::analyze_bytes(&name.path, data, filter, req, |img, ix, a| {
            let listings = match (&a.explain, want_listings) {
                (Some(x), true) => {
                    let c = html::Collector::with_budgets(
                        &a.scan,
                        x,
                        BATCH_LISTING_BUDGET,
                        BATCH_LISTING_BUDGET,
                    );
                    Some(super::listings_within(&a, img, ix, c).map_err(|e| format!("{e:#}"))?)
                }
                _ => None,
            };
            Ok(Binary {
                analysis: a,
                listings,
            })
        })
    });
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    deferscope_report::batch::write(&b, format.into(), &mut out)?;
    out.flush()?;
    exit_if_failed(b.failed().count(), b.entries.len());
    Ok(())
}

/// One side of `diff DIR DIR`: every binary scanned and explained.
pub fn sides(path: &Path, filter: &Filter, jobs: Option<usize>) -> Batch<Side> {
    let cost = deferscope_analyze::cost::load();
    let req = Request {
        explain: Some(&cost),
        verify: None,
    };
    run(&[path.to_owned()], jobs, &|name, data| {
        deferscope_analyze::batch::analyze_bytes(&name.path, data, filter, req, |_, _, a| {
            Ok(deferscope_analyze::diff::side_of(
                &a.scan,
                a.explain.as_ref(),
            ))
        })
    })
}

/// `diff OLD NEW` of two directories or images.
pub fn diff(
    old: &Path,
    new: &Path,
    filter: &Filter,
    fail_on: &[deferscope_analyze::Kind],
    json: bool,
    jobs: Option<usize>,
) -> Result<()> {
    let d =
        deferscope_analyze::batch::diff_batches(sides(old, filter, jobs), sides(new, filter, jobs));
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if json {
        deferscope_report::batch::diff_json(&d, fail_on, &mut out)?;
    } else {
        deferscope_report::batch::diff_text(&d, fail_on, &mut out)?;
    }
    out.flush()?;
    exit_if_failed(d.errors.len(), d.binaries.len() + d.errors.len());
    if !d.failed(fail_on).is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
