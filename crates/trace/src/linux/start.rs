//! Entry points: launch a program under the tracer, or attach to a
//! running process.

use std::collections::HashSet;
use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::signals::{install_handlers, restore_handlers};
use super::sys::{chain, errno, os, pipe, read_errno, reap};
use super::{Engine, LoopEnd, Mode, Progress, St, Thread};
use crate::plan::Plan;
use crate::{Options, Outcome, TraceError};

/// Run `program` with `argv` under the tracer until it exits.
pub fn launch<'p>(
    plan: &'p Plan,
    program: &Path,
    argv: &[OsString],
    opts: &Options,
    progress: Progress<'p>,
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
    let tick = eng.configure(opts, progress);
    let seized = ptrace::seize(Pid::from_raw(pid), seize_options(plan, true));
    if seized.is_ok() {
        // Before the program starts: a signal meant for it must not end
        // deferscope instead.
        if let Err(e) = install_handlers(pid, tick) {
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
pub fn attach<'p>(
    plan: &'p Plan,
    pid: i32,
    opts: &Options,
    progress: Progress<'p>,
) -> Result<Outcome, TraceError> {
    let mut eng = Engine::new(plan, Mode::Attach, pid);
    let tick = eng
        .configure(opts, progress)
        .unwrap_or(Duration::from_millis(100))
        .min(Duration::from_millis(100));
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
            match ptrace::seize(Pid::from_raw(tid), seize_options(plan, false)) {
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
    install_handlers(0, Some(tick))?;
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
            let counters = eng.counting.as_ref().map_or(0, |c| c.placed.len());
            let how = if plan.counters {
                format!("{counters} counters, {} breakpoints", eng.bps.len())
            } else {
                format!("{} breakpoints", eng.bps.len())
            };
            eprintln!("deferscope: tracing pid {pid} ({how}) {until}");
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

/// `PTRACE_SEIZE` options: new threads traced from their first
/// instruction; for a launched program, exec events and death with the
/// tracer; in counters mode, a stop at each thread's exit, where the
/// counters are read while the memory is still there.
fn seize_options(plan: &Plan, launch: bool) -> ptrace::Options {
    let mut o = ptrace::Options::PTRACE_O_TRACECLONE;
    if launch {
        o |= ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACEEXEC;
    }
    if plan.counters {
        o |= ptrace::Options::PTRACE_O_TRACEEXIT;
    }
    o
}

impl<'p> Engine<'p> {
    /// Take the options; the tick period the event loop needs, if any.
    fn configure(&mut self, opts: &Options, progress: Progress<'p>) -> Option<Duration> {
        self.single_step = opts.single_step;
        self.fail_after = opts.fail_after_hits;
        let mut tick = None;
        if let Some(every) = opts.interval {
            self.interval = Some((every, Instant::now() + every));
            self.progress = Some(progress);
            tick = Some(every.min(Duration::from_millis(100)));
        }
        if self.plan.counters && opts.fail_after_hits.is_some() {
            self.fail_check = Some(Instant::now());
            tick = Some(Duration::from_millis(5));
        }
        tick
    }
}
