//! One connected client's shared half ([`SessionInfo`]): its name, address,
//! outbox of notices (bounded in count and bytes), `say` allowance, idle
//! clock and login state, reached by its reader, its writer and the list.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Local};
use common::Event;
use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::accounts::Account;
use crate::activity::Clock;
use crate::shutdown::Gate;
use crate::transport::Closer;

/// A notice as it waits in outboxes: one broadcast is one allocation,
/// shared by every outbox it is queued in.
pub type Notice = Arc<Event>;

/// Notices a session can have waiting before more are dropped.
pub const EVENT_QUEUE: usize = 1000;

/// Bytes of notices a session can have waiting before more are dropped: a
/// client that never reads costs at most this much memory.
pub const EVENT_QUEUE_BYTES: usize = 256 * 1024;

/// Bytes of `say` text (as sent, escaped) a session may send at once ...
pub const SAY_BURST: u64 = 64 * 1024;

/// ... and per second after that.
pub const SAY_PER_SEC: u64 = 16 * 1024;

/// One connected client, shared by its reader and writer threads and the list.
pub struct SessionInfo {
    /// Unique for the server's lifetime; gives the first name, `ClientNN`.
    pub id: u64,
    /// The display name: `ClientNN` until the client picks one with `name`.
    /// Changed only under the list's lock, which keeps names unique.
    pub(super) name: Mutex<String>,
    /// The peer's address.
    pub addr: SocketAddr,
    /// When it was admitted.
    pub connected_at: DateTime<Local>,
    /// Notices for this client; the session's writer sends them between
    /// replies. At most [`EVENT_QUEUE`] wait; more are dropped and counted.
    events: Sender<Notice>,
    /// Notices dropped because `events` was full; reported once there is room.
    missed: AtomicU64,
    /// Bytes of notice text waiting in `events`.
    queued_bytes: AtomicUsize,
    /// What this client may still `say` now.
    say_budget: Mutex<Budget>,
    /// The idle clock and what the session is doing.
    pub clock: Clock,
    /// Whether the reader is inside a command, for shutdown.
    pub gate: Gate,
    /// Ends the session's connection, for shutdown.
    pub closer: Closer,
    /// The account it logged in to (servers with `--users`); set once.
    account: OnceLock<Account>,
    /// Failed logins in this session.
    login_failures: AtomicU32,
    /// Still among the startups, without a session's place (`--max-clients`):
    /// on a server that needs a login, until the login. Meanwhile it is
    /// listed as logging in and not counted among the clients.
    logging_in: AtomicBool,
}

impl SessionInfo {
    /// The current display name.
    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    /// The account this session logged in to, if it did.
    pub fn account(&self) -> Option<&Account> {
        self.account.get()
    }

    /// Whether it is still logging in, without a session's place (not
    /// counted among the clients in `status`).
    pub fn set_logging_in(&self, logging_in: bool) {
        self.logging_in.store(logging_in, Ordering::SeqCst);
    }

    /// Whether it holds a session's place.
    pub fn is_placed(&self) -> bool {
        !self.logging_in.load(Ordering::SeqCst)
    }

    /// Records the login; false when the session had logged in already.
    pub fn log_in(&self, account: Account) -> bool {
        self.account.set(account).is_ok()
    }

    /// Counts a failed login; how many this session has had.
    pub fn login_failed(&self) -> u32 {
        self.login_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The account's name for logs, `-` before a login.
    pub fn user(&self) -> &str {
        self.account().map_or("-", |a| a.name.as_str())
    }

    /// How many notices were dropped since the last call, and resets the count.
    pub fn take_missed(&self) -> u64 {
        self.missed.swap(0, Ordering::Relaxed)
    }

    /// Queues a notice; never blocks. Returns false when [`EVENT_QUEUE`]
    /// notices or [`EVENT_QUEUE_BYTES`] bytes are waiting already
    /// (broadcasts are made under the list's lock, so the bounds are exact
    /// for them); the notice is then dropped and counted.
    pub fn notify(&self, event: impl Into<Notice>) -> bool {
        let event = event.into();
        let len = event.text.len();
        let room = self.events.len() < EVENT_QUEUE
            && self.queued_bytes.load(Ordering::Relaxed).saturating_add(len) <= EVENT_QUEUE_BYTES;
        let sent = room && self.events.send(event).is_ok();
        if sent {
            self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        } else {
            self.missed.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// The writer sent a notice of `len` bytes of text: room for more.
    pub fn notice_sent(&self, len: usize) {
        self.queued_bytes.fetch_sub(len.min(self.queued_bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Takes `bytes` from this client's `say` allowance; false (and nothing
    /// taken) when it has not that much left.
    pub fn spend_say(&self, bytes: u64) -> bool {
        self.say_budget.lock().spend(bytes)
    }
}

/// An allowance that refills with time (a token bucket), in bytes.
#[derive(Debug)]
struct Budget {
    left: u64,
    at: Instant,
}

impl Budget {
    fn full() -> Budget {
        Budget { left: SAY_BURST, at: Instant::now() }
    }

    fn spend(&mut self, bytes: u64) -> bool {
        let earned = (self.at.elapsed().as_secs_f64() * SAY_PER_SEC as f64) as u64;
        if earned > 0 {
            self.left = self.left.saturating_add(earned).min(SAY_BURST);
            self.at = Instant::now();
        }
        if bytes > self.left {
            return false;
        }
        self.left -= bytes;
        true
    }
}

impl SessionInfo {
    /// A session's shared half as it starts, on a server up since `started`.
    pub(super) fn new(
        id: u64,
        name: String,
        addr: SocketAddr,
        started: Instant,
        closer: Closer,
        events: Sender<Notice>,
    ) -> SessionInfo {
        SessionInfo {
            id,
            name: Mutex::new(name),
            addr,
            connected_at: Local::now(),
            events,
            missed: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            say_budget: Mutex::new(Budget::full()),
            clock: Clock::new(started),
            gate: Gate::default(),
            closer,
            account: OnceLock::new(),
            login_failures: AtomicU32::new(0),
            logging_in: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_has_an_allowance_that_refills() {
        let mut budget = Budget::full();
        assert!(budget.spend(SAY_BURST));
        assert!(!budget.spend(1), "spent");
        budget.at -= std::time::Duration::from_secs(1);
        assert!(budget.spend(SAY_PER_SEC), "a second's worth again");
        assert!(!budget.spend(SAY_PER_SEC));
        budget.at -= std::time::Duration::from_secs(3600);
        assert!(budget.spend(SAY_BURST) && !budget.spend(1), "never more than the burst");
    }
}
