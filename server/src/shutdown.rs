//! What a graceful shutdown needs to know: whether it has begun
//! ([`Stopping`], one per server), how to begin it from another thread and
//! wake every door ([`ShutdownHandle`]), and, per session, whether its
//! reader is in the middle of a command ([`Gate`]). Shutdown wakes idle readers at once
//! and lets busy ones finish; the gate makes sure no command starts after
//! shutdown has passed a session by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::transport::Closer;

/// Set once shutdown has begun; no command starts after it.
#[derive(Debug, Default)]
pub struct Stopping {
    begun: AtomicBool,
    grace_over: AtomicBool,
    /// When it began.
    at: Mutex<Option<Instant>>,
}

impl Stopping {
    /// Shutdown has begun.
    pub fn is_set(&self) -> bool {
        self.begun.load(Ordering::SeqCst)
    }

    /// Begins shutdown; true the first time.
    pub fn set(&self) -> bool {
        self.at.lock().get_or_insert_with(Instant::now);
        !self.begun.swap(true, Ordering::SeqCst)
    }

    /// When shutdown began, if it has.
    pub fn began_at(&self) -> Option<Instant> {
        *self.at.lock()
    }

    /// The grace period is over: the sessions left are being cut.
    pub fn end_grace(&self) {
        self.grace_over.store(true, Ordering::SeqCst);
    }

    /// Whether sessions ending now were cut at the end of the grace period.
    pub fn grace_is_over(&self) -> bool {
        self.grace_over.load(Ordering::SeqCst)
    }
}

/// Stops the whole service from another thread (a signal handler, a test):
/// sets the shared stop and wakes every door's loop.
#[derive(Clone)]
pub struct ShutdownHandle {
    pub(crate) stopping: Arc<Stopping>,
    /// Listening addresses to connect to, so a blocked `accept` returns.
    pub(crate) tcp: Vec<SocketAddr>,
    /// A UDP address to send an empty packet to, so a blocked `recv` returns.
    pub(crate) udp: Option<SocketAddr>,
}

impl ShutdownHandle {
    /// Stops accepting on every door and begins the graceful shutdown;
    /// [`crate::Service::run`] returns once all have ended.
    pub fn trigger(&self) {
        self.stopping.set();
        for addr in &self.tcp {
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
        if let Some(addr) = self.udp {
            let from = if addr.is_ipv4() { (Ipv4Addr::LOCALHOST, 0).into() } else { (Ipv6Addr::LOCALHOST, 0).into() };
            if let Ok(socket) = UdpSocket::bind::<SocketAddr>(from) {
                let _ = socket.send_to(&[], addr);
            }
        }
    }
}

/// An address a wake-up can reach: a listener on every address is reached
/// on loopback.
pub(crate) fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}

/// A session's reader as shutdown sees it. Both sides change it under one
/// lock, so a reader either is woken by shutdown or sees it was told.
#[derive(Debug, Default)]
pub struct Gate(Mutex<Phase>);

#[derive(Debug, Default)]
struct Phase {
    /// Running a command: shutdown lets it finish.
    busy: bool,
    /// Shutdown has queued its notice for this session.
    told_to_stop: bool,
}

impl Gate {
    /// Marks the reader as running a command, unless the server is stopping:
    /// then returns false and the session must end.
    pub fn begin_command(&self, stopping: &Stopping) -> bool {
        let mut phase = self.0.lock();
        if stopping.is_set() {
            return false;
        }
        phase.busy = true;
        true
    }

    /// The reader finished its command. Returns true when shutdown passed by
    /// meanwhile and left this session to end by itself; otherwise shutdown,
    /// if it comes, wakes the idle reader.
    pub fn end_command(&self) -> bool {
        let mut phase = self.0.lock();
        phase.busy = false;
        phase.told_to_stop
    }

    /// Shutdown passes by: an idle reader is woken through `closer` (it then
    /// sees end of input); a busy one is left to finish its command.
    pub fn tell_to_stop(&self, closer: &Closer) {
        let mut phase = self.0.lock();
        phase.told_to_stop = true;
        if !phase.busy {
            closer.stop_reading();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_command_starts_after_shutdown_and_a_busy_one_learns_of_it() {
        let (stopping, gate) = (Stopping::default(), Gate::default());
        assert!(gate.begin_command(&stopping));
        assert!(stopping.set());
        assert!(!stopping.set(), "only the first call begins shutdown");
        gate.tell_to_stop(&Closer::default());
        assert!(gate.end_command(), "the busy reader is told when its command ends");
        assert!(!gate.begin_command(&stopping));
    }
}
