//! The accept side: admits connections while slots are free, refuses the rest
//! with `ERR 503 Server is full`, and runs the graceful shutdown. It runs at a
//! lower priority than the sessions, so refusing a flood does not slow them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Code, Header};

use crate::pool::ThreadPool;
use crate::registry::Registry;
use crate::repo::Repo;
use crate::session;
use crate::slots::Slots;

/// How long the last step of shutdown waits for sessions whose sockets were closed.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Settings that shape every session.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sessions admitted at once; the next connection is refused.
    pub max_clients: usize,
    /// Whether `put` is allowed.
    pub allow_uploads: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload_size: u64,
    /// A client silent this long (and with no transfer moving) is disconnected.
    pub idle_timeout: Duration,
    /// How long transfers may go on after a shutdown signal.
    pub grace: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_clients: 3,
            allow_uploads: false,
            max_upload_size: 1 << 30,
            idle_timeout: Duration::from_secs(300),
            grace: Duration::from_secs(10),
        }
    }
}

/// What every session shares.
pub struct Context {
    /// The settings.
    pub config: Config,
    /// The shared folder.
    pub repo: Repo,
    /// Who is connected.
    pub registry: Arc<Registry>,
    /// Set once shutdown has begun; no command starts after it.
    pub stopping: Arc<AtomicBool>,
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    ctx: Arc<Context>,
    slots: Arc<Slots>,
    pool: ThreadPool,
}

/// Starts a graceful shutdown from another thread (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle {
    stopping: Arc<AtomicBool>,
    wake: SocketAddr,
}

impl ShutdownHandle {
    /// Stops accepting and begins the graceful shutdown; `run` then returns
    /// once sessions have ended or the grace period is over.
    pub fn trigger(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // `accept` has no timeout: wake it with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
    }
}

impl Server {
    /// Prepares a server on an already-bound listener (port 0 works).
    ///
    /// # Errors
    /// When the session threads cannot be started, or uploads are allowed and
    /// the share's `.uploads/` folder cannot be prepared.
    pub fn new(listener: TcpListener, repo: Repo, config: Config) -> io::Result<Server> {
        if config.allow_uploads {
            repo.prepare_uploads().map_err(|e| {
                io::Error::new(e.kind(), format!("cannot prepare uploads in '{}': {e}", repo.path().display()))
            })?;
        }
        let pool = ThreadPool::new(config.max_clients)?;
        let ctx = Arc::new(Context {
            registry: Arc::new(Registry::new(config.max_clients)),
            config: config.clone(),
            repo,
            stopping: Arc::new(AtomicBool::new(false)),
        });
        Ok(Server { listener, slots: Arc::new(Slots::new(config.max_clients)), ctx, pool })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops this server.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        let mut wake = self.listener.local_addr()?;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Ok(ShutdownHandle { stopping: Arc::clone(&self.ctx.stopping), wake })
    }

    /// Accepts connections until shut down, then lets sessions finish for up
    /// to the grace period, closes the rest and returns.
    pub fn run(self) {
        lower_accept_priority();
        loop {
            let accepted = self.listener.accept();
            if self.ctx.stopping.load(Ordering::SeqCst) {
                break;
            }
            match accepted {
                Ok((stream, addr)) => self.admit(stream, addr),
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    // Out of file descriptors and the like: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let Server { listener, ctx, slots, pool } = self;
        drop(listener);
        let active = ctx.registry.len();
        tracing::info!("shutting down: {active} session(s) open, {}s grace", ctx.config.grace.as_secs());
        ctx.registry.announce_shutdown(ctx.config.grace);
        if !slots.wait_all_free(Instant::now() + ctx.config.grace) {
            tracing::warn!("grace period over; closing {} session(s)", ctx.registry.len());
            ctx.registry.close_all();
            if !slots.wait_all_free(Instant::now() + CLOSE_WAIT) {
                tracing::error!("{} session(s) did not end after their sockets were closed", ctx.registry.len());
                return;
            }
        }
        drop(pool);
        tracing::info!("stopped");
    }

    fn admit(&self, stream: TcpStream, addr: SocketAddr) {
        let Some(slot) = self.slots.try_acquire() else {
            tracing::info!(%addr, "refused: server is full ({} clients)", self.ctx.config.max_clients);
            // A fresh socket's send buffer takes this line at once; not
            // waiting makes sure a hostile peer cannot stall accepting.
            let refusal = Header::err(Code::Unavailable, "Server is full").encode();
            let _ = rustix::net::send(&stream, refusal.as_bytes(), rustix::net::SendFlags::DONTWAIT);
            return;
        };
        let ctx = Arc::clone(&self.ctx);
        self.pool.execute(move || session::serve(stream, addr, slot, ctx));
    }
}

/// Niceness of the accepting thread (sessions run at the default, 0).
const ACCEPT_NICENESS: i32 = 10;

/// Runs the calling (accepting) thread at a lower priority than the sessions,
/// which it started before: under a flood of connections to a full server,
/// refusing them must not take the CPU from the clients already admitted.
/// Measured in docs/BENCHMARKS.md. Linux keeps a niceness per thread.
fn lower_accept_priority() {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), ACCEPT_NICENESS) {
        tracing::debug!("cannot lower the accepting thread's priority: {e}");
    }
}
