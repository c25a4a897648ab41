//! deferscope's own signals: forwarded to a launched program, or a request
//! to stop (attach mode); and the periodic tick that bounds a blocking
//! `waitpid`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use super::sys::os;
use crate::TraceError;

// ---------------------------------------------------------------------------
// deferscope's own signals.

/// Launch mode: the program, to which SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to
/// deferscope by another process are forwarded. 0 in attach mode.
pub(super) static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// Attach mode: a stop was asked for (SIGINT, SIGTERM, SIGHUP, SIGQUIT).
pub(super) static STOP: AtomicBool = AtomicBool::new(false);

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
pub(super) fn install_handlers(forward_to: i32, tick: Option<Duration>) -> Result<(), TraceError> {
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
    if let Some(tick) = tick {
        // A periodic SIGALRM bounds how long `waitpid` can block, so that
        // --duration, --interval and a stop request are seen even when the
        // program produces no events.
        // SAFETY: as above; the handler does nothing. setitimer reads the
        // itimerval we pass and writes nothing (old value pointer null).
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_alarm as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
            let period = libc::timeval {
                tv_sec: tick.as_secs() as libc::time_t,
                tv_usec: tick.subsec_micros().max(1000) as libc::suseconds_t,
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

pub(super) fn restore_handlers() {
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
