//! `deferscope trace`: run a program (or attach to one) and count every
//! defer it executes. The work is `deferscope-trace`'s; this module turns
//! flags into a call, writes the report (and the `--interval` totals),
//! and exits with the program's status. While attached to a program whose
//! stdout and stderr are not deferscope's terminal, stderr shows
//! `tracing: S s, N defers counted` (crate::progress); a launched program
//! shares deferscope's stderr, so it gets no such line (`--interval`
//! prints running totals as lines instead).

use std::fs::File;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use deferscope_trace::report::group;
use deferscope_trace::{Method, Running};

use crate::cli::{OutputFormat, TraceArgs, TraceMode};
use crate::progress::{self, Progress};

pub fn run(args: TraceArgs) -> Result<()> {
    if args.plan_only {
        let program = args
            .program
            .first()
            .context("no program given (deferscope trace --plan-only -- PROGRAM)")?;
        let plan = deferscope_trace::plan_only(program)?;
        let mut w = io::BufWriter::new(io::stdout().lock());
        match args.format {
            OutputFormat::Text => plan.write_text(&mut w)?,
            OutputFormat::Json => plan.write_json(&mut w)?,
        }
        w.flush()?;
        return Ok(());
    }
    let seconds = |flag: &str, v: Option<f64>| -> Result<Option<Duration>> {
        match v {
            Some(s) if !(s.is_finite() && s > 0.0) => bail!("--{flag} must be > 0 seconds"),
            Some(s) => Ok(Some(Duration::from_secs_f64(s))),
            None => Ok(None),
        }
    };
    let mut opts = deferscope_trace::Options {
        method: match args.mode {
            TraceMode::Counters => Method::Counters,
            TraceMode::Breakpoints => Method::Breakpoints,
        },
        interval: seconds("interval", args.interval)?,
        duration: seconds("duration", args.duration)?,
        single_step: args.single_step,
        announce: args.pid.is_some(),
        fail_after_hits: args.fail_after_hits,
    };
    // Open the output first: a bad --out should fail before the program
    // runs, not after.
    let mut file = match &args.out {
        Some(p) => Some(File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => None,
    };
    let format = args.format;
    let lines = opts.interval.is_some();
    // `tracing: S s, N defers counted` on stderr, only when it cannot
    // overwrite the program's output (crate::progress): a launched program
    // writes to our own stderr, so only an attached one whose stdout and
    // stderr are not our terminal gets the line.
    let bar = Progress::line(args.pid.is_some_and(|pid| !program_shares_terminal(pid)));
    let every = opts.interval;
    if bar.is_drawn() {
        // The library calls back every `opts.interval`: as often as the
        // line needs, and the --interval lines keep their own period.
        opts.interval = Some(every.map_or(PROGRESS_EVERY, |e| e.min(PROGRESS_EVERY)));
    }
    let mut next_line = every.map(|e| e.as_secs_f64());
    let mut report = {
        let mut stderr = io::stderr();
        let to_file = file.is_some();
        let sink: &mut dyn Write = match file.as_mut() {
            Some(f) => f,
            None => &mut stderr,
        };
        let mut on_interval = |r: &Running| {
            bar.step(format!(
                "tracing: {:.1} s, {} defers counted",
                r.elapsed_s,
                group(r.totals.defers)
            ));
            let (Some(e), Some(due)) = (every, next_line.as_mut()) else {
                return;
            };
            if bar.is_drawn() {
                // Called back every PROGRESS_EVERY: the line is due at the
                // call nearest its time.
                let half = PROGRESS_EVERY.as_secs_f64() / 2.0;
                if r.elapsed_s + half < *due {
                    return;
                }
                *due = (*due + e.as_secs_f64()).max(r.elapsed_s + half);
            }
            // A failed write of a progress line is not worth stopping for.
            let _ = if to_file {
                write_running(sink, r, format)
            } else {
                bar.suspend(|| write_running(sink, r, format))
            };
        };
        match args.pid {
            Some(pid) => deferscope_trace::attach_with(pid, &opts, &mut on_interval)?,
            None => {
                let (program, rest) = args
                    .program
                    .split_first()
                    .context("no program given (deferscope trace -- PROGRAM ARGS...)")?;
                deferscope_trace::launch_with(program, rest, &opts, &mut on_interval)?
            }
        }
    };
    drop(bar);
    // Time in defer machinery: counts x the cost table explain uses (the
    // one `deferscope bench` saved, else the published figures); a heap
    // site at its function's most records pending (design.md §7.5).
    let cost = deferscope_analyze::cost::load();
    report.estimate(
        |k, pending| {
            let facts = deferscope_analyze::cost::SiteCostFacts {
                in_loop_pending: pending,
                ..Default::default()
            };
            cost.site_ns(k, facts)
        },
        format!("costs: {}", cost.source),
    );
    let write = |w: &mut dyn Write| -> io::Result<()> {
        let mut w = io::BufWriter::new(w);
        match format {
            OutputFormat::Text => report.write_text(&mut w)?,
            // With --interval the stream is JSON Lines: the report too is
            // one line.
            OutputFormat::Json if lines => {
                serde_json::to_writer(&mut w, &report)?;
                writeln!(w)?
            }
            OutputFormat::Json => report.write_json(&mut w)?,
        }
        w.flush()
    };
    match file.as_mut() {
        Some(f) => write(f)
            .and_then(|()| sync_if_file(f))
            .context("cannot write the report")?,
        None => write(&mut io::stderr().lock()).context("cannot write the report")?,
    }
    let status = report.exit_status();
    if status != 0 {
        // The traced program's status is ours; everything is flushed.
        std::process::exit(status);
    }
    Ok(())
}

/// How often the progress line is brought up to date.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Whether the process `pid`'s stdout or stderr is the terminal our stderr
/// is (or cannot be told): then a progress line could overwrite its output.
fn program_shares_terminal(pid: i32) -> bool {
    [1, 2].iter().any(|fd| {
        std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
            .map_or(true, |m| progress::stderr_terminal_shared(&m))
    })
}

/// `fsync` a regular file; a pipe, a terminal or `/dev/null` cannot be
/// synced (EINVAL) and has nothing to sync.
fn sync_if_file(f: &File) -> io::Result<()> {
    if f.metadata()?.file_type().is_file() {
        f.sync_all()
    } else {
        Ok(())
    }
}

/// One `--interval` line: text, or a JSON object `{"running": ...}`.
fn write_running(w: &mut dyn Write, r: &Running, format: OutputFormat) -> io::Result<()> {
    let t = &r.totals;
    match format {
        OutputFormat::Text => writeln!(
            w,
            "trace: running {:.1} s: {} defers (open-coded {}, stack-allocated {}, \
             heap-allocated {}) at {} sites; panics {} ({} recovered); recover() called {} times",
            r.elapsed_s,
            group(t.defers),
            group(t.open_coded),
            group(t.stack_allocated),
            group(t.heap_allocated),
            group(t.sites_run as u64),
            group(r.panics),
            group(r.recovered),
            group(r.recovers)
        )?,
        OutputFormat::Json => {
            serde_json::to_writer(&mut *w, &serde_json::json!({ "running": r }))?;
            writeln!(w)?;
        }
    }
    w.flush()
}
