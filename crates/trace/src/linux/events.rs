//! The event loop: one `waitpid` event at a time.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::signals::STOP;
use super::sys::{errno, event_of, is_stop_signal, os, resume_req, wait};
use super::{Engine, LoopEnd, Mode, St, Thread};
use crate::report::End;
use crate::TraceError;

impl Engine<'_> {
    // -- events ----------------------------------------------------------

    pub(super) fn on_exit(&mut self, tid: i32, status: i32) {
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
    pub(super) fn handle(&mut self, tid: i32, status: i32) -> Result<(), TraceError> {
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
            libc::PTRACE_EVENT_EXIT => {
                self.on_exit_event(tid);
                self.resume(tid)
            }
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
    pub(super) fn on_signal(&mut self, tid: i32, sig: i32) -> Result<(), TraceError> {
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

    pub(super) fn on_exec(&mut self, tid: i32) -> Result<(), TraceError> {
        // execve killed every other thread; `tid` is now the leader. The
        // old image's counters went with it (read at the exec hook).
        self.threads.retain(|&t, _| t == tid);
        self.execs += 1;
        self.retire_counters();
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
    pub(super) fn run(&mut self, deadline: Option<Instant>) -> Result<LoopEnd, TraceError> {
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
            self.tick()?;
        }
    }

    /// Periodic work between events: `--interval` reports, and the
    /// `--fail-after-hits` test hook of the counters mode.
    fn tick(&mut self) -> Result<(), TraceError> {
        let now = Instant::now();
        if let (Some(n), Some(at)) = (self.fail_after, self.fail_check) {
            if self.plan.counters && now >= at {
                self.fail_check = Some(now + Duration::from_millis(5));
                self.read_counters();
                let counted: u64 = self
                    .counts()
                    .iter()
                    .zip(&self.plan.points)
                    .filter(|(_, p)| p.probe.counts())
                    .map(|(c, _)| c)
                    .sum();
                if counted >= n {
                    return Err(TraceError::Other(format!(
                        "failing on purpose after {n} counted events (--fail-after-hits)"
                    )));
                }
            }
        }
        if let Some((every, next)) = self.interval {
            if now >= next {
                self.interval = Some((every, (next + every).max(now)));
                self.read_counters();
                let counts = self.counts();
                let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
                if let Some(p) = self.progress.as_mut() {
                    p(&counts, elapsed);
                }
            }
        }
        Ok(())
    }
}
