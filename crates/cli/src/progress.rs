//! Progress on long work: an indicatif line on stderr when stderr is a
//! terminal, and nothing at all otherwise (pipes, files and CI logs get no
//! escape codes and no extra lines).
//!
//! Used for the steps that can take seconds to minutes: `check`'s go build
//! and its verification, the explain pass and scans of `diff`, and the
//! binaries of a batch (`scan DIR`, an image: the count and the binary
//! being analysed), with a spinner ([`Progress::start`]); `disasm`
//! (`listing K/N functions`) and `trace` (`tracing: S s, N defers
//! counted`) with a line of their own ([`Progress::counter`],
//! [`Progress::line`]). `scan` and `explain` of one binary draw nothing: on
//! cmd/go (15 MB) they take 0.05 s and 0.35 s, less than a spinner's first
//! frame is worth.
//!
//! A line is redrawn by moving the cursor back over it and clearing it, so
//! it must never share the terminal with other output written meanwhile,
//! or it would overwrite it: `disasm` draws only when its listing does not
//! go to the same terminal, and `trace` only when the traced program's
//! stdout and stderr are not that terminal ([`stderr_terminal_shared`]).

use std::fs::Metadata;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner or a line with a message, or a hidden one when stderr is not
/// a terminal.
pub struct Progress(ProgressBar);

impl Progress {
    pub fn start(msg: impl Into<String>) -> Progress {
        let pb = if std::io::stderr().is_terminal() {
            let pb = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                pb.set_style(style);
            }
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        } else {
            ProgressBar::hidden()
        };
        pb.set_message(msg.into());
        Progress(pb)
    }

    /// A count of `len` things, drawn as `template` ({pos}, {len}, ...)
    /// when `draw` and stderr is a terminal; hidden otherwise.
    pub fn counter(draw: bool, len: u64, template: &str) -> Progress {
        let pb = if draw && std::io::stderr().is_terminal() {
            let pb = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(template) {
                pb.set_style(style);
            }
            pb
        } else {
            ProgressBar::hidden()
        };
        Progress(pb)
    }

    /// A line that shows only its message, set with [`Progress::step`];
    /// drawn when `draw` and stderr is a terminal.
    pub fn line(draw: bool) -> Progress {
        let pb = if draw && std::io::stderr().is_terminal() {
            let pb = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{msg}") {
                pb.set_style(style);
            }
            pb
        } else {
            ProgressBar::hidden()
        };
        Progress(pb)
    }

    /// Change the message (the next step).
    pub fn step(&self, msg: impl Into<String>) {
        self.0.set_message(msg.into());
    }

    /// Set the count to reach.
    pub fn set_len(&self, len: u64) {
        self.0.set_length(len);
    }

    /// Set the count done.
    pub fn set(&self, pos: u64) {
        self.0.set_position(pos);
    }

    /// Whether the line is drawn at all.
    pub fn is_drawn(&self) -> bool {
        !self.0.is_hidden()
    }

    /// Run `f` (which writes to stderr) with the line cleared, then draw
    /// it again below what `f` wrote.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Whether stderr is a terminal and `other` (the metadata of another open
/// file, e.g. stdout or a traced program's fd) is that same terminal
/// device. When stderr is no terminal, nothing is drawn anyway (`false`).
#[cfg(unix)]
pub fn stderr_terminal_shared(other: &Metadata) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let stderr = std::io::stderr();
    if !stderr.is_terminal() {
        return false;
    }
    let Some(ours) = stderr
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok())
    else {
        // Unknown: assume shared, so nothing is overwritten.
        return true;
    };
    other.file_type().is_char_device() && other.rdev() == ours.rdev()
}

#[cfg(not(unix))]
pub fn stderr_terminal_shared(_other: &Metadata) -> bool {
    true
}

/// Whether stdout is the terminal stderr is (then a progress line on
/// stderr would overwrite the output).
pub fn stdout_shares_terminal() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        match std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| std::fs::File::from(fd).metadata().ok())
        {
            Some(m) => stderr_terminal_shared(&m),
            None => true,
        }
    }
    #[cfg(not(unix))]
    {
        true
    }
}
