//! The ptrace engine, Linux on amd64. See the crate documentation for the
//! design; this module is its implementation.
//!
//! One thread (the caller's) is the tracer of every thread of the program.
//! Events arrive from `waitpid(-1, __WALL)` and go through [`Engine::handle`];
//! events that arrive while the engine waits for something specific (all
//! threads to stop, one thread to finish a single step) go to a queue and
//! are handled afterwards, in order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::{ptrace, uio};
use nix::unistd::Pid;

use crate::emulate::{self, Memory, Op, Regs};
use crate::plan::{Plan, Probe};
use crate::report::End;
use crate::{Options, Outcome, TraceError};

const INT3: u8 = 0xcc;

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

/// One planted breakpoint.
struct Bp {
    /// Index into `plan.points`.
    point: usize,
    addr: u64,
    /// The byte the `int3` replaced.
    orig: u8,
    op: Option<Op>,
    len: u8,
    installed: bool,
    /// Count hits per caller too.
    by_caller: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Launch,
    Attach,
}

/// Why the event loop returned.
enum LoopEnd {
    /// No tracee is left: the program is gone.
    Gone,
    /// `--duration` elapsed or deferscope got SIGINT/SIGTERM (attach mode).
    Requested,
}

/// The traced process's memory. As [`Memory`] (what emulated instructions
/// touch) it goes through `process_vm_readv` / `process_vm_writev`, which
/// honour page protections as the instruction would: a refused access
/// makes the tracer single-step the instruction instead, so that it faults
/// for real. Code is read and patched through `/proc/PID/mem`, which a
/// tracer may write even where the text is read-only.
struct ProcMem {
    pid: Pid,
    file: File,
}

impl ProcMem {
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        retry(|| self.file.read_exact_at(buf, addr))
    }
    fn write_code(&self, addr: u64, data: &[u8]) -> io::Result<()> {
        retry(|| self.file.write_all_at(data, addr))
    }
}

impl Memory for ProcMem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len();
        let remote = [uio::RemoteIoVec {
            base: addr as usize,
            len,
        }];
        match uio::process_vm_readv(self.pid, &mut [io::IoSliceMut::new(buf)], &remote) {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => Err(errno(e)),
        }
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> io::Result<()> {
        let remote = [uio::RemoteIoVec {
            base: addr as usize,
            len: data.len(),
        }];
        match uio::process_vm_writev(self.pid, &[io::IoSlice::new(data)], &remote) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(io::ErrorKind::WriteZero.into()),
            Err(e) => Err(errno(e)),
        }
    }
}

fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn os(what: impl Into<String>, e: impl Into<io::Error>) -> TraceError {
    TraceError::Os {
        what: what.into(),
        source: e.into(),
    }
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

// ---------------------------------------------------------------------------
// Raw ptrace requests that take any signal number (nix's Signal cannot
// express real-time signals), and waitpid with the raw status.

fn resume_req(req: libc::c_uint, tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_CONT / PTRACE_SINGLESTEP / PTRACE_DETACH /
    // PTRACE_LISTEN take no pointer: addr is ignored and data is a signal
    // number passed by value. The kernel checks that `tid` is our tracee.
    let r = unsafe {
        libc::ptrace(
            req,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            sig as libc::c_long as *mut libc::c_void,
        )
    };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Wait for any tracee (or `pid`): `Ok(None)` when interrupted by a signal.
fn wait(pid: i32) -> Result<Option<(i32, i32)>, Errno> {
    let mut status = 0;
    // SAFETY: `status` is a valid, writable c_int for the duration of the
    // call; waitpid writes only it.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    if r == -1 {
        match Errno::last() {
            Errno::EINTR => Ok(None),
            e => Err(e),
        }
    } else {
        Ok(Some((r, status)))
    }
}

fn event_of(status: i32) -> i32 {
    (status >> 16) & 0xff
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// A plain stop: `PTRACE_EVENT_STOP` that is not a group-stop (the stop
/// after `PTRACE_INTERRUPT`, a new thread's first stop, or the notice that a
/// listening thread got SIGCONT). It carries nothing for the program.
fn is_plain_stop(status: i32) -> bool {
    libc::WIFSTOPPED(status)
        && event_of(status) == libc::PTRACE_EVENT_STOP
        && !is_stop_signal(libc::WSTOPSIG(status))
}

fn regs_from(u: &libc::user_regs_struct) -> Regs {
    Regs {
        gpr: [
            u.rax, u.rcx, u.rdx, u.rbx, u.rsp, u.rbp, u.rsi, u.rdi, u.r8, u.r9, u.r10, u.r11,
            u.r12, u.r13, u.r14, u.r15,
        ],
        rip: u.rip,
        rflags: u.eflags,
    }
}

fn regs_into(r: &Regs, u: &mut libc::user_regs_struct) {
    let g = &r.gpr;
    (u.rax, u.rcx, u.rdx, u.rbx, u.rsp, u.rbp, u.rsi, u.rdi) =
        (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
    (u.r8, u.r9, u.r10, u.r11, u.r12, u.r13, u.r14, u.r15) =
        (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    u.rip = r.rip;
    u.eflags = r.rflags;
}

// ---------------------------------------------------------------------------
// deferscope's own signals.

/// Launch mode: the program, to which SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to
/// deferscope by another process are forwarded. 0 in attach mode.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// Attach mode: a stop was asked for (SIGINT, SIGTERM, SIGHUP, SIGQUIT).
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let child = FORWARD_TO.load(Ordering::Relaxed);
    if child > 0 {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO
        // handler; reading si_code is a plain load.
        let code = unsafe { (*info).si_code };
        // A terminal's Ctrl-C (SI_KERNEL) reaches the program directly: it
        // is in our process group. Forward only what a process sent.
        if code != libc::SI_KERNEL {
            // SAFETY: kill(2) is async-signal-safe and takes plain integers.
            unsafe { libc::kill(child, sig) };
        }
    } else {
        STOP.store(true, Ordering::Relaxed);
    }
}

extern "C" fn on_alarm(_: libc::c_int) {}

const HANDLED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Install the handlers. They are installed without SA_RESTART, so that a
/// signal interrupts the blocking `waitpid` and the loop looks at `STOP`.
fn install_handlers(forward_to: i32, tick: bool) -> Result<(), TraceError> {
    FORWARD_TO.store(forward_to, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    for sig in HANDLED {
        // SAFETY: an all-zero sigaction is a valid initial value; the
        // handler is an `extern "C"` function with the SA_SIGINFO
        // signature that only does async-signal-safe work (atomics, kill).
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(os("sigaction", io::Error::last_os_error()));
        }
    }
    if tick {
        // A periodic SIGALRM bounds how long `waitpid` can block, so that
        // --duration and a stop request are seen even when the program
        // produces no events.
        // SAFETY: as above; the handler does nothing. setitimer reads the
        // itimerval we pass and writes nothing (old value pointer null).
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_alarm as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
            let period = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            let it = libc::itimerval {
                it_interval: period,
                it_value: period,
            };
            libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(os("setitimer", io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn restore_handlers() {
    FORWARD_TO.store(0, Ordering::Relaxed);
    // SAFETY: resetting dispositions to SIG_DFL and disarming the timer
    // pass only values; no memory is shared with the kernel afterwards.
    unsafe {
        let off: libc::itimerval = std::mem::zeroed();
        libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
        libc::signal(libc::SIGALRM, libc::SIG_DFL);
        for sig in HANDLED {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

// ---------------------------------------------------------------------------

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
}

impl<'p> Engine<'p> {
    fn new(plan: &'p Plan, mode: Mode, main: i32) -> Engine<'p> {
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
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            callers: self
                .callers
                .iter()
                .map(|(&(point, ret), &n)| (point, ret, n))
                .collect(),
            pid: self.main,
            hits: self.hits.clone(),
            emulated: self.emulated,
            stepped: self.stepped,
            end: self.end.unwrap_or(End::Detached),
            elapsed: self.started.map(|s| s.elapsed()).unwrap_or_default(),
        }
    }

    fn mem(&mut self) -> Result<&mut ProcMem, TraceError> {
        self.mem
            .as_mut()
            .ok_or_else(|| TraceError::Other("process memory is not open".into()))
    }

    // -- breakpoints -------------------------------------------------------

    /// Open the process's memory, find the load bias and plant every
    /// breakpoint. `tid` is a thread in a ptrace-stop.
    fn install(&mut self, tid: i32) -> Result<(), TraceError> {
        let path = format!("/proc/{}/mem", self.main);
        let f = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| os(format!("cannot open {path}"), e))?;
        self.mem = Some(ProcMem {
            pid: Pid::from_raw(self.main),
            file: f,
        });
        let bias = self.load_bias()?;
        self.bias = bias;
        self.bps.clear();
        self.by_addr.clear();
        for (i, p) in self.plan.points.iter().enumerate() {
            let addr = p.pc.wrapping_add(bias);
            let mut cur = vec![0u8; p.code.len()];
            self.mem()?
                .read_code(addr, &mut cur)
                .map_err(|e| os(format!("cannot read the program's code at {addr:#x}"), e))?;
            if cur != p.code {
                return Err(TraceError::Other(format!(
                    "the code at {addr:#x} differs from the file{}",
                    if cur[0] == INT3 {
                        " (a breakpoint is already there: another debugger?)"
                    } else {
                        ""
                    }
                )));
            }
            let d = emulate::decode(&p.code, addr);
            if d.len == 0 {
                return Err(TraceError::Other(format!(
                    "no instruction at {:#x} to put a breakpoint on",
                    p.pc
                )));
            }
            self.by_addr.insert(addr, self.bps.len());
            self.bps.push(Bp {
                point: i,
                addr,
                orig: p.code[0],
                op: d.op,
                len: d.len,
                installed: false,
                // These points sit before the frame is built: the return
                // address is at SP.
                by_caller: matches!(p.probe, Probe::Panic | Probe::Recover),
            });
        }
        for i in 0..self.bps.len() {
            self.poke(tid, self.bps[i].addr, INT3)?;
            self.bps[i].installed = true;
        }
        self.started.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Write one byte of code. `/proc/PID/mem` writes to read-only text for
    /// a tracer on most kernels; where it is refused, PTRACE_POKEDATA on
    /// the stopped thread `tid` does it.
    fn poke(&mut self, tid: i32, addr: u64, byte: u8) -> Result<(), TraceError> {
        if self.mem()?.write_code(addr, &[byte]).is_ok() {
            return Ok(());
        }
        let word_addr = addr & !7;
        let shift = 8 * (addr - word_addr) as u32;
        let a = word_addr as ptrace::AddressType;
        let word = ptrace::read(Pid::from_raw(tid), a)
            .map_err(|e| os(format!("cannot read code at {word_addr:#x}"), errno(e)))?
            as u64;
        let new = (word & !(0xffu64 << shift)) | ((byte as u64) << shift);
        ptrace::write(Pid::from_raw(tid), a, new as libc::c_long)
            .map_err(|e| os(format!("cannot write code at {word_addr:#x}"), errno(e)))
    }

    /// Put back every original byte.
    fn uninstall(&mut self, tid: i32) -> Result<(), TraceError> {
        let mut first_err = None;
        for i in 0..self.bps.len() {
            if !self.bps[i].installed {
                continue;
            }
            match self.poke(tid, self.bps[i].addr, self.bps[i].orig) {
                Ok(()) => self.bps[i].installed = false,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runtime address minus link-time address: `AT_ENTRY - e_entry`.
    fn load_bias(&self) -> Result<u64, TraceError> {
        let path = format!("/proc/{}/auxv", self.main);
        let auxv = std::fs::read(&path).map_err(|e| os(format!("cannot read {path}"), e))?;
        for kv in auxv.chunks_exact(16) {
            let k = u64::from_ne_bytes(kv[..8].try_into().unwrap());
            let v = u64::from_ne_bytes(kv[8..].try_into().unwrap());
            if k == libc::AT_ENTRY {
                return Ok(v.wrapping_sub(self.plan.elf_entry));
            }
        }
        Err(TraceError::Other(format!("no AT_ENTRY in {path}")))
    }

    // -- resuming ------------------------------------------------------------

    /// Resume a stopped thread, delivering its held-back signals.
    fn resume(&mut self, tid: i32) -> Result<(), TraceError> {
        let Some(t) = self.threads.get_mut(&tid) else {
            return Ok(());
        };
        let (sig, info) = t.sigs.pop_front().unwrap_or((0, None));
        let rest: Vec<i32> = t.sigs.drain(..).map(|(s, _)| s).collect();
        t.st = St::Running;
        if let Some(info) = info {
            let _ = ptrace::setsiginfo(Pid::from_raw(tid), &info);
        }
        match resume_req(libc::PTRACE_CONT, tid, sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(os(format!("PTRACE_CONT {tid}"), errno(e))),
        }
        for s in rest {
            // More than one signal arrived during a single step: the rest
            // are sent again (without their original siginfo).
            // SAFETY: tgkill takes plain integers.
            unsafe { libc::syscall(libc::SYS_tgkill, self.main, tid, s) };
        }
        Ok(())
    }

    fn resume_with(&mut self, tid: i32, sig: i32) -> Result<(), TraceError> {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.sigs.push_back((sig, None));
        }
        self.resume(tid)
    }

    /// Resume every thread that stop_all held and that has nothing queued.
    fn release(&mut self) -> Result<(), TraceError> {
        let held: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| t.st == St::Held)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in held {
            self.resume(tid)?;
        }
        Ok(())
    }

    // -- events ----------------------------------------------------------

    fn on_exit(&mut self, tid: i32, status: i32) {
        self.threads.remove(&tid);
        self.exited.insert(tid);
        if tid == self.main {
            self.end = Some(if libc::WIFEXITED(status) {
                End::Exited(libc::WEXITSTATUS(status))
            } else {
                End::Signaled(libc::WTERMSIG(status))
            });
        }
    }

    /// Handle one event from `waitpid`.
    fn handle(&mut self, tid: i32, status: i32) -> Result<(), TraceError> {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.on_exit(tid, status);
            return Ok(());
        }
        if !libc::WIFSTOPPED(status) {
            return Ok(());
        }
        if self.untraced {
            // Left over from before the detach; nothing to do.
            return Ok(());
        }
        self.threads
            .entry(tid)
            .or_insert_with(|| Thread::new(St::Held))
            .st = St::Held;
        self.exited.remove(&tid);
        let sig = libc::WSTOPSIG(status);
        match event_of(status) {
            0 => self.on_signal(tid, sig),
            libc::PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(Pid::from_raw(tid)) {
                    let new = new as i32;
                    if !self.exited.remove(&new) {
                        self.threads
                            .entry(new)
                            .or_insert_with(|| Thread::new(St::Starting));
                    }
                }
                self.resume(tid)
            }
            libc::PTRACE_EVENT_EXEC => self.on_exec(tid),
            libc::PTRACE_EVENT_STOP if is_stop_signal(sig) => {
                // A group-stop (SIGSTOP, Ctrl-Z): stay stopped like an
                // untraced process would, until SIGCONT.
                match resume_req(libc::PTRACE_LISTEN, tid, 0) {
                    Ok(()) => {
                        if let Some(t) = self.threads.get_mut(&tid) {
                            t.st = St::Parked;
                        }
                        Ok(())
                    }
                    Err(Errno::ESRCH) => Ok(()),
                    Err(e) => Err(os("PTRACE_LISTEN", errno(e))),
                }
            }
            _ => self.resume(tid),
        }
    }

    /// A signal-delivery-stop: our breakpoint, or the program's signal.
    fn on_signal(&mut self, tid: i32, sig: i32) -> Result<(), TraceError> {
        if sig == libc::SIGTRAP {
            match ptrace::getregs(Pid::from_raw(tid)) {
                Ok(regs) => {
                    if let Some(i) = self.trapped_at(tid, regs.rip) {
                        return self.on_breakpoint(tid, i, regs);
                    }
                }
                Err(Errno::ESRCH) => return Ok(()),
                Err(e) => return Err(os("PTRACE_GETREGS", errno(e))),
            }
        }
        // The program's own signal, SIGURG preemption included: deliver it.
        self.resume_with(tid, sig)
    }

    /// The breakpoint `tid` trapped on, in a SIGTRAP stop at `rip`: one
    /// planted at `rip - 1`. After a one-byte instruction (PUSHQ BP) that
    /// address is also where an emulated hit resumes, so there the trap
    /// must also be the kernel's (`SI_KERNEL`, an `int3`), not a SIGTRAP
    /// that someone sent.
    fn trapped_at(&self, tid: i32, rip: u64) -> Option<usize> {
        let i = *self.by_addr.get(&rip.wrapping_sub(1))?;
        let b = &self.bps[i];
        if !b.installed {
            return None;
        }
        if b.len == 1 {
            let info = ptrace::getsiginfo(Pid::from_raw(tid)).ok()?;
            if info.si_code != libc::SI_KERNEL {
                return None;
            }
        }
        Some(i)
    }

    /// A hit on breakpoint `i`. If it fails before the original
    /// instruction has run, the thread is put back at the breakpoint's
    /// address, so that it runs that instruction once the breakpoint is out
    /// (left at the trap's pc + 1 it would resume mid-instruction).
    fn on_breakpoint(
        &mut self,
        tid: i32,
        i: usize,
        uregs: libc::user_regs_struct,
    ) -> Result<(), TraceError> {
        self.ran = false;
        let res = self.hit(tid, i, uregs);
        if res.is_err() && !self.ran {
            let mut back = uregs;
            back.rip = self.bps[i].addr;
            let _ = ptrace::setregs(Pid::from_raw(tid), back);
        }
        res
    }

    fn hit(
        &mut self,
        tid: i32,
        i: usize,
        mut uregs: libc::user_regs_struct,
    ) -> Result<(), TraceError> {
        if let Some(n) = self.fail_after {
            if self.emulated + self.stepped >= n {
                return Err(TraceError::Other(format!(
                    "failing on purpose after {n} breakpoint hits (--fail-after-hits)"
                )));
            }
        }
        self.hits[self.bps[i].point] += 1;
        if self.bps[i].by_caller {
            let mut ret = [0u8; 8];
            if self.mem()?.read(uregs.rsp, &mut ret).is_ok() {
                let ret = u64::from_le_bytes(ret).wrapping_sub(self.bias);
                *self.callers.entry((self.bps[i].point, ret)).or_default() += 1;
            }
        }
        let (addr, len) = (self.bps[i].addr, self.bps[i].len);
        if let Some(op) = self.bps[i].op.filter(|_| !self.single_step) {
            let mut r = regs_from(&uregs);
            r.rip = addr;
            let res = emulate::execute(&op, addr + len as u64, &mut r, self.mem()?);
            if res.is_ok() {
                regs_into(&r, &mut uregs);
                match ptrace::setregs(Pid::from_raw(tid), uregs) {
                    Ok(()) => self.ran = true,
                    Err(Errno::ESRCH) => return Ok(()),
                    Err(e) => return Err(os("PTRACE_SETREGS", errno(e))),
                }
                self.emulated += 1;
                return self.resume(tid);
            }
            // Memory the instruction touches is not accessible: let the
            // CPU run it and fault as it would have.
        }
        self.stepped += 1;
        self.step_over(tid, i, uregs)
    }

    /// Run the original instruction at breakpoint `i` on `tid` with every
    /// other thread stopped, then plant the breakpoint again.
    fn step_over(
        &mut self,
        tid: i32,
        i: usize,
        mut uregs: libc::user_regs_struct,
    ) -> Result<(), TraceError> {
        self.stop_all()?;
        if !self.threads.contains_key(&tid) {
            // It died while the others stopped (the process was killed).
            self.release()?;
            return Ok(());
        }
        let addr = self.bps[i].addr;
        self.poke(tid, addr, self.bps[i].orig)?;
        uregs.rip = addr;
        let stepped = match ptrace::setregs(Pid::from_raw(tid), uregs) {
            Ok(()) => self.single_step(tid)?,
            Err(Errno::ESRCH) => false,
            Err(e) => return Err(os("PTRACE_SETREGS", errno(e))),
        };
        self.ran = stepped;
        self.poke(tid, addr, INT3)?;
        if stepped {
            self.resume(tid)?;
        }
        self.release()
    }

    /// Single-step `tid` over one instruction; signals that arrive meanwhile
    /// are held back for its next resume. False if the thread died.
    fn single_step(&mut self, tid: i32) -> Result<bool, TraceError> {
        loop {
            match resume_req(libc::PTRACE_SINGLESTEP, tid, 0) {
                Ok(()) => {}
                Err(Errno::ESRCH) => return Ok(false),
                Err(e) => return Err(os("PTRACE_SINGLESTEP", errno(e))),
            }
            let status = loop {
                match wait(tid) {
                    Ok(Some((_, s))) => break s,
                    Ok(None) => continue,
                    Err(Errno::ECHILD) => return Ok(false),
                    Err(e) => return Err(os("waitpid", errno(e))),
                }
            };
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.on_exit(tid, status);
                return Ok(false);
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let sig = libc::WSTOPSIG(status);
            match event_of(status) {
                0 if sig == libc::SIGTRAP => {
                    let info = ptrace::getsiginfo(Pid::from_raw(tid)).ok();
                    if info.is_none_or(|i| i.si_code == libc::TRAP_TRACE) {
                        return Ok(true);
                    }
                    // Someone sent the program a SIGTRAP: keep it for later.
                    self.hold_signal(tid, sig, info);
                }
                0 => {
                    let info = ptrace::getsiginfo(Pid::from_raw(tid)).ok();
                    self.hold_signal(tid, sig, info);
                }
                // Plain stops (a pending interrupt) and group-stops: the
                // instruction has not run yet; step again.
                _ => {}
            }
        }
    }

    fn hold_signal(&mut self, tid: i32, sig: i32, info: Option<libc::siginfo_t>) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.sigs.push_back((sig, info));
        }
    }

    /// Stop every running thread. Afterwards no thread runs program code:
    /// each one is Held, Queued (its event in the queue), Parked or
    /// Starting.
    fn stop_all(&mut self) -> Result<(), TraceError> {
        let running: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| t.st == St::Running)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in running {
            // ESRCH: it is exiting; its exit is still to be reported.
            let _ = ptrace::interrupt(Pid::from_raw(tid));
            if let Some(t) = self.threads.get_mut(&tid) {
                t.st = St::Stopping;
            }
        }
        self.wait_until(|t| t.st != St::Stopping)
    }

    /// Collect events until `ok` holds for every thread. Plain stops hold
    /// the thread; other events are queued.
    fn wait_until(&mut self, ok: impl Fn(&Thread) -> bool) -> Result<(), TraceError> {
        while !self.threads.values().all(&ok) {
            let (tid, status) = match wait(-1) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(Errno::ECHILD) => {
                    self.threads.clear();
                    return Ok(());
                }
                Err(e) => return Err(os("waitpid", errno(e))),
            };
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.on_exit(tid, status);
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let plain = is_plain_stop(status);
            let t = self
                .threads
                .entry(tid)
                .or_insert_with(|| Thread::new(St::Held));
            self.exited.remove(&tid);
            if plain {
                t.st = St::Held;
            } else {
                t.st = St::Queued;
                self.queue.push_back((tid, status));
            }
        }
        Ok(())
    }

    fn on_exec(&mut self, tid: i32) -> Result<(), TraceError> {
        // execve killed every other thread; `tid` is now the leader.
        self.threads.retain(|&t, _| t == tid);
        self.execs += 1;
        for b in &mut self.bps {
            b.installed = false;
        }
        let first = self.mode == Mode::Launch && self.execs == 1;
        let same = first
            || crate::plan::file_id(Path::new(&format!("/proc/{tid}/exe")))
                .is_ok_and(|id| id == self.plan.file_id);
        if same {
            self.install(tid)?;
            self.resume(tid)
        } else {
            // Another program: it runs untraced from here on.
            self.untraced = true;
            self.mem = None;
            let _ = resume_req(libc::PTRACE_DETACH, tid, 0);
            self.threads.clear();
            Ok(())
        }
    }

    /// Handle events until the program is gone or (attach mode) a stop is
    /// due.
    fn run(&mut self, deadline: Option<Instant>) -> Result<LoopEnd, TraceError> {
        loop {
            if let Some((tid, status)) = self.queue.pop_front() {
                self.handle(tid, status)?;
                continue;
            }
            if self.mode == Mode::Attach
                && (STOP.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d))
            {
                return Ok(LoopEnd::Requested);
            }
            match wait(-1) {
                Ok(Some((tid, status))) => self.handle(tid, status)?,
                Ok(None) => {}
                Err(Errno::ECHILD) => return Ok(LoopEnd::Gone),
                Err(e) => return Err(os("waitpid", errno(e))),
            }
        }
    }

    /// Stop everything, take out every breakpoint and detach, leaving the
    /// program as it would have been without us.
    fn detach_all(&mut self) -> Result<(), TraceError> {
        self.stop_all()?;
        loop {
            // Listening threads must be in a ptrace-stop to be detached.
            let parked: Vec<i32> = self
                .threads
                .iter()
                .filter(|(_, t)| t.st == St::Parked)
                .map(|(&tid, _)| tid)
                .collect();
            for tid in parked {
                let _ = ptrace::interrupt(Pid::from_raw(tid));
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.st = St::Stopping;
                }
            }
            self.wait_until(|t| !matches!(t.st, St::Stopping | St::Starting))?;
            while let Some((tid, status)) = self.queue.pop_front() {
                self.settle(tid, status)?;
            }
            // A thread can stop for the interrupt right after it trapped
            // on a breakpoint, with the SIGTRAP still pending (job-control
            // stops are reported before signals). Detached like that, it
            // would die of the SIGTRAP: let it take the signal first; the
            // stop is settled above (rewound, the signal dropped).
            let held: Vec<i32> = self
                .threads
                .iter()
                .filter(|(_, t)| t.st == St::Held)
                .map(|(&tid, _)| tid)
                .collect();
            let mut trapped = 0;
            for tid in held {
                let Ok(regs) = ptrace::getregs(Pid::from_raw(tid)) else {
                    continue;
                };
                // Without a pending SIGTRAP, pc - 1 on a breakpoint is just
                // the end of an emulated one-byte instruction (PUSHQ BP).
                let at = regs.rip.wrapping_sub(1);
                if self
                    .by_addr
                    .get(&at)
                    .is_some_and(|&i| self.bps[i].installed)
                    && self.sigtrap_pending(tid)
                    && resume_req(libc::PTRACE_CONT, tid, 0).is_ok()
                {
                    if let Some(t) = self.threads.get_mut(&tid) {
                        t.st = St::Stopping;
                    }
                    trapped += 1;
                }
            }
            let busy = self
                .threads
                .values()
                .any(|t| matches!(t.st, St::Stopping | St::Starting | St::Parked));
            if trapped == 0 && !busy && self.queue.is_empty() {
                break;
            }
        }
        let Some(&any) = self.threads.keys().next() else {
            self.done = true;
            return Ok(());
        };
        self.uninstall(any)?;
        let tids: Vec<i32> = self.threads.keys().copied().collect();
        for tid in tids {
            let t = self.threads.get_mut(&tid).unwrap();
            let (sig, info) = t.sigs.pop_front().unwrap_or((0, None));
            let rest: Vec<i32> = t.sigs.drain(..).map(|(s, _)| s).collect();
            if let Some(info) = info {
                let _ = ptrace::setsiginfo(Pid::from_raw(tid), &info);
            }
            let _ = resume_req(libc::PTRACE_DETACH, tid, sig);
            for s in rest {
                // SAFETY: tgkill takes plain integers.
                unsafe { libc::syscall(libc::SYS_tgkill, self.main, tid, s) };
            }
        }
        self.threads.clear();
        self.done = true;
        Ok(())
    }

    /// Whether `tid` has a SIGTRAP pending (`SigPnd` in its status).
    fn sigtrap_pending(&self, tid: i32) -> bool {
        let path = format!("/proc/{}/task/{tid}/status", self.main);
        let Ok(status) = std::fs::read_to_string(path) else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigPnd:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGTRAP - 1)) != 0)
    }

    /// Detach mode: take a queued event to a state a thread can be
    /// detached in. A thread that trapped on a breakpoint is rewound to
    /// the original instruction, which it runs after the detach (uncounted).
    fn settle(&mut self, tid: i32, status: i32) -> Result<(), TraceError> {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.on_exit(tid, status);
            return Ok(());
        }
        let sig = libc::WSTOPSIG(status);
        if let Some(t) = self.threads.get_mut(&tid) {
            t.st = St::Held;
        }
        match event_of(status) {
            0 if sig == libc::SIGTRAP => {
                if let Ok(mut regs) = ptrace::getregs(Pid::from_raw(tid)) {
                    if let Some(i) = self.trapped_at(tid, regs.rip) {
                        regs.rip = self.bps[i].addr;
                        let _ = ptrace::setregs(Pid::from_raw(tid), regs);
                        return Ok(());
                    }
                }
                self.hold_signal(tid, sig, None);
            }
            0 => {
                let info = ptrace::getsiginfo(Pid::from_raw(tid)).ok();
                self.hold_signal(tid, sig, info);
            }
            libc::PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(Pid::from_raw(tid)) {
                    let new = new as i32;
                    if !self.exited.remove(&new) {
                        self.threads
                            .entry(new)
                            .or_insert_with(|| Thread::new(St::Starting));
                    }
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                self.threads.retain(|&t, _| t == tid);
                for b in &mut self.bps {
                    b.installed = false;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Clean up after an error: kill a launched program (it must not
    /// outlive its tracer), or take the breakpoints out of an attached one.
    fn abandon(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        match self.mode {
            Mode::Launch => {
                // SAFETY: kill(2) takes plain integers.
                unsafe { libc::kill(self.main, libc::SIGKILL) };
                reap(-1);
            }
            Mode::Attach => {
                let _ = self.detach_all();
                if self.bps.iter().any(|b| b.installed) {
                    // Last resort: /proc/PID/mem needs no stopped thread.
                    if let Some(m) = self.mem.as_mut() {
                        for b in &mut self.bps {
                            if b.installed && m.write_code(b.addr, &[b.orig]).is_ok() {
                                b.installed = false;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Engine<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}

// ---------------------------------------------------------------------------
// Entry points.

/// Run `program` with `argv` under the tracer until it exits.
pub fn launch(
    plan: &Plan,
    program: &Path,
    argv: &[OsString],
    opts: &Options,
) -> Result<Outcome, TraceError> {
    let shown = program.display().to_string();
    let path = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| TraceError::Other(format!("{shown}: NUL in the path")))?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| TraceError::Other("NUL in an argument".into()))?;
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());

    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // SAFETY: the child calls only async-signal-safe functions (read,
    // close, execv, write, _exit) on memory prepared before the fork
    // (`path`, `ptrs`, the pipe fds), which is all POSIX allows after a
    // fork, even in a multithreaded process. It allocates nothing.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: closing the four pipe fds we own.
        unsafe {
            for fd in [go_r, go_w, err_r, err_w] {
                libc::close(fd);
            }
        }
        return Err(os("fork", e));
    }
    if pid == 0 {
        // SAFETY: see above. The child waits until the parent has seized
        // it, so that the tracer sees the execve and every thread.
        unsafe {
            libc::close(go_w);
            libc::close(err_r);
            let mut b = 0u8;
            loop {
                let n = libc::read(go_r, (&mut b as *mut u8).cast(), 1);
                if n == 1 {
                    break;
                }
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                libc::_exit(127);
            }
            libc::close(go_r);
            libc::execv(path.as_ptr(), ptrs.as_ptr());
            let e = *libc::__errno_location();
            libc::write(err_w, (&e as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    // SAFETY: closing the child's ends of the pipes, which we own.
    unsafe {
        libc::close(go_r);
        libc::close(err_w);
    }
    let mut eng = Engine::new(plan, Mode::Launch, pid);
    eng.single_step = opts.single_step;
    eng.fail_after = opts.fail_after_hits;
    let opts = ptrace::Options::PTRACE_O_EXITKILL
        | ptrace::Options::PTRACE_O_TRACECLONE
        | ptrace::Options::PTRACE_O_TRACEEXEC;
    let seized = ptrace::seize(Pid::from_raw(pid), opts);
    if seized.is_ok() {
        // Before the program starts: a signal meant for it must not end
        // deferscope instead.
        if let Err(e) = install_handlers(pid, false) {
            // SAFETY: closing our pipe ends; the child reads EOF and exits.
            unsafe {
                libc::close(go_w);
                libc::close(err_r);
            }
            return Err(e);
        }
    }
    // Let the child go on to execve (or, if the seize failed, to exit).
    // SAFETY: writing one byte from a local to our pipe end, then closing it.
    unsafe {
        if seized.is_ok() {
            libc::write(go_w, [1u8].as_ptr().cast(), 1);
        }
        libc::close(go_w);
    }
    if let Err(e) = seized {
        // SAFETY: closing our read end.
        unsafe { libc::close(err_r) };
        eng.done = true;
        reap(pid);
        return Err(os(format!("cannot trace {shown} (PTRACE_SEIZE)"), errno(e)));
    }
    eng.threads.insert(pid, Thread::new(St::Running));
    let res = eng.run(None);
    if let Err(e) = res {
        if eng.end.is_none() && eng.execs > 0 {
            // A failure of ours is no reason to end the program: take the
            // breakpoints out, let it run on untraced, and wait for it. If
            // that fails too, dropping the engine kills it.
            eprintln!(
                "deferscope: tracing stopped: {}; {shown} runs on untraced",
                chain(&e)
            );
            if eng.detach_all().is_ok() {
                reap(pid);
            }
        }
        restore_handlers();
        let _ = read_errno(err_r);
        return Err(e);
    }
    restore_handlers();
    let exec_errno = read_errno(err_r);
    if eng.execs == 0 {
        eng.done = true;
        let why = exec_errno.map_or_else(
            || "it exited before starting".to_string(),
            |e| io::Error::from_raw_os_error(e).to_string(),
        );
        return Err(TraceError::Other(format!("cannot run {shown}: {why}")));
    }
    eng.done = true;
    Ok(eng.outcome())
}

/// Trace the running process `pid` for `duration` (or until deferscope is
/// interrupted, or the process exits), then detach.
pub fn attach(plan: &Plan, pid: i32, opts: &Options) -> Result<Outcome, TraceError> {
    let mut eng = Engine::new(plan, Mode::Attach, pid);
    eng.single_step = opts.single_step;
    eng.fail_after = opts.fail_after_hits;
    // Seize every thread; threads that appear meanwhile are either cloned
    // by a seized thread (traced automatically) or seen by the next pass.
    let mut seen = HashSet::new();
    loop {
        let dir = format!("/proc/{pid}/task");
        let tids: Vec<i32> = std::fs::read_dir(&dir)
            .map_err(|e| os(format!("cannot list {dir}"), e))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|t| !seen.contains(t))
            .collect();
        if tids.is_empty() {
            break;
        }
        for tid in tids {
            seen.insert(tid);
            match ptrace::seize(Pid::from_raw(tid), ptrace::Options::PTRACE_O_TRACECLONE) {
                Ok(()) => {
                    eng.threads
                        .entry(tid)
                        .or_insert_with(|| Thread::new(St::Running))
                        .st = St::Running;
                }
                Err(Errno::ESRCH) => {}
                Err(e) => {
                    let hint = if e == Errno::EPERM {
                        " (already traced, or not permitted: same user and \
                         /proc/sys/kernel/yama/ptrace_scope <= 1, or CAP_SYS_PTRACE)"
                    } else {
                        ""
                    };
                    return Err(os(
                        format!("cannot attach to pid {pid} thread {tid}{hint}"),
                        errno(e),
                    ));
                }
            }
        }
    }
    if !eng.threads.contains_key(&pid) {
        eng.done = true;
        return Err(TraceError::Other(format!("pid {pid}: no such process")));
    }
    install_handlers(0, true)?;
    let res = (|| {
        eng.stop_all()?;
        if !eng.threads.contains_key(&pid) {
            return Ok(LoopEnd::Gone);
        }
        eng.install(pid)?;
        eng.release()?;
        if opts.announce {
            let until = match opts.duration {
                Some(d) => format!("for {:.1} s (or until Ctrl-C)", d.as_secs_f64()),
                None => "until Ctrl-C or its exit".into(),
            };
            eprintln!(
                "deferscope: tracing pid {pid} ({} breakpoints) {until}",
                eng.bps.len()
            );
        }
        let deadline = opts.duration.map(|d| Instant::now() + d);
        eng.run(deadline)
    })();
    let res = match res {
        Ok(LoopEnd::Requested) => eng.detach_all(),
        Ok(LoopEnd::Gone) => {
            eng.done = true;
            Ok(())
        }
        Err(e) => Err(e),
    };
    restore_handlers();
    res?;
    Ok(eng.outcome())
}

/// An error and its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Wait until `pid` (or, with -1, every child and tracee) is gone,
/// whatever signals interrupt the wait.
fn reap(pid: i32) {
    loop {
        match wait(pid) {
            Ok(Some((p, st))) if p == pid && (libc::WIFEXITED(st) || libc::WIFSIGNALED(st)) => {
                return
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn pipe() -> Result<(i32, i32), TraceError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os("pipe2", io::Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

/// The errno a failed execv left in the pipe, if any; closes the pipe.
fn read_errno(fd: i32) -> Option<i32> {
    let mut e = 0i32;
    // SAFETY: reading at most 4 bytes into a local i32, then closing our
    // own fd. The child's end is closed (exit or exec), so read returns.
    let n = unsafe {
        let n = libc::read(fd, (&mut e as *mut i32).cast(), 4);
        libc::close(fd);
        n
    };
    (n == 4).then_some(e)
}

/// `SIGTERM` for 15.
pub fn signal_name(sig: i32) -> Option<String> {
    nix::sys::signal::Signal::try_from(sig)
        .ok()
        .map(|s| s.as_str().to_owned())
}
