//! Who is connected, what each is doing, and who left recently: the data
//! behind `status`, and the handles shutdown uses to reach every session.
//!
//! The registry itself sits behind one `parking_lot::Mutex`, taken only when
//! a session arrives or leaves and for `status`; progress counters and
//! timestamps that change during transfers are atomics on the session's own
//! [`SessionInfo`], so a transfer never takes the shared lock.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, SecondsFormat};
use crossbeam_channel::Sender;
use parking_lot::Mutex;

/// How many departed clients `status` remembers.
pub const RECENT_DEPARTURES: usize = 5;

/// Notices a session can have waiting before more are dropped.
pub const EVENT_QUEUE: usize = 1000;

/// What a session is doing right now, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Activity {
    /// Waiting for a command.
    #[default]
    Idle,
    /// Running a command (its summary).
    Command(String),
    /// Sending a file: its name and total size; progress is in `transferred`.
    Sending(String, u64),
    /// Receiving an upload: its name and total size.
    Receiving(String, u64),
}

/// A session's reader as shutdown sees it. Both sides change it under one
/// lock, so a reader either is woken by shutdown or sees it was told.
#[derive(Debug, Default)]
struct Phase {
    /// Running a command: shutdown lets it finish.
    busy: bool,
    /// Shutdown has queued its notice for this session.
    told_to_stop: bool,
}

/// One connected client, shared by its reader and writer threads and the registry.
pub struct SessionInfo {
    /// Unique for the server's lifetime; gives the first name, `ClientNN`.
    pub id: u64,
    /// The display name: `ClientNN` until the client picks one with `name`.
    /// Changed only under the registry's lock, which keeps names unique.
    name: Mutex<String>,
    /// The peer's address.
    pub addr: SocketAddr,
    /// When it was admitted.
    pub connected_at: DateTime<Local>,
    /// A handle on the socket so shutdown can unblock its threads.
    stream: TcpStream,
    /// Notices for this client; the session's writer sends them between
    /// replies. At most [`EVENT_QUEUE`] wait; more are dropped and counted.
    events: Sender<String>,
    /// Notices dropped because `events` was full; reported once there is room.
    missed: AtomicU64,
    /// Milliseconds since the registry started, at the last sign of life.
    last_active_ms: AtomicU64,
    /// Bytes moved by the current transfer.
    transferred: AtomicU64,
    activity: Mutex<Activity>,
    /// Where the reader is, as far as shutdown is concerned.
    phase: Mutex<Phase>,
    clock: Instant,
}

impl SessionInfo {
    /// The current display name.
    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    /// How many notices were dropped since the last call, and resets the count.
    pub fn take_missed(&self) -> u64 {
        self.missed.swap(0, Ordering::Relaxed)
    }

    /// Records a sign of life: a request, or transfer progress.
    pub fn touch(&self) {
        self.last_active_ms.store(self.clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last sign of life.
    pub fn idle_for(&self) -> Duration {
        let now = self.clock.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)))
    }

    /// Sets what `status` shows for this session.
    pub fn set_activity(&self, activity: Activity) {
        self.transferred.store(0, Ordering::Relaxed);
        *self.activity.lock() = activity;
    }

    /// Records transfer progress (bytes done so far) and counts it as activity.
    pub fn set_transferred(&self, bytes: u64) {
        self.transferred.store(bytes, Ordering::Relaxed);
        self.touch();
    }

    /// Marks the reader as running a command, unless the server is stopping:
    /// then returns false and the session must end. Shutdown looks at the
    /// same state under the same lock, so no command starts after it passed by.
    pub fn begin_command(&self, stopping: &std::sync::atomic::AtomicBool) -> bool {
        let mut phase = self.phase.lock();
        if stopping.load(Ordering::SeqCst) {
            return false;
        }
        phase.busy = true;
        true
    }

    /// The reader finished its command. Returns true when shutdown passed by
    /// meanwhile and left this session to end by itself; otherwise shutdown,
    /// if it comes, wakes the idle reader.
    pub fn end_command(&self) -> bool {
        let mut phase = self.phase.lock();
        phase.busy = false;
        phase.told_to_stop
    }

    /// Queues a notice, a line of text; never blocks. Returns false when
    /// [`EVENT_QUEUE`] notices are waiting already (broadcasts are made under
    /// the registry's lock, so the bound is exact for them).
    pub fn notify(&self, text: impl Into<String>) -> bool {
        let mut text = text.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let sent = self.events.len() < EVENT_QUEUE && self.events.send(text).is_ok();
        if !sent {
            self.missed.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    fn describe_activity(&self) -> String {
        let percent = |total: u64| {
            let done = u128::from(self.transferred.load(Ordering::Relaxed).min(total));
            (done * 100).checked_div(u128::from(total)).unwrap_or(100)
        };
        match &*self.activity.lock() {
            Activity::Idle => "idle".to_string(),
            Activity::Command(c) => c.clone(),
            Activity::Sending(name, total) => format!("get {name} {}%", percent(*total)),
            Activity::Receiving(name, total) => format!("put {name} {}%", percent(*total)),
        }
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
}

impl Inner {
    /// Queues `text` for everyone but `from`. Sent under the registry lock so
    /// that joins, renames and departures reach everyone in one order.
    fn broadcast(&self, from: u64, text: &str) -> usize {
        let mut recipients = 0;
        for session in self.sessions.values().filter(|s| s.id != from) {
            session.notify(text.to_string());
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
pub struct Registry {
    inner: Mutex<Inner>,
    started: Instant,
    max_clients: usize,
}

impl Registry {
    /// An empty registry for a server admitting `max_clients` at once.
    pub fn new(max_clients: usize) -> Registry {
        Registry { inner: Mutex::new(Inner::default()), started: Instant::now(), max_clients }
    }

    /// Adds an admitted client and names it. The returned guard removes it
    /// again when dropped, on every path out of the session.
    pub fn register(self: &Arc<Self>, addr: SocketAddr, stream: TcpStream, events: Sender<String>) -> Registration {
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let name = format!("Client{id:02}");
        let info = Arc::new(SessionInfo {
            id,
            name: Mutex::new(name.clone()),
            addr,
            connected_at: Local::now(),
            stream,
            events,
            missed: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(self.started.elapsed().as_millis() as u64),
            transferred: AtomicU64::new(0),
            activity: Mutex::new(Activity::Idle),
            phase: Mutex::new(Phase::default()),
            clock: self.started,
        });
        inner.sessions.insert(id, Arc::clone(&info));
        inner.broadcast(id, &format!("{name} joined ({} online)", inner.sessions.len()));
        Registration { registry: Arc::clone(self), info }
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
            inner.broadcast(id, &format!("{old} is now {new}"));
        }
        Ok(old)
    }

    /// Sends `text` to every connected client but `from`; never blocks.
    /// Returns how many clients it was sent to.
    pub fn broadcast_from(&self, from: u64, text: &str) -> usize {
        self.inner.lock().broadcast(from, text)
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    /// True when no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sessions(&self) -> Vec<Arc<SessionInfo>> {
        self.inner.lock().sessions.values().cloned().collect()
    }

    /// First step of a graceful shutdown, after `stopping` is set: tells every
    /// client, and wakes the readers that are waiting for a command so they end;
    /// sessions in the middle of a command or transfer finish it first.
    pub fn announce_shutdown(&self, grace: Duration) {
        for session in self.sessions() {
            session.notify(format!("server shutting down; transfers in progress have {}s to finish", grace.as_secs()));
            let mut phase = session.phase.lock();
            phase.told_to_stop = true;
            if !phase.busy {
                let _ = session.stream.shutdown(Shutdown::Read);
            }
        }
    }

    /// Last step of shutdown: closes every remaining connection.
    pub fn close_all(&self) {
        for session in self.sessions() {
            let _ = session.stream.shutdown(Shutdown::Both);
        }
    }

    /// Uptime, clients connected and the cap: the `status` reply's header fields.
    pub fn counts(&self) -> (Duration, usize, usize) {
        (self.started.elapsed(), self.len(), self.max_clients)
    }

    /// The `status` text, as seen by session `me`. Fields on a client's line
    /// are separated by two spaces; times are RFC 3339.
    pub fn status(&self, me: u64) -> String {
        let inner = self.inner.lock();
        let mut out = String::new();
        let _ = writeln!(out, "uptime {}", human_duration(self.started.elapsed()));
        let _ = writeln!(out, "clients {}/{}", inner.sessions.len(), self.max_clients);
        for s in inner.sessions.values() {
            let marker = if s.id == me { " (you)" } else { "" };
            let _ = writeln!(
                out,
                "  {}{marker}  {}  connected {}  idle {}  {}",
                s.name(),
                s.addr,
                s.connected_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                human_duration(s.idle_for()),
                s.describe_activity(),
            );
        }
        if !inner.departed.is_empty() {
            let _ = writeln!(out, "recently left");
            for d in inner.departed.iter().rev() {
                let left_at = d.left_at.to_rfc3339_opts(SecondsFormat::Secs, true);
                let _ = writeln!(out, "  {}  {}  left {left_at}", d.name, d.addr);
            }
        }
        out
    }
}

/// A registered session; dropping it records the departure.
pub struct Registration {
    registry: Arc<Registry>,
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

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.registry.inner.lock();
        inner.sessions.remove(&self.info.id);
        let name = self.info.name();
        inner.broadcast(self.info.id, &format!("{name} left ({} online)", inner.sessions.len()));
        inner.departed.push_back(Departed { name, addr: self.info.addr, left_at: Local::now() });
        while inner.departed.len() > RECENT_DEPARTURES {
            inner.departed.pop_front();
        }
    }
}

/// `1h 02m 03s`, `4m 05s`, `7s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec:02}s"),
        (h, min, sec) => format!("{h}h {min:02}m {sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(7)), "7s");
        assert_eq!(human_duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 02m 03s");
    }
}
