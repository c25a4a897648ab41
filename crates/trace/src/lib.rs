//! **trace**: count how many times each defer of a running Go program
//! executes, exactly, on every thread.
//!
//! `deferscope scan` says where the defers are; this crate counts them at
//! run time. There is no sampling and no probe that can miss: every
//! defer site is patched to count itself (or gets a breakpoint), and every
//! count is one execution.
//!
//! # Design
//!
//! **What is counted** ([`plan`]). The sites come from
//! `deferscope_analyze::scan`: the `CALL runtime.deferproc*` of a stack- or
//! heap-allocated defer, or the instruction that stores an open-coded
//! defer's closure into its slot. Each executes exactly once per execution
//! of its `defer` statement. Three runtime functions, found by name in the
//! pclntab, are counted too: `runtime.gopanic` (every panic, including the
//! runtime's own, such as a nil dereference), `runtime.gorecover` (every
//! call of `recover()`) and `runtime.recovery` (every panic that a
//! `recover()` stopped). Their probes sit just after the function's
//! stack-bound check rather than on the entry, which `runtime.morestack`
//! re-runs after growing the stack or a preemption (counting that call
//! twice). Uprobes would see only the `deferproc*` calls and never an
//! open-coded defer, and uretprobes corrupt Go stacks (`landscape.md`
//! §1.5); probes on the sites themselves see all three kinds.
//!
//! **Two methods** ([`Method`]). *Counters* (the default): the program
//! counts for itself in patched code, a few nanoseconds per event, and the
//! tracer only reads the counters; a point that cannot be patched safely
//! keeps a breakpoint. *Breakpoints*: an `int3` on every point and a
//! ptrace stop per event (13-16 µs each), the tracer counting the hits.
//!
//! **The counters mode** ([`rewrite`], [`tramp`], `linux::counters`).
//! At the exec stop (launch) or with every thread stopped (attach), the
//! tracer runs an `mmap` system call inside the process (`linux::inject`:
//! a stopped thread's registers pointed at `SYSCALL` bytes of the text,
//! one single step, the registers put back) for a block within rel32
//! reach of the text; the block holds one 8-byte counter per point (one
//! cache line each) and one trampoline per patch, and its code pages are
//! then made read+execute. Then each point is patched, every thread still
//! stopped:
//!
//! - a stack- or heap-allocated site's `CALL runtime.deferproc*` becomes a
//!   `CALL` of its trampoline, `LOCK INCQ counter; JMP runtime.deferproc*`:
//!   the return address the CPU pushed is the original one, the stack is
//!   the same, so `deferproc` records the same caller pc and sp and the
//!   unwinder sees nothing new. Flags need no care across a call;
//! - an open-coded site's closure store (and the runtime probes' first
//!   instructions) move to the trampoline, re-encoded for their new
//!   address where RIP-relative, after (or before) the increment, then a
//!   `JMP` back; a `JMP rel32` and `int3` padding replace them;
//! - every `CALL runtime.gopanic` and `CALL runtime.gorecover` gets its own
//!   counter the same way as a `deferproc` call: those counts are the
//!   per-function panic and recover tables (in breakpoints mode the
//!   tracer reads the return address at each hit instead). The entry
//!   probes still count the totals; a total beyond the calls' sum (a call
//!   the byte scan could not see) is shown as `?`.
//!
//! A trampoline never calls, so no pc inside the block ever becomes a
//! return address on a goroutine stack (the unwinder throws "unexpected
//! return pc" on a pc outside Go code). A signal can arrive while a thread
//! runs a trampoline: SIGURG (asynchronous preemption) is then ignored,
//! because `isAsyncSafePoint` (runtime/preempt.go, go1.19 to go1.27) finds
//! no Go function at the pc and refuses, and the runtime tries again
//! later; a CPU profiler's SIGPROF cannot unwind from the pc (`sigprof` and
//! the unwinder's silent-errors mode, runtime/proc.go and traceback.go,
//! go1.19 to go1.27) and files the sample under `runtime._ExternalCode`,
//! since the block lies above `etext`.
//!
//! Where a point is patched, and why not elsewhere, is decided from the
//! file before the program starts ([`rewrite`]): the function is decoded
//! whole, no branch (jump tables included) may target the inside of the
//! replaced bytes, moved instructions must be unable to fault or depend on
//! their address, and the increment goes where the flags it clobbers are
//! dead (else inside `PUSHFQ`/`POPFQ`, whose safety on Go stacks the
//! [`rewrite`] docs argue). When attaching, two more rules: no thread's pc, and
//! no pc saved on a thread's stack (a signal frame's), may lie inside the
//! replaced bytes; and a patch that replaces several instructions is
//! refused outside the runtime, since a goroutine preempted asynchronously
//! between them would resume mid-`JMP` (the runtime never preempts
//! `runtime.*` asynchronously). Each refused point keeps a breakpoint and
//! the report says how many and why.
//!
//! Counters are read from `/proc/PID/mem`: at each thread's
//! `PTRACE_EVENT_EXIT` (the thread that ends the process stops there
//! while the memory is still there; the tracer waits up to 2 ms for the
//! other threads to stop running first), at a breakpoint on
//! `syscall.runtime_BeforeExec` (an `execve` discards them), every
//! `--interval`, and when detaching. Detaching stops every thread, steps any
//! thread whose pc is in a trampoline out of it, waits while a pc saved on
//! a thread's stack points into one (a signal handler that interrupted a
//! trampoline has yet to return), reads the counters, writes back every
//! original byte and unmaps the block.
//!
//! **The ptrace state machine** (`linux`). One tracer thread traces every
//! thread of the program with `PTRACE_SEIZE` and `PTRACE_O_TRACECLONE`, so
//! new threads are traced before they run a single instruction, and takes
//! every event from `waitpid(-1, __WALL)`. Each thread is *running*,
//! *stopping* (interrupted, stop not yet seen), *held* (stopped by us),
//! *queued* (stopped, its event waiting in the tracer's queue), *parked*
//! (in a group-stop, resumed with `PTRACE_LISTEN` so that Ctrl-Z and
//! SIGCONT behave as without a tracer) or *starting* (announced by a clone
//! event, first stop not yet seen). A stop with SIGTRAP whose pc - 1 is a
//! planted breakpoint is ours (for a one-byte instruction, where pc - 1 is
//! also where an emulated hit resumes, the siginfo must say `SI_KERNEL`,
//! an `int3`); every other signal, SIGURG (Go's asynchronous preemption)
//! and the program's own SIGTRAP included, is delivered unchanged.
//!
//! - *Launch*: the child waits on a pipe until it has been seized (with
//!   `PTRACE_O_EXITKILL`, so that it never outlives a crashed tracer), then
//!   `execve`s the program; the `PTRACE_EVENT_EXEC` stop patches the text
//!   and plants the breakpoints. stdin, stdout and stderr stay the program's; deferscope
//!   exits with its exit status, or 128 + the signal that killed it.
//!   SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to deferscope by another process
//!   are forwarded; a terminal's Ctrl-C reaches the program directly. If
//!   the tracer fails, it says so, takes every breakpoint and patch out,
//!   detaches, lets the program run on untraced to its end, and exits 2.
//! - *Attach*: every thread in `/proc/PID/task` is seized (listing again
//!   until no new one appears), all are stopped with `PTRACE_INTERRUPT`, the
//!   text is patched and the breakpoints planted, and the program runs. At
//!   the end (duration, SIGINT to deferscope, or an error) every thread is
//!   stopped again, a thread caught on a breakpoint is rewound to the
//!   original instruction (one stopped with the breakpoint's SIGTRAP still
//!   pending first takes it), the counters mode's block is taken out as
//!   above, every original byte is written back, and each thread is
//!   detached with any signal it was due. A failed hit puts its thread back on the
//!   breakpoint's address before the error propagates, so the same cleanup
//!   applies after an error.
//!
//! **The breakpoint table.** One `int3` per point, at the link-time pc plus
//! the load bias (`AT_ENTRY - e_entry`, so PIE works), planted only where
//! the process's bytes equal the file's. A hash map from address to
//! breakpoint gives each hit its counter.
//!
//! **Stepping over a breakpoint without a race** ([`emulate`]). Taking the
//! `int3` out to let the trapped thread run the original instruction would
//! let other threads run past the site uncounted. Instead the tracer
//! *emulates* the instruction — `CALL rel32`, `MOV` to a stack slot, the
//! `LEA`/`CMP`/`MOV`/`PUSH`/`SUB` of a prologue — on the thread's registers
//! and memory (`/proc/PID/mem`), and resumes it after the instruction: the
//! breakpoint never leaves memory. An instruction outside that set (or one
//! whose memory cannot be accessed) takes the safe path: every other thread
//! is stopped with `PTRACE_INTERRUPT`, the original byte is restored, the
//! thread single-steps (signals arriving meanwhile are held back and
//! delivered afterwards), the `int3` goes back, and everyone resumes.
//!
//! Linux on amd64 only; elsewhere [`launch`] and [`attach`] return
//! [`TraceError::Unsupported`].

pub mod emulate;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux;
pub mod plan;
pub mod planreport;
pub mod report;
pub mod rewrite;
mod tally;
pub mod tramp;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::rewrite::Fallback;

pub use plan::{Plan, PlanOptions, Probe};
pub use planreport::PlanReport;
pub use report::{
    ByFunction, End, Patching, PendingMax, ReasonCount, SiteCount, Totals, TraceReport,
};

/// Why a trace could not be done.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// This platform, or this binary, cannot be traced.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Load(#[from] deferscope_load::LoadError),
    #[error(transparent)]
    Analyze(#[from] deferscope_analyze::AnalyzeError),
    /// A system call failed.
    #[error("{what}")]
    Os {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// What the engine measured: counts per plan point, and how the program
/// ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub pid: i32,
    /// Counts per [`Plan::points`] entry: counters and breakpoint hits.
    pub hits: Vec<u64>,
    /// Counters mode: how each point was counted.
    pub counting: Option<CountingOutcome>,
    pub emulated: u64,
    pub stepped: u64,
    pub end: End,
    pub elapsed: Duration,
    /// Hits of the `runtime.gopanic` and `runtime.gorecover` points by
    /// return address (link-time): (point index, return address, hits).
    pub callers: Vec<(usize, u64, u64)>,
}

/// The counters mode's side of an [`Outcome`].
#[derive(Clone, Debug)]
pub struct CountingOutcome {
    /// Per plan point: counted by the program itself (`Ok`), or on a
    /// breakpoint and why.
    pub counter: Vec<Result<(), Fallback>>,
    /// Time spent mapping the block and patching the text.
    pub patch_time: Duration,
    /// Why no point could be patched, when the block could not be mapped.
    pub error: Option<String>,
    /// The trampoline block of the last image: (address, bytes).
    pub block: Option<(u64, u64)>,
}

/// How the counts are taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// The program counts for itself in patched code; breakpoints only
    /// where a point cannot be patched safely.
    #[default]
    Counters,
    /// A breakpoint on every point; the tracer counts each hit.
    Breakpoints,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Counters => "counters",
            Method::Breakpoints => "breakpoints",
        }
    }
}

/// Running totals, given to the `--interval` callback.
#[derive(Clone, Debug, Serialize)]
pub struct Running {
    /// Seconds since counting began.
    pub elapsed_s: f64,
    pub totals: Totals,
    pub panics: u64,
    pub recovers: u64,
    pub recovered: u64,
}

/// How to trace.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Counters (default) or breakpoints.
    pub method: Method,
    /// Report running totals this often (`launch_with` / `attach_with`).
    pub interval: Option<Duration>,
    /// Attach mode: detach after this long (default: at SIGINT/SIGTERM to
    /// deferscope, or when the process exits).
    pub duration: Option<Duration>,
    /// Step over every breakpoint the slow, safe way (stop all threads,
    /// restore the byte, single-step) instead of emulating it. For testing
    /// the fallback and for comparing; counts are the same, only slower.
    pub single_step: bool,
    /// Attach mode: say on stderr when the breakpoints are in and counting
    /// has begun (`deferscope: tracing pid N ...`).
    pub announce: bool,
    /// Fail on purpose at this breakpoint hit (counters mode: once this
    /// many events are counted), to test the cleanup: the breakpoints and
    /// patches are taken out and the program runs on untraced.
    pub fail_after_hits: Option<u64>,
}

/// Run `program` with `args` under the tracer until it exits, and count.
///
/// `program` is looked up in `PATH` when it has no `/`, like a shell does.
pub fn launch(
    program: &OsStr,
    args: &[OsString],
    opts: &Options,
) -> Result<TraceReport, TraceError> {
    launch_with(program, args, opts, &mut |_| {})
}

/// [`launch`], calling `on_interval` with the running totals every
/// `opts.interval`.
pub fn launch_with(
    program: &OsStr,
    args: &[OsString],
    opts: &Options,
    on_interval: &mut dyn FnMut(&Running),
) -> Result<TraceReport, TraceError> {
    supported()?;
    let path = resolve_program(program)?;
    let plan = Plan::with(&path, plan_options(opts))?;
    let mut argv = vec![program.to_owned()];
    argv.extend(args.iter().cloned());
    let mut progress =
        |counts: &[u64], elapsed: Duration| on_interval(&tally::running(&plan, counts, elapsed));
    let out = run_launch(&plan, &path, &argv, opts, &mut progress)?;
    Ok(build_report(
        &plan,
        &out,
        "launch",
        program.to_string_lossy().into_owned(),
    ))
}

fn plan_options(opts: &Options) -> PlanOptions {
    PlanOptions {
        counters: opts.method == Method::Counters,
    }
}

/// Plan the counters mode for `program` without running it: which points
/// get a counter and which keep a breakpoint, and why.
pub fn plan_only(program: &OsStr) -> Result<PlanReport, TraceError> {
    let path = resolve_program(program)?;
    let plan = Plan::with(&path, PlanOptions { counters: true })?;
    Ok(PlanReport::new(
        &plan,
        program.to_string_lossy().into_owned(),
    ))
}

/// Attach to the running process `pid`, count for `opts.duration` (or until
/// deferscope gets SIGINT or SIGTERM, or the process exits), then take every
/// breakpoint out and detach, leaving the process running.
pub fn attach(pid: i32, opts: &Options) -> Result<TraceReport, TraceError> {
    attach_with(pid, opts, &mut |_| {})
}

/// [`attach`], calling `on_interval` with the running totals every
/// `opts.interval`.
pub fn attach_with(
    pid: i32,
    opts: &Options,
    on_interval: &mut dyn FnMut(&Running),
) -> Result<TraceReport, TraceError> {
    supported()?;
    if pid <= 0 {
        return Err(TraceError::Other(format!("bad pid {pid}")));
    }
    if pid as u32 == std::process::id() {
        return Err(TraceError::Other("deferscope cannot trace itself".into()));
    }
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let shown = std::fs::read_link(&exe)
        .map(|p| p.display().to_string())
        .map_err(|e| TraceError::Os {
            what: format!("pid {pid}: cannot read {}", exe.display()),
            source: e,
        })?;
    let plan = Plan::with(&exe, plan_options(opts))?;
    let mut progress =
        |counts: &[u64], elapsed: Duration| on_interval(&tally::running(&plan, counts, elapsed));
    let out = run_attach(&plan, pid, opts, &mut progress)?;
    Ok(build_report(&plan, &out, "attach", shown))
}

fn supported() -> Result<(), TraceError> {
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        Ok(())
    } else {
        Err(TraceError::Unsupported(format!(
            "deferscope trace needs Linux on amd64; this is {} on {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )))
    }
}

/// Called with the counts per plan point and the time since counting
/// began.
type OnCounts<'a> = &'a mut dyn FnMut(&[u64], Duration);

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run_launch<'p>(
    plan: &'p Plan,
    path: &Path,
    argv: &[OsString],
    opts: &Options,
    progress: OnCounts<'p>,
) -> Result<Outcome, TraceError> {
    linux::launch(plan, path, argv, opts, progress)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run_attach<'p>(
    plan: &'p Plan,
    pid: i32,
    opts: &Options,
    progress: OnCounts<'p>,
) -> Result<Outcome, TraceError> {
    linux::attach(plan, pid, opts, progress)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn run_launch(
    _: &Plan,
    _: &Path,
    _: &[OsString],
    _: &Options,
    _: OnCounts<'_>,
) -> Result<Outcome, TraceError> {
    supported().map(|()| unreachable!("supported() fails on this platform"))
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn run_attach(_: &Plan, _: i32, _: &Options, _: OnCounts<'_>) -> Result<Outcome, TraceError> {
    supported().map(|()| unreachable!("supported() fails on this platform"))
}

/// The signal's name, `SIGTERM` for 15.
pub fn signal_name(sig: i32) -> Option<String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        linux::signal_name(sig)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = sig;
        None
    }
}

/// Find `program` the way `execvp` would: as given when it contains a `/`,
/// else in the first `PATH` directory holding an executable of that name.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf, TraceError> {
    let p = Path::new(program);
    let shown = p.display();
    if program.is_empty() {
        return Err(TraceError::Other("no program given".into()));
    }
    if program.as_encoded_bytes().contains(&b'/') {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(TraceError::Other(format!("{shown}: no such file")))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let cand = dir.join(p);
        if is_executable(&cand) {
            return Ok(cand);
        }
    }
    Err(TraceError::Other(format!("{shown}: not found in PATH")))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

pub use tally::build_report;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_finds_programs_like_execvp() {
        assert!(resolve_program(OsStr::new("")).is_err());
        let e = resolve_program(OsStr::new("./definitely/not/here")).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let e = resolve_program(OsStr::new("deferscope-no-such-program-xyz")).unwrap_err();
        assert!(e.to_string().contains("not found in PATH"), "{e}");
        #[cfg(unix)]
        {
            let sh = resolve_program(OsStr::new("sh")).unwrap();
            assert!(sh.ends_with("sh") && sh.is_file());
        }
    }
}
