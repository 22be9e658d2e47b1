//! Log lines for events a peer can make happen many times a second (a
//! flood of connections, a failing `accept`): written at most so often, the
//! rest counted, so that no client can fill the disk with the server's log.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A log line for something that can happen many times a second (a failing
/// `accept`), written at most once per period with how often it happened.
pub struct LogEvery {
    every: Duration,
    count: u64,
    last: Option<Instant>,
}

impl LogEvery {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> LogEvery {
        LogEvery { every, count: 0, last: None }
    }

    /// Counts one; calls `log` with the count since the last line when a line is due.
    pub fn note(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        if self.last.is_none_or(|t| t.elapsed() >= self.every) {
            log(self.count);
            self.count = 0;
            self.last = Some(Instant::now());
        }
    }
}

/// Per-connection log lines at the default level: the first [`Burst::LINES`]
/// of each second are written as they are; beyond them a line goes to the
/// debug level, and the next second begins with one line counting them.
pub struct Burst {
    window: Mutex<Window>,
}

struct Window {
    began: Instant,
    written: u32,
    held_back: u64,
}

impl Burst {
    /// Lines a second written at the default level.
    pub const LINES: u32 = 5;

    /// A budget with nothing written yet.
    pub fn new() -> Burst {
        Burst { window: Mutex::new(Window { began: Instant::now(), written: 0, held_back: 0 }) }
    }

    /// Whether the next line may be written at the default level (else at
    /// debug); starting a new second writes the count of the last one's
    /// held back, with `what` naming them ("connection events").
    pub fn allow(&self, what: &str) -> bool {
        let mut window = self.window.lock();
        if window.began.elapsed() >= Duration::from_secs(1) {
            if window.held_back > 0 {
                let secs = window.began.elapsed().as_secs_f64();
                tracing::info!("{} more {what} in {secs:.1}s (logged one by one at debug)", window.held_back);
            }
            *window = Window { began: Instant::now(), written: 0, held_back: 0 };
        }
        if window.written < Self::LINES {
            window.written += 1;
            true
        } else {
            window.held_back += 1;
            false
        }
    }
}

impl Default for Burst {
    fn default() -> Burst {
        Burst::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_its_lines_is_held_back() {
        let burst = Burst::new();
        let allowed = (0..20).filter(|_| burst.allow("events")).count();
        assert_eq!(allowed, Burst::LINES as usize);
        assert_eq!(burst.window.lock().held_back, 15);
        burst.window.lock().began -= Duration::from_secs(1);
        assert!(burst.allow("events"), "a new second writes again");
        assert_eq!(burst.window.lock().held_back, 0);
    }
}
