//! The ptrace engine, Linux on amd64. See the crate documentation for the
//! design; this module is its implementation, in parts:
//!
//! - [`start`]: launching a program and attaching to a process;
//! - [`events`]: the event loop, one `waitpid` event at a time;
//! - [`threads`]: the thread state machine (stopping, resuming,
//!   single-stepping, detaching);
//! - [`breakpoints`]: planting breakpoints and stepping over a hit;
//! - [`counters`]: the counters mode's block, patches and counters;
//! - [`inject`]: system calls run inside the program (`mmap` ...);
//! - [`signals`]: deferscope's own signals;
//! - [`mem`] and [`sys`]: the process's memory, raw ptrace and waitpid.
//!
//! One thread (the caller's) is the tracer of every thread of the program.
//! Events arrive from `waitpid(-1, __WALL)` and go through [`Engine::handle`];
//! events that arrive while the engine waits for something specific (all
//! threads to stop, one thread to finish a single step) go to a queue and
//! are handled afterwards, in order.

mod breakpoints;
mod counters;
mod events;
mod inject;
mod mem;
mod signals;
mod start;
mod sys;
mod threads;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::plan::Plan;
use crate::report::End;
use crate::rewrite::Fallback;
use crate::{CountingOutcome, Outcome, TraceError};

use breakpoints::Bp;
use counters::Counting;
use mem::ProcMem;

pub use start::{attach, launch};
pub use sys::signal_name;

/// What each thread is doing, as far as the tracer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Resumed; it may run program code.
    Running,
    /// Sent `PTRACE_INTERRUPT`; its stop has not been seen yet.
    Stopping,
    /// In a ptrace-stop with nothing left to handle; owes a resume.
    Held,
    /// In a ptrace-stop whose event waits in the queue.
    Queued,
    /// In a group-stop, resumed with `PTRACE_LISTEN`: it runs no program
    /// code until it reports again.
    Parked,
    /// Announced by a clone event; its first stop (before it runs any
    /// program code) has not been seen yet.
    Starting,
}

struct Thread {
    st: St,
    /// Signals to deliver when it is next resumed (held back while it was
    /// single-stepped).
    sigs: VecDeque<(i32, Option<libc::siginfo_t>)>,
}

impl Thread {
    fn new(st: St) -> Thread {
        Thread {
            st,
            sigs: VecDeque::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Launch,
    Attach,
}

/// How a plan point is counted in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// By the program itself: this counter of the block.
    Counter(usize),
    /// By a breakpoint; in counters mode, the reason it was not patched.
    Breakpoint(Option<Fallback>),
}

/// Called with the counts so far (per plan point) and the time since
/// counting began, every `--interval`.
pub type Progress<'a> = &'a mut dyn FnMut(&[u64], Duration);

/// Why the event loop returned.
enum LoopEnd {
    /// No tracee is left: the program is gone.
    Gone,
    /// `--duration` elapsed or deferscope got SIGINT/SIGTERM (attach mode).
    Requested,
}

struct Engine<'p> {
    plan: &'p Plan,
    mode: Mode,
    /// The thread-group leader: the process id.
    main: i32,
    mem: Option<ProcMem>,
    /// Runtime address minus link-time address.
    bias: u64,
    bps: Vec<Bp>,
    /// Runtime address -> index into `bps`.
    by_addr: HashMap<u64, usize>,
    /// Hits per plan point.
    hits: Vec<u64>,
    emulated: u64,
    stepped: u64,
    /// Hits of caller-attributed points: (plan point, link-time return
    /// address) -> hits.
    callers: HashMap<(usize, u64), u64>,
    threads: HashMap<i32, Thread>,
    exited: HashSet<i32>,
    queue: VecDeque<(i32, i32)>,
    end: Option<End>,
    /// The program ran `execve` of another binary: it runs untraced.
    untraced: bool,
    execs: u32,
    started: Option<Instant>,
    /// Nothing is left to clean up.
    done: bool,
    /// Never emulate: always take the stop-all single-step path.
    single_step: bool,
    /// Fail at this breakpoint hit (testing the cleanup).
    fail_after: Option<u64>,
    /// The current hit's original instruction has run (emulated or
    /// stepped).
    ran: bool,
    /// How each plan point is counted.
    via: Vec<Via>,
    /// Counters mode: the block and patches of the current image.
    counting: Option<Counting>,
    /// Counts of earlier images of the program (before an `execve` of the
    /// same binary), per plan point.
    base: Vec<u64>,
    /// Time spent mapping the block and patching, in all.
    patch_time: Duration,
    /// Why the counters mode could not start (every point then keeps its
    /// breakpoint).
    counters_error: Option<String>,
    /// Where the last block was mapped: (address, bytes).
    last_block: Option<(u64, u64)>,
    /// Counters mode, `--fail-after-hits`: when to look at the counters
    /// next.
    fail_check: Option<Instant>,
    /// `--interval`: the period and the next report.
    interval: Option<(Duration, Instant)>,
    /// Whom to tell at each `--interval`.
    progress: Option<Progress<'p>>,
}

impl<'p> Engine<'p> {
    pub(super) fn new(plan: &'p Plan, mode: Mode, main: i32) -> Engine<'p> {
        Engine {
            plan,
            mode,
            main,
            mem: None,
            bias: 0,
            bps: Vec::new(),
            by_addr: HashMap::new(),
            hits: vec![0; plan.points.len()],
            emulated: 0,
            stepped: 0,
            callers: HashMap::new(),
            threads: HashMap::new(),
            exited: HashSet::new(),
            queue: VecDeque::new(),
            end: None,
            untraced: false,
            execs: 0,
            started: None,
            done: false,
            single_step: false,
            fail_after: None,
            ran: false,
            via: vec![Via::Breakpoint(None); plan.points.len()],
            counting: None,
            base: vec![0; plan.points.len()],
            patch_time: Duration::ZERO,
            counters_error: None,
            last_block: None,
            fail_check: None,
            interval: None,
            progress: None,
        }
    }

    pub(super) fn outcome(&self) -> Outcome {
        Outcome {
            callers: self
                .callers
                .iter()
                .map(|(&(point, ret), &n)| (point, ret, n))
                .collect(),
            pid: self.main,
            hits: self.counts(),
            counting: self.plan.counters.then(|| CountingOutcome {
                counter: self
                    .via
                    .iter()
                    .map(|v| match v {
                        Via::Counter(_) => Ok(()),
                        Via::Breakpoint(f) => Err(f.unwrap_or(Fallback::NoBlock)),
                    })
                    .collect(),
                patch_time: self.patch_time,
                error: self.counters_error.clone(),
                block: self.last_block,
            }),
            emulated: self.emulated,
            stepped: self.stepped,
            end: self.end.unwrap_or(End::Detached),
            elapsed: self.started.map(|s| s.elapsed()).unwrap_or_default(),
        }
    }

    pub(super) fn mem(&mut self) -> Result<&mut ProcMem, TraceError> {
        self.mem
            .as_mut()
            .ok_or_else(|| TraceError::Other("process memory is not open".into()))
    }
}

impl Drop for Engine<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}
