//! One session's clock: when it last showed a sign of life (for the idle
//! timeout) and what it is doing (for `status`). Transfer progress is an
//! atomic counter, so a transfer moving never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::status::Activity;
use parking_lot::Mutex;

/// A session's idle clock and current activity.
#[derive(Debug)]
pub struct Clock {
    /// The server's start; times are kept as milliseconds since it.
    epoch: Instant,
    /// Milliseconds since `epoch` at the last sign of life.
    last_active_ms: AtomicU64,
    /// Bytes moved by the current transfer.
    transferred: AtomicU64,
    /// What the session does; a transfer's `done` is kept in `transferred`.
    activity: Mutex<Activity>,
}

impl Clock {
    /// A clock started now; `epoch` is shared by every session of a server.
    pub fn new(epoch: Instant) -> Clock {
        Clock {
            epoch,
            last_active_ms: AtomicU64::new(millis_since(epoch)),
            transferred: AtomicU64::new(0),
            activity: Mutex::new(Activity::Idle),
        }
    }

    /// Records a sign of life: a request, or transfer progress.
    pub fn touch(&self) {
        self.last_active_ms.store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// Time since the last sign of life.
    pub fn idle_for(&self) -> Duration {
        let now = millis_since(self.epoch);
        Duration::from_millis(now.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)))
    }

    /// Sets what `status` shows; a transfer starts at 0 bytes.
    pub fn set_activity(&self, activity: Activity) {
        self.transferred.store(0, Ordering::Relaxed);
        *self.activity.lock() = activity;
    }

    /// Shows `activity` in `status` until the guard is dropped, then idle
    /// again, on every path out (an error, a panic).
    pub fn doing(&self, activity: Activity) -> Doing<'_> {
        self.set_activity(activity);
        Doing(self)
    }

    /// Records transfer progress (bytes done so far) and counts it as a sign of life.
    pub fn set_transferred(&self, bytes: u64) {
        self.transferred.store(bytes, Ordering::Relaxed);
        self.touch();
    }

    /// What the session is doing, with its transfer's progress.
    pub fn activity(&self) -> Activity {
        let mut activity = self.activity.lock().clone();
        if let Activity::Get { done, .. } | Activity::Put { done, .. } = &mut activity {
            *done = self.transferred.load(Ordering::Relaxed);
        }
        activity
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a session is doing, shown until this is dropped ([`Clock::doing`]).
#[must_use = "the activity is shown only while the guard lives"]
pub struct Doing<'a>(&'a Clock);

impl Drop for Doing<'_> {
    fn drop(&mut self) {
        self.0.set_activity(Activity::Idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_in_the_activity_and_counts_as_life() {
        let clock = Clock::new(Instant::now() - Duration::from_secs(60));
        clock.last_active_ms.store(0, Ordering::Relaxed);
        assert!(clock.idle_for() >= Duration::from_secs(60));
        clock.set_activity(Activity::Get { file: "a".into(), size: 10, done: 0 });
        clock.set_transferred(4);
        assert!(clock.idle_for() < Duration::from_secs(60));
        assert_eq!(clock.activity(), Activity::Get { file: "a".into(), size: 10, done: 4 });
        assert_eq!(clock.activity().describe(), "get a 40%");
        clock.set_activity(Activity::Idle);
        assert_eq!(clock.activity(), Activity::Idle);
    }
}
