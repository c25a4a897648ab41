//! Raw ptrace requests, waitpid, registers and small helpers.

use std::io;

use nix::errno::Errno;

use crate::emulate::Regs;
use crate::TraceError;

pub(super) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

pub(super) fn os(what: impl Into<String>, e: impl Into<io::Error>) -> TraceError {
    TraceError::Os {
        what: what.into(),
        source: e.into(),
    }
}

pub(super) fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

// ---------------------------------------------------------------------------
// Raw ptrace requests that take any signal number (nix's Signal cannot
// express real-time signals), and waitpid with the raw status.

pub(super) fn resume_req(req: libc::c_uint, tid: i32, sig: i32) -> Result<(), Errno> {
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
pub(super) fn wait(pid: i32) -> Result<Option<(i32, i32)>, Errno> {
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

pub(super) fn event_of(status: i32) -> i32 {
    (status >> 16) & 0xff
}

pub(super) fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// A plain stop: `PTRACE_EVENT_STOP` that is not a group-stop (the stop
/// after `PTRACE_INTERRUPT`, a new thread's first stop, or the notice that a
/// listening thread got SIGCONT). It carries nothing for the program.
pub(super) fn is_plain_stop(status: i32) -> bool {
    libc::WIFSTOPPED(status)
        && event_of(status) == libc::PTRACE_EVENT_STOP
        && !is_stop_signal(libc::WSTOPSIG(status))
}

pub(super) fn regs_from(u: &libc::user_regs_struct) -> Regs {
    Regs {
        gpr: [
            u.rax, u.rcx, u.rdx, u.rbx, u.rsp, u.rbp, u.rsi, u.rdi, u.r8, u.r9, u.r10, u.r11,
            u.r12, u.r13, u.r14, u.r15,
        ],
        rip: u.rip,
        rflags: u.eflags,
    }
}

pub(super) fn regs_into(r: &Regs, u: &mut libc::user_regs_struct) {
    let g = &r.gpr;
    (u.rax, u.rcx, u.rdx, u.rbx, u.rsp, u.rbp, u.rsi, u.rdi) =
        (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
    (u.r8, u.r9, u.r10, u.r11, u.r12, u.r13, u.r14, u.r15) =
        (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    u.rip = r.rip;
    u.eflags = r.rflags;
}

/// An error and its sources, `a: b: c`.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
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
pub(super) fn reap(pid: i32) {
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

pub(super) fn pipe() -> Result<(i32, i32), TraceError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os("pipe2", io::Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

/// The errno a failed execv left in the pipe, if any; closes the pipe.
pub(super) fn read_errno(fd: i32) -> Option<i32> {
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
