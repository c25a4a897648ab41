//! All of deferscope's integration tests, in one test binary.
//!
//! - `oracle::*`: every fixture binary is scanned and compared with the Go
//!   compiler's own `-d=defer` output saved beside it. The committed
//!   fixtures (`fixtures/bin/`) always run; the full matrix built by
//!   `scripts/build-matrix.py` runs when `DEFERSCOPE_MATRIX` names its
//!   directory (the README's test command sets it).
//! - `twin::*`: a stripped binary gives the same sites as its unstripped twin.
//! - `badinput::*`: bad input gets one line on stderr and exit status 2.
//! - `batch::*`: many binaries (directories, OCI and docker-save images
//!   with whiteouts and bad entries, diff of directories): each binary's
//!   part equals its one-binary report.
//! - `cgo::*`: deferred calls into C marked, and priced with the crossing,
//!   against the cgo fixture's source.
//! - `cli::*`: output contracts of the `scan` command.
//! - `everyday::*`: the rough edges a new user hit (issue 15), by item.
//! - `installs::*`: the README names every install of the test command.
//! - `names::*`: escaped package paths, GOPATH builds and relative file
//!   paths (issue 15 items 4-6) on programs built by the test.
//! - `explain_loops::*`: defers in loops that return from inside, and the
//!   `unknown` explanation, against the compiler and the source (issue 15
//!   item 2).
//! - `html::*`: `--format html` is self-contained and holds every site
//!   (the browser test is tests/html/run.sh).
//! - `defer_fields::*`: the `_defer` record's stores named by field in
//!   `disasm`, and its size in `explain`, against the binary's DWARF.
//! - `disasm_annotate::*`: the annotated listing marks every site's
//!   registration and exits (facts from the instruction text and the spec).
//! - `semantics::*`: each defer's captures, rewritten results and
//!   allocations per execution on fixtures/go/semantics, against the
//!   compiler's `-m=2` and the program's own prints and MemStats (issue 14).
//! - `report::*`: SARIF against the published schema, diff, check and
//!   check --verify (see report.rs).
//! - `snapshot::*`: the whole stdout of scan, explain, diff and disasm on the
//!   committed fixtures against committed snapshots (see snapshots.rs).
//! - `sweep::*`: truncated and bit-flipped binaries end in a result or an
//!   error, never a panic or a hang.
//! - `profile::*`: `deferscope profile` against the workloads' own timings
//!   and allocation counts and `go tool pprof` (see profile.rs).
//! - `progress::*`: the progress lines of `disasm` and `trace` on a
//!   pseudo-terminal, and none on pipes or over other output (issue 15
//!   item 13).
//! - `trace::*`: `deferscope trace` against the fixture's own counters, the
//!   untraced run and the file's bytes (trace.rs, trace_counters.rs), and on
//!   real third-party programs (trace_real.rs).

mod badinput;
mod batch;
mod cgo;
mod cli;
mod defer_fields;
mod disasm;
mod disasm_annotate;
mod everyday;
mod explain;
mod explain_loops;
mod fixtures;
mod html;
mod inlining;
mod installs;
mod names;
mod oracle;
mod profile;
mod progress;
mod report;
mod semantics;
mod snapshots;
mod sweep;
mod targets;
mod targets_source;
mod trace;
mod trace_counters;
mod trace_real;

use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    trials.extend(fixtures::trials());
    trials.extend(badinput::trials());
    trials.extend(batch::trials());
    trials.extend(cgo::trials());
    trials.extend(cli::trials());
    trials.extend(defer_fields::trials());
    trials.extend(disasm::trials());
    trials.extend(disasm_annotate::trials());
    trials.extend(everyday::trials());
    trials.extend(explain::trials());
    trials.extend(explain_loops::trials());
    trials.extend(html::trials());
    trials.extend(inlining::trials());
    trials.extend(installs::trials());
    trials.extend(names::trials());
    trials.extend(sweep::trials());
    trials.extend(targets::trials());
    trials.extend(oracle::trials());
    trials.extend(semantics::trials());
    trials.extend(profile::trials());
    trials.extend(progress::trials());
    trials.extend(report::trials());
    trials.extend(snapshots::trials());
    trials.extend(trace::trials());
    trials.extend(trace_counters::trials());
    trials.extend(trace_real::trials());
    libtest_mimic::run(&args, trials).exit();
}
