//! Who is connected: names, chat and presence notices, and who left
//! recently. Every session is registered here for as long as it lasts
//! ([`Registration`] removes it on every path out).
//!
//! The list sits behind one `parking_lot::Mutex`, taken when a session
//! arrives, leaves or renames itself, for a broadcast and for a status
//! snapshot. Notices go out through a [`Bus`]: on a server alone ([`Alone`])
//! they are queued at once under that lock, so every client sees joins,
//! renames and departures in one order; a bus shared by several instances
//! hands them back through [`Presence::deliver`] in its own one order. What
//! changes during transfers (progress, the idle clock) lives in each
//! session's own [`Clock`](crate::activity::Clock) and never takes the shared lock.
//!
//! # Layout
//! - here: [`Presence`], the list, and the guards that keep a session or a
//!   visitor in it ([`Registration`], [`Visit`]).
//! - [`session`]: [`SessionInfo`], one client's shared half and its outbox.
//! - [`bus`]: [`Bus`], the seam to other instances, and [`Alone`].

pub mod bus;
pub mod session;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Local, SecondsFormat};
use common::status::{Activity, Departure, SessionStatus, Status};
use common::Event;
use crossbeam_channel::Sender;
use parking_lot::Mutex;

pub use bus::{Alone, Bus, Delivery, Elsewhere};
pub use session::{Notice, SessionInfo, EVENT_QUEUE, EVENT_QUEUE_BYTES, SAY_BURST, SAY_PER_SEC};

use crate::transport::Closer;

/// How many departed clients `status` remembers.
pub const RECENT_DEPARTURES: usize = 5;

/// Joins, departures and renames are announced to everyone while at most
/// this many are online; beyond, not (as IRC does in large channels;
/// `status` lists who is there). Announcing each arrival to every session
/// made admitting n sessions take time in n² (3,000 took 47 s).
pub const ANNOUNCE_LIMIT: usize = 100;

struct Departed {
    name: String,
    addr: SocketAddr,
    left_at: DateTime<Local>,
}

impl Departed {
    fn to_status(&self, instance: Option<String>) -> Departure {
        Departure {
            name: self.name.clone(),
            addr: self.addr.to_string(),
            left_at: self.left_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            instance,
        }
    }
}

#[derive(Default)]
struct Inner {
    sessions: BTreeMap<u64, Arc<SessionInfo>>,
    departed: VecDeque<Departed>,
    next_id: u64,
    /// Web visitors' connections (the HTTP side), shown in `status` apart
    /// from the sessions: not counted against the cap, not in the chat.
    web: BTreeMap<u64, Arc<SessionInfo>>,
    /// TFTP transfers, listed apart the same way.
    tftp: BTreeMap<u64, Arc<SessionInfo>>,
}

impl Inner {
    /// Queues `notice` for every local session but `from`; returns how many got it.
    fn deliver(&self, from: u64, notice: &Notice) -> usize {
        let mut recipients = 0;
        for session in self.sessions.values().filter(|s| s.id != from) {
            session.notify(Arc::clone(notice));
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
    bus: Arc<dyn Bus>,
}

impl Presence {
    /// An empty list for a server on its own admitting `max_clients` at once.
    pub fn new(max_clients: usize) -> Presence {
        Presence::with_bus(max_clients, Arc::new(Alone))
    }

    /// An empty list whose notices travel on `bus`.
    pub fn with_bus(max_clients: usize, bus: Arc<dyn Bus>) -> Presence {
        Presence { inner: Mutex::new(Inner::default()), started: Instant::now(), max_clients, bus }
    }

    /// Hands a notice from local session `from` to the bus (with `inner`
    /// locked, so a server alone queues it in the order the list changed);
    /// returns how many sessions it reaches.
    fn post(&self, inner: &Inner, from: u64, event: Event) -> usize {
        let elsewhere = self.bus.sessions_elsewhere();
        match self.bus.publish(from, Notice::new(event)) {
            Delivery::Now(notice) => inner.deliver(from, &notice) + elsewhere,
            Delivery::Later => inner.sessions.len().saturating_sub(1) + elsewhere,
        }
    }

    /// A presence notice (joined, left, renamed) for everyone but `from`,
    /// while at most [`ANNOUNCE_LIMIT`] are online.
    fn announce(&self, inner: &Inner, from: u64, online: usize, event: Event) {
        if online <= ANNOUNCE_LIMIT {
            self.post(inner, from, event);
        }
    }

    /// Sessions online here and elsewhere.
    fn online(&self, inner: &Inner) -> usize {
        self.bus.online(inner.sessions.len())
    }

    /// Queues a notice the bus hands back (from session `from` of this
    /// instance, or 0 for another instance's) for every local session but
    /// the sender; returns how many got it.
    pub fn deliver(&self, from: u64, notice: &Notice) -> usize {
        self.inner.lock().deliver(from, notice)
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
        let info = SessionInfo::new(inner.next_id, kind.into(), addr, self.started, Closer::default(), events);
        let info = Arc::new(info);
        let list = if kind == "tftp" { &mut inner.tftp } else { &mut inner.web };
        list.insert(info.id, Arc::clone(&info));
        Visit { presence: Arc::clone(self), info }
    }

    /// Adds an admitted client, names it and tells the others. The returned
    /// guard removes it again when dropped, on every path out of the session.
    pub fn register(self: &Arc<Self>, addr: SocketAddr, closer: Closer, events: Sender<Notice>) -> Registration {
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let name = self.bus.session_name(id);
        let info = Arc::new(SessionInfo::new(id, name.clone(), addr, self.started, closer, events));
        inner.sessions.insert(id, Arc::clone(&info));
        let online = self.online(&inner);
        let joined = Event::notice(format!("{name} joined ({online} online)"))
            .with("event", "joined")
            .with("name", &name)
            .with("online", online);
        self.announce(&inner, id, online, joined);
        Registration { presence: Arc::clone(self), info }
    }

    /// Gives session `id` a new display name, unique (ignoring case) among
    /// connected clients here and elsewhere, and tells the others. Returns
    /// the old name.
    ///
    /// # Errors
    /// [`NameTaken`] when another connected client has that name.
    pub fn rename(&self, id: u64, new: &str) -> Result<String, NameTaken> {
        let inner = self.inner.lock();
        let taken = inner.sessions.values().any(|s| s.id != id && s.name.lock().eq_ignore_ascii_case(new));
        let Some(session) = inner.sessions.get(&id).filter(|_| !taken) else { return Err(NameTaken(new.into())) };
        if session.name.lock().as_str() == new {
            return Ok(new.into());
        }
        self.bus.claim_name(id, new)?;
        let old = std::mem::replace(&mut *session.name.lock(), new.to_string());
        self.bus.release_name(id, &old);
        let renamed =
            Event::notice(format!("{old} is now {new}")).with("event", "renamed").with("from", &old).with("name", new);
        self.announce(&inner, id, self.online(&inner), renamed);
        Ok(old)
    }

    /// Sends `event` to every connected client but `from`, here and
    /// elsewhere; never blocks. Returns how many clients it was sent to.
    pub fn broadcast_from(&self, from: u64, event: Event) -> usize {
        let inner = self.inner.lock();
        self.post(&inner, from, event)
    }

    /// How many sessions are registered here.
    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    /// True when no session is registered here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every session registered here, e.g. for shutdown to reach them all.
    pub fn sessions(&self) -> Vec<Arc<SessionInfo>> {
        self.inner.lock().sessions.values().cloned().collect()
    }

    /// The state as session `me` sees it, here and elsewhere: the data
    /// behind `status` and `info`.
    pub fn status(&self, me: u64) -> Status {
        let elsewhere = self.bus.elsewhere();
        let mut status = self.local_status(me);
        status.clients += elsewhere.clients;
        status.sessions.extend(elsewhere.sessions);
        status.web.extend(elsewhere.web);
        status.tftp.extend(elsewhere.tftp);
        status.departed.extend(elsewhere.departed);
        status.departed.sort_by(|a, b| b.left_at.cmp(&a.left_at));
        status.departed.truncate(RECENT_DEPARTURES);
        status
    }

    /// What this instance holds, as session `me` sees it: what a bus
    /// shares with the other instances.
    pub fn local_status(&self, me: u64) -> Status {
        let inner = self.inner.lock();
        let rfc3339 = |t: &DateTime<Local>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let instance = self.bus.instance();
        let show = |s: &Arc<SessionInfo>, name: String| SessionStatus {
            name,
            you: s.id == me,
            addr: s.addr.to_string(),
            connected_at: rfc3339(&s.connected_at),
            idle_secs: s.clock.idle_for().as_secs(),
            activity: if s.is_placed() { s.clock.activity() } else { Activity::Command("logging in".into()) },
            instance: instance.clone(),
        };
        let sessions = inner.sessions.values().map(|s| show(s, s.name())).collect();
        let web_name = |s: &SessionInfo| s.account().map_or_else(|| s.name(), |a| a.name.clone());
        let web = inner.web.values().map(|s| show(s, web_name(s))).collect();
        let tftp = inner.tftp.values().map(|s| show(s, s.name())).collect();
        let departed = inner.departed.iter().rev().map(|d| d.to_status(instance.clone())).collect();
        Status {
            uptime_secs: self.started.elapsed().as_secs(),
            clients: inner.sessions.values().filter(|s| s.is_placed()).count() as u64,
            max_clients: self.max_clients as u64,
            sessions,
            departed,
            web,
            tftp,
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
        let mut inner = self.presence.inner.lock();
        inner.web.remove(&self.info.id);
        inner.tftp.remove(&self.info.id);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let presence = &self.presence;
        let mut inner = presence.inner.lock();
        inner.sessions.remove(&self.info.id);
        let name = self.info.name();
        presence.bus.release_name(self.info.id, &name);
        let online = presence.online(&inner);
        let left = Event::notice(format!("{name} left ({online} online)"))
            .with("event", "left")
            .with("name", &name)
            .with("online", online);
        presence.announce(&inner, self.info.id, online, left);
        let departed = Departed { name, addr: self.info.addr, left_at: Local::now() };
        presence.bus.departed(&departed.to_status(presence.bus.instance()));
        inner.departed.push_back(departed);
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

    /// A bus standing in for other instances: it keeps what is published
    /// (an external store would order and hand it back), has a name taken
    /// elsewhere and one session and one departure there.
    #[derive(Default)]
    struct OtherInstances {
        published: parking_lot::Mutex<Vec<(u64, String)>>,
    }

    impl Bus for OtherInstances {
        fn publish(&self, from: u64, notice: Notice) -> Delivery {
            self.published.lock().push((from, notice.text.clone()));
            Delivery::Later
        }
        fn claim_name(&self, _id: u64, name: &str) -> Result<(), NameTaken> {
            if name.eq_ignore_ascii_case("carol") {
                return Err(NameTaken(name.into()));
            }
            Ok(())
        }
        fn release_name(&self, _id: u64, _name: &str) {}
        fn instance(&self) -> Option<String> {
            Some("a".into())
        }
        fn session_name(&self, id: u64) -> String {
            format!("Client{:02}", id + 40)
        }
        fn departed(&self, departure: &Departure) {
            self.published.lock().push((0, format!("departed {}", departure.name)));
        }
        fn elsewhere(&self) -> Elsewhere {
            let carol = SessionStatus {
                name: "carol".into(),
                you: false,
                addr: "10.0.0.9:4000".into(),
                connected_at: "2026-12-05T00:00:00Z".into(),
                idle_secs: 0,
                activity: Activity::Idle,
                instance: Some("b".into()),
            };
            let dave = Departure {
                name: "dave".into(),
                addr: "10.0.0.8:4000".into(),
                left_at: "2000-01-01T00:00:00Z".into(),
                instance: Some("b".into()),
            };
            Elsewhere { clients: 1, sessions: vec![carol], web: Vec::new(), tftp: Vec::new(), departed: vec![dave] }
        }
    }

    #[test]
    fn with_other_instances_notices_wait_for_the_bus_and_names_and_status_span_them() {
        let bus = Arc::new(OtherInstances::default());
        let presence = Arc::new(Presence::with_bus(10, Arc::clone(&bus) as Arc<dyn Bus>));
        let (first, first_events) = join(&presence, 1000);
        let (second, second_events) = join(&presence, 1001);
        assert_eq!(first_events.try_iter().count(), 0, "nothing delivered before the bus hands it back");
        assert_eq!(bus.published.lock().last().unwrap(), &(second.id, "Client42 joined (3 online)\n".into()));

        assert_eq!(presence.rename(first.id, "CAROL"), Err(NameTaken("CAROL".into())), "taken on another instance");
        assert_eq!(presence.broadcast_from(first.id, Event::notice("hi")), 2, "one here, one elsewhere");
        let notice = Notice::new(Event::notice("[Client01] hi"));
        assert_eq!(presence.deliver(first.id, &notice), 1, "handed back: everyone here but the sender");
        assert_eq!(presence.deliver(0, &notice), 2, "from another instance: everyone here");
        assert_eq!((first_events.try_iter().count(), second_events.try_iter().count()), (1, 2));

        let status = presence.status(first.id);
        assert_eq!(status.clients, 3);
        assert_eq!(status.sessions[0].instance.as_deref(), Some("a"), "sessions here are named as this instance's");
        assert_eq!(
            status.sessions.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["Client41", "Client42", "carol"]
        );
        drop(second);
        let departed: Vec<_> = presence.status(first.id).departed.into_iter().map(|d| d.name).collect();
        assert_eq!(departed, ["Client42", "dave"], "most recent first, across instances");
        assert_eq!(bus.published.lock().last().unwrap().1, "departed Client42", "the others are told");
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
