//! The `deferscope` command: a thin layer over the pipeline crates.
//!
//! load (`deferscope-load`) -> index (`deferscope-index`) -> decode and
//! analyze (`deferscope-analyze`) -> report (`deferscope-report`).
//!
//! Errors print as one line, `deferscope: <what>`, and exit with status 2.
//! A closed output pipe ends the program quietly.

mod cli;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Cli, Command, OutputFormat, ScanArgs};

fn main() -> ExitCode {
    // A panic is a bug, but the user still gets one line and status 2.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("deferscope: internal error{at}: {msg} (please report this)");
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = std::panic::catch_unwind(|| run(cli)).unwrap_or_else(|_| Err(anyhow::anyhow!("")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let msg = format!("{e:#}");
            if !msg.is_empty() {
                eprintln!("deferscope: {}", msg.replace('\n', " "));
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Scan(args) => scan(args),
    }
}

fn scan(args: ScanArgs) -> Result<()> {
    let funcs = args
        .funcs
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("bad --funcs regular expression")?;
    let mapped = deferscope_load::Mapped::open(&args.binary)?;
    let img = mapped.image()?;
    let path = args.binary.display().to_string();
    let ix = deferscope_index::GoIndex::new(&img).with_context(|| path.clone())?;
    let mut report = deferscope_analyze::scan(&path, &img, &ix)?;
    report.retain(|name, origin| {
        !(args.no_std && origin == deferscope_analyze::Origin::Std)
            && funcs.as_ref().is_none_or(|re| re.is_match(name))
    });
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Text => deferscope_report::text(&report, &mut out)?,
        OutputFormat::Json => deferscope_report::json(&report, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
