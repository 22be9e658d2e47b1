//! Several instances as one server (`--cluster redis://HOST:PORT`): one
//! session cap, one `status`, one chat, kept in Redis. This module plugs
//! into the two seams the doors already go through: [`SessionCap`] is a
//! [`Cap`](crate::slots::Cap), [`ClusterBus`] a [`Bus`](crate::presence::Bus);
//! no door or command knows about Redis.
//!
//! Two threads per instance: the **publisher** sends this instance's
//! notices to the channel (after writing its status snapshot, when the
//! notice is an arrival, a departure or a rename, so that whoever hears it
//! can already see it in `status`) and, every quarter of `--cluster-expiry`,
//! beats: renews this instance's places, names and snapshot, and reads the
//! others'. The **subscriber** hears every notice of every instance, this
//! one's included, in the one order Redis gives, and hands each to the
//! local sessions.
//!
//! When Redis cannot be reached, nothing stops: sessions and transfers go
//! on; admissions count against a local share of the cap
//! (`ceil(max-clients / instances)`), or are refused under
//! `--cluster-strict`; chat and status are this instance's alone; the local
//! clients are told once. The publisher dials again every beat; once back,
//! the beat registers this instance's places, names and snapshot again, the
//! subscriber subscribes again, and the clients are told.
//!
//! # Layout
//! - here: [`Cluster`], its [`Settings`], the two threads, the up/down state.
//! - [`store`]: the Redis connection, the keys, the scripts.
//! - [`cap`]: [`SessionCap`], the cap on sessions across instances.
//! - [`bus`]: [`ClusterBus`], notices, names and status across instances.

pub mod bus;
pub mod cap;
pub mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Event, Status};
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

pub use bus::ClusterBus;
pub use cap::SessionCap;
use store::Store;

use crate::presence::{Elsewhere, Notice, Presence, RECENT_DEPARTURES};

/// How a cluster is reached and named.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// This instance's name in `status` (`--instance`).
    pub instance: String,
    /// How long what an instance holds outlives it when it dies without
    /// giving it back (`--cluster-expiry`); it beats four times as often.
    pub expiry: Duration,
    /// Refuse admissions while Redis cannot be reached, rather than count
    /// them against a local share of the cap (`--cluster-strict`).
    pub strict: bool,
}

/// What the publisher thread has to do, in order.
enum Outgoing {
    /// A notice for the channel.
    Notice {
        from: u64,
        notice: Notice,
        /// An arrival, a departure or a rename: the snapshot goes first.
        changes_status: bool,
    },
    /// A notice for this instance's sessions alone (about the cluster
    /// itself): delivered by the publisher, never under the list's lock,
    /// which the call that noticed the change may hold.
    Local(Notice),
}

/// The places this instance holds (the session cap's), for renewal and for
/// shutdown's wait.
#[derive(Default)]
struct Held {
    places: Mutex<HashMap<u64, IpAddr>>,
    emptied: Condvar,
}

/// One instance's membership of a cluster; see the module documentation.
pub struct Cluster {
    settings: Settings,
    store: Store,
    up: AtomicBool,
    held: Held,
    next_place: AtomicU64,
    /// What the others hold, as last read (status never waits on Redis).
    others: Mutex<Elsewhere>,
    /// Instances seen alive at the last beat (for the local share of the cap).
    instances: AtomicUsize,
    presence: OnceLock<Weak<Presence>>,
    outbox: Sender<Outgoing>,
    outbox_rx: Receiver<Outgoing>,
    stopping: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Cluster {
    /// Joins the cluster at `settings.url`. Redis need not be up: the
    /// instance then starts alone and joins when it comes.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn new(settings: Settings) -> Result<Arc<Cluster>, String> {
        let timeout = (settings.expiry / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
        let store = Store::new(&settings.url, timeout).map_err(|e| format!("--cluster '{}': {e}", settings.url))?;
        let (outbox, outbox_rx) = unbounded();
        let cluster = Arc::new(Cluster {
            settings,
            store,
            up: AtomicBool::new(false),
            held: Held::default(),
            next_place: AtomicU64::new(0),
            others: Mutex::new(Elsewhere::default()),
            instances: AtomicUsize::new(1),
            presence: OnceLock::new(),
            outbox,
            outbox_rx,
            stopping: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        match cluster.store.run(|c| redis::cmd("PING").query::<String>(c)) {
            Ok(_) => cluster.up.store(true, Ordering::SeqCst),
            Err(e) => tracing::warn!("cluster: {} cannot be reached ({e}); starting alone", cluster.settings.url),
        }
        Ok(cluster)
    }

    /// The session cap across instances: `max` in all, `per_ip` (0: none) per address.
    pub fn session_cap(self: &Arc<Self>, max: usize, per_ip: usize) -> Arc<SessionCap> {
        Arc::new(SessionCap::new(Arc::clone(self), max, per_ip))
    }

    /// The bus a [`Presence`] of this instance sends its notices on.
    pub fn bus(self: &Arc<Self>) -> Arc<ClusterBus> {
        Arc::new(ClusterBus::new(Arc::clone(self)))
    }

    /// Starts the publisher and the subscriber for `presence` (made with
    /// [`Cluster::bus`]); once only.
    pub fn attach(self: &Arc<Self>, presence: &Arc<Presence>) {
        if self.presence.set(Arc::downgrade(presence)).is_err() {
            return;
        }
        let spawn = |name: &str, work: fn(&Cluster)| {
            let cluster = Arc::clone(self);
            std::thread::Builder::new().name(name.into()).spawn(move || work(&cluster))
        };
        let mut threads = self.threads.lock();
        for (name, work) in
            [("cluster-publisher", Cluster::publish_and_beat as fn(&Cluster)), ("cluster-subscriber", Cluster::listen)]
        {
            match spawn(name, work) {
                Ok(handle) => threads.push(handle),
                Err(e) => tracing::error!("cluster: cannot start the {name} thread: {e}"),
            }
        }
    }

    /// Leaves the cluster: stops both threads and takes this instance's
    /// snapshot away (its places are given back as its sessions end).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
        if self.is_up() {
            let _ = self.store.run(|c| redis::cmd("DEL").arg(store::status_of(&self.settings.instance)).query::<()>(c));
        }
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.settings.instance
    }

    /// Whether Redis answered last time it was asked.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// A Redis call failed: from now on this instance is alone, until a beat
    /// reaches Redis again. Said once, in the log and to the local clients.
    fn went_down(&self, e: &redis::RedisError) {
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!("cluster: lost {} ({e}); this instance goes on alone", self.settings.url);
            *self.others.lock() = Elsewhere::default();
            self.tell_everyone(
                "the cluster's shared state cannot be reached: chat and status are this server's alone for now",
            );
        }
    }

    /// A notice to every local session, from no one (queued: see [`Outgoing::Local`]).
    fn tell_everyone(&self, text: &str) {
        let _ = self.outbox.send(Outgoing::Local(Notice::new(Event::notice(text).with("event", "cluster"))));
    }

    /// Runs a Redis call while up; a failure takes the instance down.
    fn call<T>(&self, f: impl FnOnce(&Store) -> redis::RedisResult<T>) -> Option<T> {
        if !self.is_up() {
            return None;
        }
        match f(&self.store) {
            Ok(value) => Some(value),
            Err(e) => {
                self.went_down(&e);
                None
            }
        }
    }

    /// The publisher thread: notices out, in order; a beat every quarter expiry.
    fn publish_and_beat(&self) {
        let period = self.settings.expiry / 4;
        let mut next_beat = Instant::now();
        while !self.stopping.load(Ordering::SeqCst) {
            if Instant::now() >= next_beat {
                self.beat();
                next_beat = Instant::now() + period;
            }
            let wait = next_beat.saturating_duration_since(Instant::now()).min(Duration::from_millis(250));
            match self.outbox_rx.recv_timeout(wait) {
                Ok(Outgoing::Notice { from, notice, changes_status }) => self.send(from, notice, changes_status),
                Ok(Outgoing::Local(notice)) => self.deliver(0, &notice),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// One notice to the channel: `INSTANCE FROM FIELDS...`, a line end,
    /// `TEXT`. When it cannot go, the local sessions still get it.
    fn send(&self, from: u64, notice: Notice, changes_status: bool) {
        if changes_status {
            self.write_snapshot();
        }
        let message = bus::encode(&self.settings.instance, from, &notice);
        let sent =
            self.call(|store| store.run(|c| redis::cmd("PUBLISH").arg(store::EVENTS).arg(&message).query::<i64>(c)));
        if sent.is_none() {
            self.deliver(from, &notice);
        }
    }

    /// Hands `notice` to the local sessions (all but `from`, when it is one of them).
    fn deliver(&self, from: u64, notice: &Notice) {
        if let Some(presence) = self.presence.get().and_then(Weak::upgrade) {
            presence.deliver(from, notice);
        }
    }

    /// This instance's `info`, as the others read it, expiring unless renewed.
    fn write_snapshot(&self) {
        let Some(presence) = self.presence.get().and_then(Weak::upgrade) else { return };
        let snapshot = presence.local_status(0).encode();
        let (key, ttl) = (store::status_of(&self.settings.instance), self.settings.expiry.as_millis() as u64);
        self.call(|store| {
            store.run(|c| {
                redis::pipe()
                    .sadd(store::INSTANCES, &self.settings.instance)
                    .ignore()
                    .pset_ex(&key, snapshot, ttl)
                    .ignore()
                    .query::<()>(c)
            })
        });
    }

    /// Renews what this instance holds and reads what the others do; dials
    /// Redis again if it was lost.
    fn beat(&self) {
        if !self.is_up() {
            if self.store.run(|c| redis::cmd("PING").query::<String>(c)).is_err() {
                return;
            }
            self.up.store(true, Ordering::SeqCst);
            tracing::info!("cluster: {} is back; joining again", self.settings.url);
            self.tell_everyone("the cluster's shared state is back: chat and status span every server again");
        }
        let held: Vec<(IpAddr, String)> =
            self.held.places.lock().iter().map(|(n, ip)| (*ip, self.member(*n))).collect();
        self.call(|store| store.renew(&held, self.settings.expiry));
        self.renew_names();
        self.write_snapshot();
        self.read_others();
    }

    /// Keeps this instance's sessions' names claimed.
    fn renew_names(&self) {
        let Some(presence) = self.presence.get().and_then(Weak::upgrade) else { return };
        let sessions = presence.sessions();
        if sessions.is_empty() {
            return;
        }
        let ttl = self.settings.expiry.as_millis() as u64;
        let mut pipe = redis::pipe();
        for session in sessions {
            pipe.pset_ex(store::name_key(&session.name()), self.holder(session.id), ttl).ignore();
        }
        self.call(|store| store.run(|c| pipe.query::<()>(c)));
    }

    /// Reads the other instances' snapshots and the departures into the cache.
    fn read_others(&self) {
        let me = &self.settings.instance;
        let read = self.call(|store| {
            store.run(|c| {
                let names: Vec<String> = redis::cmd("SMEMBERS").arg(store::INSTANCES).query(c)?;
                let others: Vec<String> = names.into_iter().filter(|n| n != me).collect();
                let snapshots: Vec<Option<String>> = if others.is_empty() {
                    Vec::new()
                } else {
                    redis::cmd("MGET").arg(others.iter().map(|n| store::status_of(n)).collect::<Vec<_>>()).query(c)?
                };
                let departed: Vec<String> =
                    redis::cmd("LRANGE").arg(store::DEPARTED).arg(0).arg(RECENT_DEPARTURES as i64 - 1).query(c)?;
                Ok((snapshots, departed))
            })
        });
        let Some((snapshots, departed)) = read else { return };
        let mut others = Elsewhere::default();
        let mut alive = 1;
        for status in snapshots.iter().flatten().filter_map(|s| Status::parse(s).ok()) {
            alive += 1;
            others.clients += status.clients;
            others.sessions.extend(status.sessions);
            others.web.extend(status.web);
            others.tftp.extend(status.tftp);
        }
        others.departed = departed
            .iter()
            .filter_map(|d| Status::parse(d).ok())
            .flat_map(|s| s.departed)
            .filter(|d| d.instance.as_deref() != Some(me.as_str()))
            .collect();
        self.instances.store(alive, Ordering::SeqCst);
        *self.others.lock() = others;
    }

    /// The subscriber thread: every instance's notices, in Redis's order, to the local sessions.
    fn listen(&self) {
        while !self.stopping.load(Ordering::SeqCst) {
            if !self.is_up() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let mut conn = match self.store.connection() {
                Ok(conn) => conn,
                Err(e) => {
                    self.went_down(&e);
                    continue;
                }
            };
            let mut pubsub = conn.as_pubsub();
            if let Err(e) = pubsub.subscribe(store::EVENTS) {
                self.went_down(&e);
                continue;
            }
            let _ = pubsub.set_read_timeout(Some(Duration::from_millis(250)));
            while !self.stopping.load(Ordering::SeqCst) && self.is_up() {
                match pubsub.get_message() {
                    Ok(message) => self.heard(message.get_payload_bytes()),
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        self.went_down(&e);
                        break;
                    }
                }
            }
        }
    }

    /// A notice from the channel, to the local sessions (all but its sender,
    /// when the sender is here).
    fn heard(&self, message: &[u8]) {
        let Some((instance, from, notice)) = bus::decode(message) else {
            return tracing::debug!("cluster: an unreadable message on {}", store::EVENTS);
        };
        let here = instance == self.settings.instance;
        if !here && bus::changes_status(&notice) {
            // Its snapshot was written before it was sent: read it, so
            // whoever hears of an arrival sees it in `status` at once.
            self.read_others();
        }
        self.deliver(if here { from } else { 0 }, &notice);
    }

    /// A place's member in the sorted sets: `INSTANCE/N`.
    fn member(&self, n: u64) -> String {
        format!("{}/{n}", self.settings.instance)
    }

    /// Who holds a name: `INSTANCE/SESSION`.
    fn holder(&self, session: u64) -> String {
        format!("{}/s{session}", self.settings.instance)
    }
}
