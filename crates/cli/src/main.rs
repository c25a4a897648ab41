//! The `deferscope` command: a thin layer over the pipeline crates.
//!
//! load (`deferscope-load`) -> index (`deferscope-index`) -> decode
//! (`deferscope-decode`) -> analyze (`deferscope-analyze`, whose result is
//! `deferscope-model`'s `Analysis`) -> report (`deferscope-report`); the
//! consumers `deferscope-disasm` and `deferscope-trace` sit beside report
//! on the same front end. Flags become option structs once, in `cli`; each
//! command in `cmd` turns them into one call of the front end and one
//! printer (docs/design.md §5 walks through `scan`).
//!
//! Errors print as one line, `deferscope: <what>`, and exit with status 2.
//! A closed output pipe ends the program quietly.

mod cli;
mod cmd;
mod progress;

use std::io;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};

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
        Command::Scan(args) => cmd::scan::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Trace(args) => cmd::trace::run(args),
        Command::Disasm(args) => cmd::disasm::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Profile(args) => cmd::profile::run(args),
    }
}
