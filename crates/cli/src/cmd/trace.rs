//! `deferscope trace`: run a program (or attach to one) and count every
//! defer it executes. The work is `deferscope-trace`'s; this module turns
//! flags into a call, writes the report, and exits with the program's
//! status.

use std::fs::File;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{OutputFormat, TraceArgs};

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
    // Open the output first: a bad --out should fail before the program
    // runs, not after.
    let mut file = match &args.out {
        Some(p) => Some(File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => None,
    };
    let opts = deferscope_trace::Options {
        duration: match args.duration {
            Some(s) if !(s.is_finite() && s > 0.0) => bail!("--duration must be > 0 seconds"),
            Some(s) => Some(Duration::from_secs_f64(s)),
            None => None,
        },
        single_step: args.single_step,
        announce: args.pid.is_some(),
        fail_after_hits: args.fail_after_hits,
    };
    let mut report = match args.pid {
        Some(pid) => deferscope_trace::attach(pid, &opts)?,
        None => {
            let (program, rest) = args
                .program
                .split_first()
                .context("no program given (deferscope trace -- PROGRAM ARGS...)")?;
            deferscope_trace::launch(program, rest, &opts)?
        }
    };
    // Time in defer machinery: counts x the cost table explain uses (the
    // one `deferscope bench` saved, else the published figures).
    let cost = deferscope_report::explain::load_cost_table();
    report.estimate(
        |k| cost.ns(k, false),
        format!("{} cost table: {}", cost.origin, cost.source),
    );
    let write = |w: &mut dyn Write| -> io::Result<()> {
        let mut w = io::BufWriter::new(w);
        match args.format {
            OutputFormat::Text => report.write_text(&mut w)?,
            OutputFormat::Json => report.write_json(&mut w)?,
        }
        w.flush()
    };
    match file.as_mut() {
        Some(f) => write(f)
            .and_then(|()| f.sync_all())
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
