//! Command-line flags, turned once into plain option structs.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "deferscope",
    version,
    about = "Find every defer in a Go binary: open-coded, stack- or heap-allocated.",
    long_about = "Find every defer in a Go binary, stripped or not, and say which kind the \
                  compiler chose for it: open-coded, stack-allocated or heap-allocated.\n\n\
                  Exit status: 0 on success, 2 on bad input or usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every defer site with its kind, function and source line.
    Scan(ScanArgs),
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// The Go binary (ELF, PE or Mach-O; amd64 or arm64).
    pub binary: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Only functions whose name matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub funcs: Option<String>,
    /// Leave out the standard library.
    #[arg(long)]
    pub no_std: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}
