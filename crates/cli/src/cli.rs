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
    /// Run a program (or attach to one) and count how many times each defer
    /// executes, exactly (Linux, amd64).
    Trace(TraceArgs),
    /// Annotated disassembly in Go assembler syntax, in go tool objdump's columns.
    Disasm(DisasmArgs),
    /// Explain every defer: why it is not open-coded, what it allocates,
    /// what it calls, what it costs, and how to fix it.
    Explain(ExplainArgs),
    /// Measure the cost of each kind of defer on this machine with the Go
    /// toolchain, and save the table for explain.
    Bench(BenchArgs),
    /// Compare the defers of two builds (binaries or saved JSON): added,
    /// removed and changed sites; exit 1 when a --fail-on kind got more.
    Diff(DiffArgs),
    /// Build a package with the Go toolchain on PATH and scan it; --verify
    /// also checks every site against the compiler's -d=defer output.
    Check(CheckArgs),
    /// Attribute pprof profiles (CPU, heap/allocs, mutex, block) of the
    /// binary to its defer sites: the share spent in defer machinery, per
    /// function and site, with reasons and fixes.
    Profile(ProfileArgs),
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "PROFILE files are pprof protocol buffers, gzipped or not (runtime/pprof,                   net/http/pprof, continuous profilers). Several profiles of the same binary and                   kind are merged. The binary must match each profile (by build ID, else by the                   profile's own function names).\n\n                  Exit status: 0; 2 on bad input or a profile of another binary."
)]
pub struct ProfileArgs {
    /// The Go binary the profiles were taken of.
    pub binary: PathBuf,
    /// One or more pprof profiles of it.
    #[arg(required = true)]
    pub profiles: Vec<PathBuf>,
    /// Output format; pprof writes the merged profile with the defer
    /// machinery as frames of its own (gzipped, to -o FILE or stdout).
    #[arg(long, value_enum, default_value_t = ProfileFormat::Text)]
    pub format: ProfileFormat,
    /// The sample type to count (cpu, samples, alloc_space,
    /// alloc_objects, contentions, delay, ...) or its index; default: the
    /// profile's default type, else its last.
    #[arg(long, value_name = "TYPE")]
    pub sample_index: Option<String>,
    /// Attribute the profiles even if they do not match the binary.
    #[arg(long)]
    pub force: bool,
    /// Write the output here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileFormat {
    Text,
    Json,
    /// The report's HTML page with the shares per function and site.
    Html,
    /// A pprof profile with `defer machinery: ...` frames.
    Pprof,
}

/// Which functions a report covers.
#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    /// Only functions whose name matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub funcs: Option<String>,
    /// Leave out the standard library.
    #[arg(long)]
    pub no_std: bool,
    /// Show file paths as the binary records them (absolute paths of the
    /// build machine), not as -trimpath would spell them
    /// (`runtime/proc.go`, `example.com/m/main.go`, `module@version/...`).
    /// SARIF always works from the recorded paths.
    #[arg(long)]
    pub full_paths: bool,
}

impl FilterArgs {
    /// The analysis stage's filter (the regular expression compiled).
    pub fn filter(&self) -> anyhow::Result<deferscope_analyze::Filter> {
        use anyhow::Context;
        Ok(deferscope_analyze::Filter {
            funcs: self
                .funcs
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .context("bad --funcs regular expression")?,
            no_std: self.no_std,
            full_paths: self.full_paths,
        })
    }

    /// [`FilterArgs::filter`] for a report in `format`: SARIF places
    /// files by the recorded paths (its base ids), so it keeps them.
    pub fn filter_for(&self, format: ReportFormat) -> anyhow::Result<deferscope_analyze::Filter> {
        let mut f = self.filter()?;
        f.full_paths |= format == ReportFormat::Sarif;
        Ok(f)
    }
}

/// What scan and explain take: the binaries, the output format and the
/// function filters.
#[derive(clap::Args, Debug)]
pub struct BinaryArgs {
    /// Go binaries (ELF, PE or Mach-O; amd64 or arm64), directories
    /// (searched recursively; links are not followed) or container image
    /// tarballs (`docker save`, OCI image layout). More than one path, a
    /// directory or an image make one report with a section per binary.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Binaries analysed at once in a batch (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

/// The exit statuses of scan and explain.
pub const BATCH_HELP: &str = "Exit status: 0 on success; 2 on bad input or usage. With many \
                              binaries (several paths, a directory or an image), non-Go files \
                              are skipped, the report covers every binary that could be read, \
                              and the status is 2 when any entry failed (the report lists them).";

/// Formats of the reports on one binary (scan, explain, check).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    /// SARIF 2.1.0, for code scanning (stack- and heap-allocated sites).
    Sarif,
    /// One self-contained HTML page: chart, sortable and filterable table
    /// of sites, a panel per function with reasons and disassembly.
    Html,
}

impl From<ReportFormat> for deferscope_report::Format {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Text => deferscope_report::Format::Text,
            ReportFormat::Json => deferscope_report::Format::Json,
            ReportFormat::Sarif => deferscope_report::Format::Sarif,
            ReportFormat::Html => deferscope_report::Format::Html,
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "OLD and NEW are Go binaries or saved `deferscope scan --format json` (or \
                  explain) documents, or two directories or container images, whose binaries \
                  are matched by their path inside each. Functions are matched by name and \
                  sites by their order in the function, so code that only moved shows no \
                  change.\n\n\
                  Exit status: 0, or 1 when a --fail-on kind has more sites in NEW (in any one \
                  binary of a directory or image); 2 on bad input (for directories and \
                  images: when any binary could not be read)."
)]
pub struct DiffArgs {
    /// The old build: a Go binary, a saved JSON report, a directory or a
    /// container image.
    pub old: PathBuf,
    /// The new build: the same kind of input as OLD.
    pub new: PathBuf,
    /// Exit 1 when any of these kinds has more sites in NEW than in OLD
    /// (open-coded, stack-allocated, heap-allocated; comma-separated).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',', value_parser = parse_kind)]
    pub fail_on: Vec<deferscope_analyze::Kind>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Binaries analysed at once for directories and images (default: the
    /// number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

fn parse_kind(s: &str) -> Result<deferscope_analyze::Kind, String> {
    deferscope_analyze::Kind::parse(s).ok_or_else(|| {
        format!("unknown kind {s:?}: expected open-coded, stack-allocated or heap-allocated")
    })
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Runs `go build -o <temporary file> [GO BUILD ARGS]` in the current directory \
                  with the go command on PATH, scans the result, and deletes it.\n\n\
                  Exit status: 0; 1 when --verify finds a disagreement; 2 when the build or \
                  the scan fails."
)]
pub struct CheckArgs {
    /// Output format of the scan.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Build with -gcflags=all=-d=defer and compare every site with the
    /// compiler's own lines.
    #[arg(long)]
    pub verify: bool,
    /// Explain each site (reasons, targets, costs).
    #[arg(long)]
    pub explain: bool,
    /// Arguments for `go build` (packages, -tags, -trimpath, ...):
    /// deferscope's own options come first, everything from the first
    /// other argument on goes to go build.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "GO BUILD ARGS"
    )]
    pub build_args: Vec<std::ffi::OsString>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = BATCH_HELP)]
pub struct ScanArgs {
    #[command(flatten)]
    pub common: BinaryArgs,
    /// Explain each function and site (same output as `deferscope explain`).
    #[arg(long)]
    pub explain: bool,
}

#[derive(clap::Args, Debug)]
#[command(after_help = BATCH_HELP)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub common: BinaryArgs,
    /// Use the published cost figures even if `deferscope bench` saved a
    /// measured table.
    #[arg(long)]
    pub published_costs: bool,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The go command to use (default: `go` on PATH).
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,
    /// `-benchtime` for `go test` (e.g. 1s, 2000000x).
    #[arg(long, default_value = "1s")]
    pub benchtime: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print the table without saving it.
    #[arg(long)]
    pub no_save: bool,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The report goes to stderr (or --out FILE); stdin, stdout and stderr stay the \
                  program's. Exit status: the program's, 128 + the signal that killed it, 0 \
                  after --pid, 2 when deferscope itself fails."
)]
pub struct TraceArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Write the report to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Attach to this running process instead of starting one; detach at
    /// the end, leaving it running.
    #[arg(long, value_name = "PID", conflicts_with = "program")]
    pub pid: Option<i32>,
    /// With --pid: detach after this many seconds (default: at Ctrl-C or
    /// when the process exits).
    #[arg(long, value_name = "SECONDS", requires = "pid")]
    pub duration: Option<f64>,
    /// How to count: `counters` (the program counts for itself in patched
    /// code, a few ns per event; a breakpoint only where a site cannot be
    /// patched safely) or `breakpoints` (a ptrace stop per event, ~15 µs).
    #[arg(long, value_enum, default_value_t = TraceMode::Counters)]
    pub mode: TraceMode,
    /// Also write running totals every SECONDS to the report stream
    /// (stderr or --out), without stopping the program.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// Step over every breakpoint by stopping all threads and single-stepping
    /// instead of emulating the instruction (slower; for testing).
    #[arg(long, hide = true)]
    pub single_step: bool,
    /// Fail on purpose after N breakpoint hits, or in counters mode once N
    /// events are counted (testing the cleanup).
    #[arg(long, hide = true, value_name = "N")]
    pub fail_after_hits: Option<u64>,
    /// Print the counters mode's patch plan (points patched, breakpoints
    /// and why) without running the program.
    #[arg(long, hide = true)]
    pub plan_only: bool,
    /// The program to run, and its arguments, after `--`.
    #[arg(last = true, value_name = "PROGRAM", required_unless_present = "pid")]
    pub program: Vec<std::ffi::OsString>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    Counters,
    Breakpoints,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0; 1 when no function matches --funcs, --line, --pc or \
                  --defer-only (a line on stderr says so, like grep); 2 on bad input."
)]
pub struct DisasmArgs {
    /// The Go binary (ELF, PE or Mach-O; amd64 or arm64).
    pub binary: PathBuf,
    /// Only functions whose name matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub funcs: Option<String>,
    /// Only functions with code at this source line (FILE is matched as a path suffix).
    #[arg(long, value_name = "FILE:LINE")]
    pub line: Option<String>,
    /// Only the function containing this address (hex, 0x optional).
    #[arg(long, value_name = "ADDR")]
    pub pc: Option<String>,
    /// Instruction syntax: go (Go assembler, as go tool objdump) or intel
    /// (amd64 only: an arm64 binary is then listed in ARM's own assembler
    /// syntax, and a line on stderr says so).
    #[arg(long, value_enum, default_value_t = DisasmSyntax::Go)]
    pub syntax: DisasmSyntax,
    /// Only functions that contain defers.
    #[arg(long)]
    pub defer_only: bool,
    /// Interleave source lines (like go tool objdump -S).
    #[arg(long)]
    pub source: bool,
    /// Map source paths: OLD=NEW replaces the prefix OLD; =NEW (or NEW) is a root for -trimpath paths.
    #[arg(long, value_name = "OLD=NEW")]
    pub source_root: Vec<String>,
    /// Plain go tool objdump output: no defer comments, no legend.
    #[arg(long)]
    pub no_annotate: bool,
    /// Ignore the symbol table; name code from the pclntab only (as for a stripped binary).
    #[arg(long)]
    pub no_symtab: bool,
    /// Colour: auto (terminal only, honours NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisasmSyntax {
    Go,
    Intel,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
