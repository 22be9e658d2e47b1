//! Progress bars for transfers: name, bytes done of total, rate, time left,
//! and a `stalled` mark when nothing has moved for a while; and [`Waiting`],
//! a line saying what the client waits for when the server is slow to answer.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A transfer with no progress for this long is marked stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// A wait this long gets a line saying what it is for.
pub const SAY_WAITING_AFTER: Duration = Duration::from_secs(1);

/// When to draw progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Only when stderr is a terminal.
    Auto,
    /// Never (`--quiet`).
    Never,
    /// Always, even to a pipe (`--progress`).
    Always,
}

/// One transfer's bar; draws nothing when progress is off.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_move: Instant,
    stalled: bool,
}

fn draw_target(mode: ProgressMode) -> Option<ProgressDrawTarget> {
    match mode {
        ProgressMode::Never => None,
        ProgressMode::Auto => Some(ProgressDrawTarget::stderr()),
        ProgressMode::Always => Some(ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), 10)),
    }
}

/// A wait for the server: after [`SAY_WAITING_AFTER`], a spinner line says
/// what for (`waiting for the server to prepare 'big.iso'`) and how long;
/// it goes away when the wait ends.
pub struct Waiting {
    mode: ProgressMode,
    what: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Waiting {
    /// A wait for `what`, starting now.
    pub fn new(mode: ProgressMode, what: impl Into<String>) -> Waiting {
        Waiting { mode, what: what.into(), started: Instant::now(), bar: None }
    }

    /// Called while nothing comes: shows or moves the line.
    pub fn tick(&mut self) {
        if let Some(bar) = &self.bar {
            bar.tick();
            return;
        }
        if self.started.elapsed() < SAY_WAITING_AFTER {
            return;
        }
        self.bar = draw_target(self.mode).map(|target| {
            let bar = ProgressBar::with_draw_target(None, target);
            let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message(self.what.clone());
            bar.tick();
            bar
        });
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    /// A bar for `name`, `total` bytes, `done` of them already there (resume).
    pub fn new(mode: ProgressMode, verb: &str, name: &str, total: u64, done: u64) -> Progress {
        let bar = draw_target(mode).map(|target| {
            let bar = ProgressBar::with_draw_target(Some(total), target);
            let style = ProgressStyle::with_template(
                "{prefix} {msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} [{wide_bar}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{verb} {}", common::text::escape(name)));
            bar.set_position(done);
            bar.reset_eta();
            bar
        });
        Progress { bar, last_move: Instant::now(), stalled: false }
    }

    /// Bytes done so far.
    pub fn set(&mut self, done: u64) {
        self.last_move = Instant::now();
        if let Some(bar) = &self.bar {
            if self.stalled {
                self.stalled = false;
                bar.set_message("");
            }
            bar.set_position(done);
        }
    }

    /// The text after the name (`3/10 files`).
    pub fn set_message(&mut self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
    }

    /// Called while waiting with nothing received: marks the bar stalled.
    pub fn tick(&mut self) {
        if let Some(bar) = &self.bar {
            if !self.stalled && self.last_move.elapsed() >= STALL_AFTER {
                self.stalled = true;
                bar.set_message("stalled");
            }
            bar.tick();
        }
    }

    /// Leaves the bar where it stopped (a cancelled transfer); the caller
    /// prints the outcome below it.
    pub fn abandon(self) {
        if let Some(bar) = self.bar {
            bar.abandon();
        }
    }

    /// Removes the bar; the caller prints the outcome.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
