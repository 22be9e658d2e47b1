//! A transfer's rate limit (`file-client --limit-rate`, `file-server
//! --max-rate-per-client`), as `curl --limit-rate` and `sftp -l` have: bytes
//! go in chunks of at most a twentieth of a second's worth, and after each
//! the sender waits until the average since the start is back at the rate.

use std::time::{Duration, Instant};

/// One transfer's pace.
#[derive(Debug, Clone)]
pub struct Pace {
    rate: u64,
    started: Instant,
    taken: u64,
}

impl Pace {
    /// At most `rate` bytes a second (at least 1).
    pub fn new(rate: u64) -> Pace {
        Pace { rate: rate.max(1), started: Instant::now(), taken: 0 }
    }

    /// The most to send (or read) in one step: a twentieth of a second's
    /// worth, 4 KiB to 1 MiB.
    pub fn chunk(&self) -> u64 {
        (self.rate / 20).clamp(4 * 1024, 1 << 20)
    }

    /// `n` more bytes went: waits until they are within the rate.
    pub fn took(&mut self, n: u64) {
        self.taken += n;
        let due = Duration::from_secs_f64(self.taken as f64 / self.rate as f64);
        if let Some(early) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(early);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_rate_within_bounds() {
        assert_eq!(Pace::new(1 << 20).chunk(), (1 << 20) / 20);
        assert_eq!(Pace::new(10).chunk(), 4096, "never a tiny step");
        assert_eq!(Pace::new(1 << 40).chunk(), 1 << 20, "never a huge one");
    }

    #[test]
    fn a_step_past_the_rate_waits_for_it() {
        let mut pace = Pace::new(100 * 1024);
        let started = Instant::now();
        pace.took(20 * 1024);
        assert!(started.elapsed() >= Duration::from_millis(190), "20 KiB at 100 KiB/s takes 0.2 s at least");
    }
}
