//! Progress on long work: an indicatif spinner on stderr when stderr is a
//! terminal, and nothing at all otherwise (pipes, files and CI logs get no
//! escape codes and no extra lines).
//!
//! Used for the steps that can take seconds to minutes: `check`'s go build
//! and its verification, the explain pass and scans of `diff`, and the
//! binaries of a batch (`scan DIR`, an image: the count and the binary
//! being analysed). `scan` and `explain` of one binary draw nothing: on
//! cmd/go (15 MB) they take 0.05 s and 0.35 s, less than a spinner's first
//! frame is worth.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner with a message, or a hidden one when stderr is not a terminal.
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

    /// Change the message (the next step).
    pub fn step(&self, msg: impl Into<String>) {
        self.0.set_message(msg.into());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
