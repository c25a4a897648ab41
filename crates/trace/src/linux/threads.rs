//! The thread state machine: resuming, stopping everyone, single-stepping
//! one thread, and detaching from all.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::sys::{errno, event_of, is_plain_stop, os, reap, resume_req, wait};
use super::{Engine, Mode, St, Thread};
use crate::TraceError;

impl Engine<'_> {
    // -- resuming ------------------------------------------------------------

    /// Resume a stopped thread, delivering its held-back signals.
    pub(super) fn resume(&mut self, tid: i32) -> Result<(), TraceError> {
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

    pub(super) fn resume_with(&mut self, tid: i32, sig: i32) -> Result<(), TraceError> {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.sigs.push_back((sig, None));
        }
        self.resume(tid)
    }

    /// Resume every thread that stop_all held and that has nothing queued.
    pub(super) fn release(&mut self) -> Result<(), TraceError> {
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

    /// Single-step `tid` over one instruction; signals that arrive meanwhile
    /// are held back for its next resume. False if the thread died.
    pub(super) fn single_step(&mut self, tid: i32) -> Result<bool, TraceError> {
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

    pub(super) fn hold_signal(&mut self, tid: i32, sig: i32, info: Option<libc::siginfo_t>) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.sigs.push_back((sig, info));
        }
    }

    /// Stop every running thread. Afterwards no thread runs program code:
    /// each one is Held, Queued (its event in the queue), Parked or
    /// Starting.
    pub(super) fn stop_all(&mut self) -> Result<(), TraceError> {
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
    pub(super) fn wait_until(&mut self, ok: impl Fn(&Thread) -> bool) -> Result<(), TraceError> {
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

    /// Stop everything, take out every breakpoint and patch, unmap the
    /// trampoline block and detach, leaving the program as it would have
    /// been without us.
    pub(super) fn detach_all(&mut self) -> Result<(), TraceError> {
        let mut tries = 0;
        let keep_block = loop {
            self.stop_and_settle()?;
            if self.threads.is_empty() || !self.trampolines_busy()? {
                break false;
            }
            // A signal handler runs on a thread whose pc it saved inside a
            // trampoline: let it return, then stop everyone again.
            tries += 1;
            if tries == 50 {
                break true;
            }
            self.release()?;
            std::thread::sleep(Duration::from_millis(2));
        };
        let Some(&any) = self.threads.keys().next() else {
            self.done = true;
            return Ok(());
        };
        self.remove_counters(any, keep_block)?;
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

    /// Stop every thread and settle every pending event, until each thread
    /// is held in a state it can be detached in.
    fn stop_and_settle(&mut self) -> Result<(), TraceError> {
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
                return Ok(());
            }
        }
    }

    /// Whether `tid` has a SIGTRAP pending (`SigPnd` in its status).
    pub(super) fn sigtrap_pending(&self, tid: i32) -> bool {
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
    pub(super) fn settle(&mut self, tid: i32, status: i32) -> Result<(), TraceError> {
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
    pub(super) fn abandon(&mut self) {
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
                self.restore_text_anyhow();
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
