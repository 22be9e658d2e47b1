//! The accept side: admits connections while slots are free, refuses the rest
//! with `ERR 503 Server is full`, and runs the graceful shutdown. It runs at a
//! lower priority than the sessions, so refusing a flood does not slow them.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Code, Event, Header, PROTOCOL_VERSION};

use crate::config::{Config, Shared};
use crate::pool::ThreadPool;
use crate::presence::Presence;
use crate::proxy::{self, Arrival};
use crate::repo::Repo;
use crate::session;
use crate::session::Admission;
use crate::shutdown::{reachable, ShutdownHandle};
use crate::slots::{Cap, Caps, Over, Slots};
use crate::transport::Transport;

/// How long the last step of shutdown waits for sessions whose sockets were closed.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    sessions: Arc<dyn Cap>,
    refusals: Refusals,
    pool: ThreadPool,
    /// TLS refusals under way (each on its own thread).
    tls_refusers: Slots,
}

impl Server {
    /// Prepares a server on an already-bound listener (port 0 works).
    ///
    /// Session threads start as sessions arrive, not here.
    ///
    /// # Errors
    /// When the pool's spawner thread cannot be started, or uploads are
    /// allowed and the share's `.uploads/` folder cannot be prepared.
    pub fn new(listener: TcpListener, repo: Repo, config: Config) -> io::Result<Server> {
        let sessions: Arc<dyn Cap> = match &config.cluster {
            Some(cluster) => cluster.session_cap(config.max_clients, config.max_per_ip),
            None => Arc::new(Caps::new(config.max_clients, config.max_per_ip)),
        };
        Server::with_session_cap(listener, repo, config, sessions)
    }

    /// Like [`Server::new`], with the cap on sessions (`--max-clients`,
    /// `--max-per-ip`) kept by `sessions` rather than in this process: the
    /// seam for a cap several instances share.
    ///
    /// # Errors
    /// As [`Server::new`].
    pub fn with_session_cap(
        listener: TcpListener,
        repo: Repo,
        config: Config,
        sessions: Arc<dyn Cap>,
    ) -> io::Result<Server> {
        if config.allow_uploads {
            repo.prepare_uploads().map_err(|e| {
                io::Error::new(e.kind(), format!("cannot prepare uploads in '{}': {e}", repo.path().display()))
            })?;
        }
        // Sessions, and connections being set up before they are sessions.
        let pool = ThreadPool::new(config.max_clients + config.max_startups)?;
        let shared = Arc::new(Shared::new(config, repo)?);
        let (refusals, tls_refusers) = (Refusals::default(), Slots::new(TLS_REFUSERS));
        Ok(Server { listener, sessions, refusals, shared, pool, tls_refusers })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What its sessions share: for another front end (the web side) on
    /// the same share, accounts and status.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// A handle that stops this server (its door alone; [`crate::Service`]
    /// gives one that stops every door).
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        let wake = reachable(self.listener.local_addr()?);
        Ok(ShutdownHandle { stopping: Arc::clone(&self.shared.stopping), tcp: vec![wake], udp: None })
    }

    /// Accepts connections until shut down, then lets sessions finish for up
    /// to the grace period, closes the rest and returns.
    pub fn run(mut self) {
        lower_accept_priority();
        let mut failures = crate::logs::LogEvery::new(Duration::from_secs(1));
        loop {
            let accepted = self.listener.accept();
            if self.shared.stopping.is_set() {
                break;
            }
            match accepted {
                Ok((stream, addr)) => self.admit(stream, addr),
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of
                    // spinning, and say so once a second.
                    failures.note(|n| tracing::warn!("accept failed {n} time(s) in the last second: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.refusals.flush();
        let Server { listener, shared, sessions, pool, .. } = self;
        drop(listener);
        let (presence, grace) = (&shared.presence, shared.config.grace);
        tracing::info!("shutting down: {} session(s) open, {}s grace", presence.len(), grace.as_secs());
        announce_shutdown(presence, grace);
        let all_ended = |deadline| {
            sessions.wait_all_free(deadline)
                && shared.startups.wait_all_free(deadline)
                && shared.known_startups.wait_all_free(deadline)
        };
        if !all_ended(Instant::now() + grace) {
            tracing::warn!("grace period over; closing {} session(s)", presence.len());
            shared.stopping.end_grace();
            presence.sessions().iter().for_each(|s| s.closer.close());
            if !all_ended(Instant::now() + CLOSE_WAIT) {
                // Stuck in the file system, say: do not wait for them.
                tracing::error!(
                    "{} session(s) did not end after their connections were closed; leaving them",
                    presence.len()
                );
                pool.detach();
                return;
            }
        }
        drop(pool);
        if let Some(cluster) = &shared.config.cluster {
            cluster.stop();
        }
        tracing::info!("stopped");
    }

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let addr = match proxy::arrival_of(&stream, peer, self.shared.config.proxy.as_ref()) {
            Ok(Arrival::Client(addr)) => addr,
            Ok(Arrival::HealthCheck) => {
                tracing::debug!(balancer = %peer, "health check");
                // Greeted (on plain TCP) and closed: no session, no notice.
                if self.shared.config.tls.is_none() {
                    let greeting = Header::Ok { len: 0, fields: vec![("proto".into(), PROTOCOL_VERSION.to_string())] };
                    Transport::plain(stream).send_now(greeting.encode().as_bytes());
                }
                return;
            }
            Err(e) => return tracing::warn!(balancer = %peer, "closed: {e}"),
        };
        let transport = match &self.shared.config.tls {
            None => Transport::plain(stream),
            Some(tls) => match Transport::tls(stream, tls) {
                Ok(transport) => transport,
                Err(e) => return tracing::error!(%addr, "cannot start TLS: {e}"),
            },
        };
        // A TLS handshake, or a login the server needs, happens before a
        // session's place is taken: a connection that never finishes either
        // holds only a place among the startups, so the server is never
        // "full" for people who log in.
        let config = &self.shared.config;
        let admission = if config.tls.is_some() || config.login_required() {
            match self.shared.startup_place(addr.ip()) {
                Ok(place) => Admission::Startup(place),
                Err(_) => {
                    self.refusals.note(Denial::Startups);
                    // No handshake for a TLS peer: that is what is being saved.
                    if matches!(transport, Transport::Plain(_)) {
                        let why = "too many connections are logging in; try again shortly";
                        transport.send_now(Header::err(Code::Unavailable, why).encode().as_bytes());
                    }
                    return transport.shutdown(std::net::Shutdown::Both);
                }
            }
        } else {
            match self.sessions.try_acquire(addr.ip()) {
                Ok(slot) => Admission::Session(slot),
                Err(over) => {
                    self.refusals.note(Denial::from(over));
                    return self.refuse(transport, over.message(addr));
                }
            }
        };
        let reserved = match self.pool.reserve() {
            Ok(reserved) => reserved,
            Err(e) => {
                tracing::error!(%addr, "cannot start a session: {e}");
                return self.refuse(transport, "the server cannot start a session now; try again later".into());
            }
        };
        self.refusals.flush();
        let (shared, sessions) = (Arc::clone(&self.shared), Arc::clone(&self.sessions));
        self.pool.execute(reserved, move || session::serve(transport, addr, admission, sessions, shared));
    }
}

impl Server {
    /// Tells a connection it is not admitted, and why, without waiting for
    /// it. Over TLS the refusal needs a handshake first: that runs on a
    /// short-lived thread (at most [`TLS_REFUSERS`] at once; beyond them the
    /// connection is closed without a word), so the door never waits on a peer.
    fn refuse(&self, transport: Transport, why: String) {
        let line = Header::err(Code::Unavailable, why).encode();
        if matches!(transport, Transport::Plain(_)) {
            return transport.send_now(line.as_bytes());
        }
        let Some(place) = self.tls_refusers.try_acquire() else {
            return transport.shutdown(std::net::Shutdown::Both);
        };
        let spawned = std::thread::Builder::new().name("tls-refusal".into()).spawn(move || {
            // Given back however this ends, a panic included.
            let _place = place;
            if transport.handshake(Instant::now() + TLS_REFUSAL_TIME).is_ok() {
                transport.send_now(line.as_bytes());
            }
            transport.shutdown(std::net::Shutdown::Both);
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a thread to refuse a TLS connection: {e}");
        }
    }
}

/// TLS handshakes run at once only to refuse connections.
const TLS_REFUSERS: usize = 16;

/// How long a refused TLS connection may take over its handshake.
const TLS_REFUSAL_TIME: Duration = Duration::from_secs(3);

/// Why a connection was turned away at the door (for the log's counts).
#[derive(Clone, Copy)]
enum Denial {
    /// Every slot is taken.
    Full,
    /// Its address holds `--max-per-ip` sessions already.
    PerAddress,
    /// Every place for connections being set up is taken (`--max-startups`).
    Startups,
}

impl From<Over> for Denial {
    fn from(over: Over) -> Denial {
        match over {
            Over::Full | Over::Unavailable => Denial::Full,
            Over::PerAddress(_) => Denial::PerAddress,
        }
    }
}

/// Refusals counted and logged at most once a second: a flood of
/// connections must not cost a log line (and disk) each.
#[derive(Default)]
struct Refusals {
    full: u64,
    per_address: u64,
    startups: u64,
    /// When the counts began; `None` while none are counted.
    since: Option<Instant>,
}

impl Refusals {
    /// How often a summary is logged while refusals go on.
    const EVERY: Duration = Duration::from_secs(1);

    fn note(&mut self, why: Denial) {
        match why {
            Denial::Full => self.full += 1,
            Denial::PerAddress => self.per_address += 1,
            Denial::Startups => self.startups += 1,
        }
        match self.since {
            // The first refusal after a quiet spell is logged at once.
            None => {
                self.since = Some(Instant::now());
                self.flush();
            }
            Some(since) if since.elapsed() >= Self::EVERY => self.flush(),
            Some(_) => {}
        }
    }

    /// Logs what was counted, if anything, and starts counting afresh.
    fn flush(&mut self) {
        if self.full + self.per_address + self.startups > 0 {
            let secs = self.since.map_or(0.0, |t| t.elapsed().as_secs_f64());
            let (full, per_address, startups) = (self.full, self.per_address, self.startups);
            tracing::info!(
                "refused {full} connection(s) as full, {per_address} over the per-address limit, \
                 {startups} with every startup place taken, in {secs:.1}s"
            );
            self.since = Some(Instant::now());
        } else {
            self.since = None;
        }
        self.full = 0;
        self.per_address = 0;
        self.startups = 0;
    }
}

/// First step of a graceful shutdown, after `stopping` is set: tells every
/// client, and wakes the readers that are waiting for a command so they end;
/// sessions in the middle of a command or transfer finish it first.
fn announce_shutdown(presence: &Presence, grace: Duration) {
    let notice = format!("server shutting down; transfers in progress have {}s to finish", grace.as_secs());
    for session in presence.sessions() {
        session.notify(Event::notice(notice.clone()));
        session.gate.tell_to_stop(&session.closer);
    }
}

/// Niceness of the accepting thread (sessions run at the default, 0). At 10
/// it fell behind on a busy machine (two CPU-bound processes): a flood of
/// hung-up connects filled the listen queue and newcomers waited 1 s for a
/// SYN retry; at 0 a flood doubled admitted clients' echo p99. 5 keeps both
/// (docs/BENCHMARKS.md, "the door").
const ACCEPT_NICENESS: i32 = 5;

/// Runs the calling (accepting) thread at a lower priority than the sessions
/// (their threads are started by the pool's spawner, made before this):
/// under a flood of connections to a full server, refusing them must not
/// take the CPU from the clients already admitted. Linux keeps a niceness
/// per thread.
fn lower_accept_priority() {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), ACCEPT_NICENESS) {
        tracing::debug!("cannot lower the accepting thread's priority: {e}");
    }
}
