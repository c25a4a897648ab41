//! System calls run inside the traced process: `mmap`, `mprotect` and
//! `munmap` of the trampoline block.
//!
//! A stopped thread's registers are saved, set to the call (number in
//! RAX, arguments in RDI, RSI, RDX, R10, R8, R9) with RIP on two bytes
//! `0f 05` (`SYSCALL`) found in the program's own text, so that no code
//! is written, and `orig_rax` = -1 so that the kernel does not take the
//! thread's own interrupted system call, if any, for ours and restart it.
//! One `PTRACE_SINGLESTEP` runs the call; the result is RAX; the saved
//! registers go back, `orig_rax` and the `-ERESTART*` in RAX included, so
//! the thread's own system call restarts as it would have. Signals that
//! arrive meanwhile are held back and delivered at its next resume.

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;

use super::sys::{errno, event_of, os, resume_req, wait};
use super::Engine;
use crate::TraceError;

impl Engine<'_> {
    /// Run system call `nr` with `args` on the stopped thread `tid`;
    /// its return value (a negative errno on failure).
    pub(super) fn inject_syscall(
        &mut self,
        tid: i32,
        nr: i64,
        args: [u64; 6],
    ) -> Result<i64, TraceError> {
        let at = self
            .plan
            .syscall_at
            .ok_or_else(|| TraceError::Other("no SYSCALL instruction in the text".into()))?
            .wrapping_add(self.bias);
        let mut two = [0u8; 2];
        self.mem()?
            .read_code(at, &mut two)
            .map_err(|e| os(format!("cannot read the program's code at {at:#x}"), e))?;
        if two != [0x0f, 0x05] {
            return Err(TraceError::Other(format!(
                "the code at {at:#x} differs from the file"
            )));
        }
        let pid = Pid::from_raw(tid);
        let saved = ptrace::getregs(pid).map_err(|e| os("PTRACE_GETREGS", errno(e)))?;
        let mut r = saved;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        r.rip = at;
        let res = self.step_syscall(tid, at, r);
        let mut back = saved;
        if let Ok((_, Some(finished))) = res {
            back.rax = finished;
        }
        // The thread may have died; then there is nothing to restore.
        let restored = ptrace::setregs(pid, back);
        let (ret, _) = res?;
        restored.map_err(|e| os("PTRACE_SETREGS", errno(e)))?;
        Ok(ret)
    }

    /// Single-step `tid` with registers `r` until it is past the
    /// `SYSCALL` at `at`: the call's result, and the result of the
    /// thread's own system call if it was still finishing.
    ///
    /// A thread stopped at a `PTRACE_EVENT_CLONE` or `_EXEC` stop is in the
    /// middle of that call: resumed, the kernel first finishes it, storing
    /// its result in RAX (over ours), and reports the step before running a
    /// single instruction. That result belongs to the thread (a clone's
    /// child id): it goes back with the saved registers, and the step is
    /// taken again with ours.
    fn step_syscall(
        &mut self,
        tid: i32,
        at: u64,
        r: libc::user_regs_struct,
    ) -> Result<(i64, Option<u64>), TraceError> {
        let mut finished = None;
        let pid = Pid::from_raw(tid);
        for _ in 0..64 {
            ptrace::setregs(pid, r).map_err(|e| os("PTRACE_SETREGS", errno(e)))?;
            match resume_req(libc::PTRACE_SINGLESTEP, tid, 0) {
                Ok(()) => {}
                Err(e) => return Err(os("PTRACE_SINGLESTEP", errno(e))),
            }
            let status = loop {
                match wait(tid) {
                    Ok(Some((_, s))) => break s,
                    Ok(None) => continue,
                    Err(e) => return Err(os("waitpid", errno(e))),
                }
            };
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.on_exit(tid, status);
                return Err(TraceError::Other(format!(
                    "thread {tid} ended during an injected system call"
                )));
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let regs = match ptrace::getregs(pid) {
                Ok(r) => r,
                Err(Errno::ESRCH) => continue,
                Err(e) => return Err(os("PTRACE_GETREGS", errno(e))),
            };
            let sig = libc::WSTOPSIG(status);
            if event_of(status) == 0 {
                let info = ptrace::getsiginfo(pid).ok();
                // A SIGTRAP of the step itself (TRAP_TRACE, TRAP_BRKPT), or
                // the program's signal, reported before the step: kept.
                let step = sig == libc::SIGTRAP && info.is_none_or(|i| i.si_code > 0);
                if !step {
                    self.hold_signal(tid, sig, info);
                }
            }
            if regs.rip == at + 2 {
                return Ok((regs.rax as i64, finished));
            }
            if regs.rip != at {
                return Err(TraceError::Other(format!(
                    "thread {tid} left the injected system call at {:#x}",
                    regs.rip
                )));
            }
            if regs.rax != r.rax && finished.is_none() {
                finished = Some(regs.rax);
            }
            // Still before the SYSCALL (a stop came first): step again.
        }
        Err(TraceError::Other(
            "the injected system call did not complete".into(),
        ))
    }
}
