//! The doors as one service: [`Service`] owns the line protocol's listener
//! and, when asked for, the web side's and TFTP's; runs each door's loop on
//! its own thread; and stops them all from one
//! [`ShutdownHandle`](crate::ShutdownHandle). A stop
//! wakes every door (each loop sees the shared `stopping` flag at once),
//! lets sessions, web responses and TFTP transfers under way finish within
//! the grace period, and returns once every door has ended. `main` only
//! parses, binds, builds the service and runs it.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::{Config, Shared};
use crate::http::{HttpLimits, HttpServer};
use crate::repo::Repo;
use crate::server::Server;
use crate::shutdown::{reachable, ShutdownHandle};
use crate::slots::Cap;
use crate::tftp::TftpServer;

/// The web side's listener and limits, when it is on.
pub struct WebDoor {
    /// Bound already (port 0 works).
    pub listener: TcpListener,
    /// Its caps and host names.
    pub limits: HttpLimits,
}

/// TFTP's socket and caps, when it is on.
pub struct TftpDoor {
    /// Bound already (port 0 works).
    pub socket: UdpSocket,
    /// Transfers at once.
    pub max_transfers: usize,
    /// Transfers one address may have at once.
    pub max_per_ip: usize,
    /// How long a transfer waits for a peer that never answers
    /// ([`crate::tftp::UNHEARD_LIMIT`] by default).
    pub unheard_limit: std::time::Duration,
}

/// Every door of one server, sharing one share, one set of accounts, one
/// presence list and one stop.
pub struct Service {
    line: Server,
    web: Option<HttpServer>,
    tftp: Option<TftpServer>,
}

impl Service {
    /// The service on already-bound sockets: the line protocol on
    /// `listener`, the web side and TFTP when given.
    ///
    /// # Errors
    /// As [`Server::new`].
    pub fn new(
        listener: TcpListener,
        repo: Repo,
        config: Config,
        web: Option<WebDoor>,
        tftp: Option<TftpDoor>,
    ) -> io::Result<Service> {
        let line = Server::new(listener, repo, config)?;
        let web = web.map(|door| HttpServer::new(door.listener, line.shared(), &door.limits));
        let tftp = tftp.map(|door| {
            TftpServer::new(door.socket, line.shared(), door.max_transfers, door.max_per_ip)
                .with_unheard_limit(door.unheard_limit)
        });
        Ok(Service { line, web, tftp })
    }

    /// Where the line protocol listens.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.line.local_addr()
    }

    /// Where the web side listens, when it is on.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn web_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.web.as_ref().map(HttpServer::local_addr).transpose()
    }

    /// Where TFTP listens, when it is on.
    ///
    /// # Errors
    /// As `UdpSocket::local_addr`.
    pub fn tftp_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.tftp.as_ref().map(TftpServer::local_addr).transpose()
    }

    /// What every door shares.
    pub fn shared(&self) -> Arc<Shared> {
        self.line.shared()
    }

    /// A handle that stops every door.
    ///
    /// # Errors
    /// When a door's address cannot be read.
    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        let mut tcp = vec![reachable(self.local_addr()?)];
        if let Some(web) = self.web_addr()? {
            tcp.push(reachable(web));
        }
        let udp = self.tftp_addr()?.map(reachable);
        Ok(ShutdownHandle { stopping: Arc::clone(&self.shared().stopping), tcp, udp })
    }

    /// Runs every door until the service is stopped, then lets what is under
    /// way finish within the grace period, and returns once all have ended.
    ///
    /// # Errors
    /// When a door's thread cannot be started.
    pub fn run(self) -> io::Result<()> {
        let Service { line, web, tftp } = self;
        let shared = line.shared();
        let web = web
            .map(|web| {
                let busy = web.busy();
                std::thread::Builder::new().name("http-accept".into()).spawn(move || web.run()).map(|t| (t, busy))
            })
            .transpose()?;
        let tftp = tftp
            .map(|tftp| {
                let places = tftp.places();
                std::thread::Builder::new().name("tftp".into()).spawn(move || tftp.run()).map(|t| (t, places))
            })
            .transpose()?;
        line.run();
        // The line door is done: the others get what is left of the grace period.
        let deadline = shared.stopping.began_at().unwrap_or_else(Instant::now) + shared.config.grace;
        if let Some((thread, busy)) = web {
            end_door(thread, "web");
            if !busy.wait_idle(deadline) {
                tracing::warn!("grace period over; cutting web transfers still under way");
            }
        }
        if let Some((thread, places)) = tftp {
            end_door(thread, "TFTP");
            if !places.wait_all_free(deadline) {
                tracing::warn!("grace period over; leaving TFTP transfers still under way");
            }
        }
        Ok(())
    }
}

/// Waits for a door's loop, which ends once it has seen the stop.
fn end_door(thread: JoinHandle<()>, name: &str) {
    if thread.join().is_err() {
        tracing::error!("the {name} door's thread panicked");
    }
}
