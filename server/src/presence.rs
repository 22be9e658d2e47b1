//! Who is connected: names, chat and presence notices, and who left
//! recently. Every session is registered here for as long as it lasts
//! ([`Registration`] removes it on every path out).
//!
//! The list sits behind one `parking_lot::Mutex`, taken when a session
//! arrives, leaves or renames itself, for a broadcast and for a status
//! snapshot. Notices are queued under that lock, so every client sees joins,
//! renames and departures in one order. What changes during transfers
//! (progress, the idle clock) lives in each session's own [`Clock`] and
//! never takes the shared lock.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Local, SecondsFormat};
use common::status::{Activity, Departure, SessionStatus, Status};
use common::Event;
use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::accounts::Account;
use crate::activity::Clock;
use crate::shutdown::Gate;
use crate::transport::Closer;

/// How many departed clients `status` remembers.
pub const RECENT_DEPARTURES: usize = 5;

/// Joins, departures and renames are announced to everyone while at most
/// this many are online; beyond, not (as IRC does in large channels;
/// `status` lists who is there). Announcing each arrival to every session
/// made admitting n sessions take time in n² (3,000 took 47 s).
pub const ANNOUNCE_LIMIT: usize = 100;

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
    name: Mutex<String>,
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

struct Departed {
    name: String,
    addr: SocketAddr,
    left_at: DateTime<Local>,
}

#[derive(Default)]
struct Inner {
    sessions: BTreeMap<u64, Arc<SessionInfo>>,
    departed: VecDeque<Departed>,
    next_id: u64,
    /// Web visitors' connections (the HTTP side), shown in `status` apart
    /// from the sessions: not counted against the cap, not in the chat.
    web: BTreeMap<u64, Arc<SessionInfo>>,
}

impl Inner {
    /// A presence notice (joined, left, renamed) for everyone but `from`,
    /// while at most [`ANNOUNCE_LIMIT`] are online.
    fn announce(&self, from: u64, event: Event) {
        if self.sessions.len() <= ANNOUNCE_LIMIT {
            self.broadcast(from, event);
        }
    }

    /// Queues `event` for everyone but `from`; returns how many got it.
    fn broadcast(&self, from: u64, event: Event) -> usize {
        let event = Notice::new(event);
        let mut recipients = 0;
        for session in self.sessions.values().filter(|s| s.id != from) {
            session.notify(Arc::clone(&event));
            recipients += 1;
        }
        recipients
    }
}

/// Another connected client has the name asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the name '{0}' is taken")]
pub struct NameTaken(pub String);

/// The server's list of sessions.
pub struct Presence {
    inner: Mutex<Inner>,
    started: Instant,
    max_clients: usize,
}

impl Presence {
    /// An empty list for a server admitting `max_clients` at once.
    pub fn new(max_clients: usize) -> Presence {
        Presence { inner: Mutex::new(Inner::default()), started: Instant::now(), max_clients }
    }

    /// A session's shared half, as it starts.
    fn new_session(
        &self,
        id: u64,
        name: String,
        addr: SocketAddr,
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
            clock: Clock::new(self.started),
            gate: Gate::default(),
            closer,
            account: OnceLock::new(),
            login_failures: AtomicU32::new(0),
            logging_in: AtomicBool::new(false),
        }
    }

    /// A session for a visitor of another door (`kind` names it in
    /// `status`: `web` for a web connection, `tftp` for a TFTP transfer):
    /// commands can run for it, `status` lists it apart from the line
    /// protocol's sessions (under `web`, the protocol's field) while the
    /// returned guard lives, nobody is told of it, and it gets no events.
    pub fn visit(self: &Arc<Self>, addr: SocketAddr, kind: &str) -> Visit {
        let (events, _) = crossbeam_channel::bounded(0);
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let info = Arc::new(self.new_session(inner.next_id, kind.into(), addr, Closer::default(), events));
        inner.web.insert(info.id, Arc::clone(&info));
        Visit { presence: Arc::clone(self), info }
    }

    /// Adds an admitted client, names it and tells the others. The returned
    /// guard removes it again when dropped, on every path out of the session.
    pub fn register(self: &Arc<Self>, addr: SocketAddr, closer: Closer, events: Sender<Notice>) -> Registration {
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let name = format!("Client{id:02}");
        let info = Arc::new(self.new_session(id, name.clone(), addr, closer, events));
        inner.sessions.insert(id, Arc::clone(&info));
        let online = inner.sessions.len();
        let joined = Event::notice(format!("{name} joined ({online} online)"))
            .with("event", "joined")
            .with("name", &name)
            .with("online", online);
        inner.announce(id, joined);
        Registration { presence: Arc::clone(self), info }
    }

    /// Gives session `id` a new display name, unique (ignoring case) among
    /// connected clients, and tells the others. Returns the old name.
    ///
    /// # Errors
    /// [`NameTaken`] when another connected client has that name.
    pub fn rename(&self, id: u64, new: &str) -> Result<String, NameTaken> {
        let inner = self.inner.lock();
        let taken = inner.sessions.values().any(|s| s.id != id && s.name.lock().eq_ignore_ascii_case(new));
        if taken {
            return Err(NameTaken(new.to_string()));
        }
        let Some(session) = inner.sessions.get(&id) else { return Err(NameTaken(new.to_string())) };
        let old = std::mem::replace(&mut *session.name.lock(), new.to_string());
        if old != new {
            let renamed = Event::notice(format!("{old} is now {new}"))
                .with("event", "renamed")
                .with("from", &old)
                .with("name", new);
            inner.announce(id, renamed);
        }
        Ok(old)
    }

    /// Sends `event` to every connected client but `from`; never blocks.
    /// Returns how many clients it was sent to.
    pub fn broadcast_from(&self, from: u64, event: Event) -> usize {
        self.inner.lock().broadcast(from, event)
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    /// True when no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every registered session, e.g. for shutdown to reach them all.
    pub fn sessions(&self) -> Vec<Arc<SessionInfo>> {
        self.inner.lock().sessions.values().cloned().collect()
    }

    /// The state as session `me` sees it: the data behind `status` and `info`.
    pub fn status(&self, me: u64) -> Status {
        let inner = self.inner.lock();
        let rfc3339 = |t: &DateTime<Local>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let show = |s: &Arc<SessionInfo>, name: String| SessionStatus {
            name,
            you: s.id == me,
            addr: s.addr.to_string(),
            connected_at: rfc3339(&s.connected_at),
            idle_secs: s.clock.idle_for().as_secs(),
            activity: if s.is_placed() { s.clock.activity() } else { Activity::Command("logging in".into()) },
        };
        let sessions = inner.sessions.values().map(|s| show(s, s.name())).collect();
        let web_name = |s: &SessionInfo| s.account().map_or_else(|| s.name(), |a| a.name.clone());
        let web = inner.web.values().map(|s| show(s, web_name(s))).collect();
        let departed = inner
            .departed
            .iter()
            .rev()
            .map(|d| Departure { name: d.name.clone(), addr: d.addr.to_string(), left_at: rfc3339(&d.left_at) })
            .collect();
        Status {
            uptime_secs: self.started.elapsed().as_secs(),
            clients: inner.sessions.values().filter(|s| s.is_placed()).count() as u64,
            max_clients: self.max_clients as u64,
            sessions,
            departed,
            web,
        }
    }
}

/// A registered session; dropping it records the departure and tells the others.
pub struct Registration {
    presence: Arc<Presence>,
    info: Arc<SessionInfo>,
}

impl std::ops::Deref for Registration {
    type Target = SessionInfo;
    fn deref(&self) -> &SessionInfo {
        &self.info
    }
}

impl Registration {
    /// The shared half, for the session's writer thread.
    pub fn info(&self) -> Arc<SessionInfo> {
        Arc::clone(&self.info)
    }
}

/// A visitor of another door (web, TFTP), listed apart from the sessions in
/// `status` until dropped.
pub struct Visit {
    presence: Arc<Presence>,
    info: Arc<SessionInfo>,
}

impl std::ops::Deref for Visit {
    type Target = SessionInfo;
    fn deref(&self) -> &SessionInfo {
        &self.info
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        self.presence.inner.lock().web.remove(&self.info.id);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.presence.inner.lock();
        inner.sessions.remove(&self.info.id);
        let name = self.info.name();
        let online = inner.sessions.len();
        let left = Event::notice(format!("{name} left ({online} online)"))
            .with("event", "left")
            .with("name", &name)
            .with("online", online);
        inner.announce(self.info.id, left);
        inner.departed.push_back(Departed { name, addr: self.info.addr, left_at: Local::now() });
        while inner.departed.len() > RECENT_DEPARTURES {
            inner.departed.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{unbounded, Receiver};

    fn join(presence: &Arc<Presence>, port: u16) -> (Registration, Receiver<Notice>) {
        let (tx, rx) = unbounded();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        (presence.register(addr, Closer::default(), tx), rx)
    }

    #[test]
    fn arrivals_past_the_announce_limit_are_not_announced_but_chat_still_reaches_all() {
        let presence = Arc::new(Presence::new(ANNOUNCE_LIMIT + 10));
        let (_first, first_events) = join(&presence, 1000);
        let others: Vec<_> = (1..ANNOUNCE_LIMIT as u16).map(|i| join(&presence, 1000 + i)).collect();
        assert_eq!(first_events.try_iter().count(), ANNOUNCE_LIMIT - 1, "every arrival up to the limit");
        let (late, _) = join(&presence, 2000);
        assert_eq!(first_events.try_iter().count(), 0, "arrival number {} is not announced", ANNOUNCE_LIMIT + 1);
        drop(late);
        assert_eq!(first_events.try_iter().count(), 1, "back at the limit, departures are announced again");
        assert_eq!(presence.broadcast_from(others[0].0.id, Event::notice("hi")), ANNOUNCE_LIMIT - 1);
        assert_eq!(first_events.try_iter().count(), 1);
    }

    #[test]
    fn presence_notices_carry_fields_and_departures_are_remembered() {
        let presence = Arc::new(Presence::new(3));
        let (first, first_events) = join(&presence, 1000);
        let (second, _) = join(&presence, 1001);
        let joined = first_events.try_recv().unwrap();
        assert_eq!(joined.text, "Client02 joined (2 online)\n");
        assert_eq!((joined.field("event"), joined.field("name")), (Some("joined"), Some("Client02")));
        presence.rename(second.id, "bob").unwrap();
        let renamed = first_events.try_recv().unwrap();
        assert_eq!((renamed.field("from"), renamed.field("name")), (Some("Client02"), Some("bob")));
        assert_eq!(presence.rename(first.id, "BOB"), Err(NameTaken("BOB".into())));
        drop(second);
        let left = first_events.try_recv().unwrap();
        assert_eq!(left.text, "bob left (1 online)\n");
        assert_eq!(
            (left.field("event"), left.field("name"), left.field("online")),
            (Some("left"), Some("bob"), Some("1"))
        );
        let status = presence.status(first.id);
        assert_eq!((status.clients, status.max_clients, status.sessions.len()), (1, 3, 1));
        assert!(status.sessions[0].you);
        assert_eq!(status.departed[0].name, "bob");
        assert_eq!(status.departed[0].addr, "127.0.0.1:1001");
    }

    #[test]
    fn a_full_outbox_drops_and_counts() {
        let presence = Arc::new(Presence::new(2));
        let (sleeper, _events) = join(&presence, 1000);
        for i in 0..EVENT_QUEUE {
            assert!(sleeper.notify(Event::notice(format!("{i}"))));
        }
        assert!(!sleeper.notify(Event::notice("one too many")));
        assert_eq!(sleeper.take_missed(), 1);
        assert_eq!(sleeper.take_missed(), 0);
    }

    #[test]
    fn the_outbox_is_bounded_in_bytes_too_and_sending_makes_room() {
        let presence = Arc::new(Presence::new(2));
        let (sleeper, _events) = join(&presence, 1000);
        let big = "x".repeat(16 * 1024);
        let fits = EVENT_QUEUE_BYTES / (big.len() + 1);
        for _ in 0..fits {
            assert!(sleeper.notify(Event::notice(big.clone())));
        }
        assert!(!sleeper.notify(Event::notice(big.clone())), "{fits} notices of 16 KiB fill it");
        sleeper.notice_sent(big.len() + 1);
        assert!(sleeper.notify(Event::notice(big)), "room again once one is sent");
    }

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

    #[test]
    fn only_the_last_departures_are_kept_most_recent_first() {
        let presence = Arc::new(Presence::new(10));
        let (stayer, _) = join(&presence, 999);
        for port in 0..RECENT_DEPARTURES as u16 + 2 {
            drop(join(&presence, 2000 + port));
        }
        let departed = presence.status(stayer.id).departed;
        assert_eq!(departed.len(), RECENT_DEPARTURES);
        assert_eq!(departed[0].addr, format!("127.0.0.1:{}", 2000 + RECENT_DEPARTURES + 1));
    }
}
