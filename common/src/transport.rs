//! The byte stream both sides run over: plain TCP, or TLS over it
//! ([`crate::tls::TlsStream`]). Nothing above it tells them apart: one
//! thread reads from one handle while another writes to a second.
//!
//! Files are sent with `sendfile(2)` on a plain socket (the bytes go from the
//! page cache to the socket without passing through this process); a stream
//! that has to see the bytes (TLS) gets a copy loop instead.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tls::TlsStream;

/// A read that gave up waiting.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// One connection, or another handle on it.
#[derive(Debug)]
pub enum Transport {
    /// A TCP connection.
    Plain(TcpStream),
    /// TLS over a TCP connection.
    Tls(TlsStream),
}

impl Transport {
    /// Wraps a TCP connection.
    pub fn plain(stream: TcpStream) -> Transport {
        Transport::Plain(stream)
    }

    /// Serves TLS with `config` over an accepted TCP connection; the
    /// handshake happens in [`Transport::handshake`]. (A client wraps its
    /// own [`TlsStream`] in [`Transport::Tls`].)
    ///
    /// # Errors
    /// When rustls cannot start a connection with `config`.
    pub fn tls(stream: TcpStream, config: &Arc<rustls::ServerConfig>) -> io::Result<Transport> {
        let conn = rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(Transport::Tls(TlsStream::new(stream, conn)))
    }

    /// Completes a TLS handshake by `deadline`; nothing to do on plain TCP.
    ///
    /// # Errors
    /// When the handshake fails, the peer leaves, or the deadline passes.
    pub fn handshake(&self, deadline: Instant) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => tls.handshake(deadline),
        }
    }

    /// The TCP socket underneath.
    fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => tls.socket(),
        }
    }

    /// The address of this end of the connection (a server: the address the peer reached it on).
    ///
    /// # Errors
    /// As `TcpStream::local_addr`.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.socket().local_addr()
    }

    /// Sends small writes at once (Nagle off): replies are small and a
    /// client waits for each.
    pub fn set_nodelay(&self) {
        let _ = self.socket().set_nodelay(true);
    }

    /// Holds back partial segments while `on` (TCP_CORK), so a response's
    /// head and the start of its file leave in full segments, as nginx's
    /// `tcp_nopush` does; turning it off sends what is held.
    pub fn set_cork(&self, on: bool) {
        let _ = rustix::net::sockopt::set_tcp_cork(self.socket(), on);
    }

    /// Another handle on the same connection, e.g. for a second thread.
    ///
    /// # Errors
    /// When the OS cannot duplicate the socket.
    pub fn try_clone(&self) -> io::Result<Transport> {
        match self {
            Transport::Plain(stream) => stream.try_clone().map(Transport::Plain),
            Transport::Tls(tls) => Ok(Transport::Tls(tls.try_clone())),
        }
    }

    /// How long a read may wait (`None`: for ever); expiry is an error
    /// [`is_timeout`] recognises.
    ///
    /// # Errors
    /// As `TcpStream::set_read_timeout`.
    pub fn set_read_timeout(&self, timeout: impl Into<Option<Duration>>) -> io::Result<()> {
        let timeout = timeout.into();
        match self {
            Transport::Plain(stream) => stream.set_read_timeout(timeout),
            Transport::Tls(tls) => {
                tls.set_read_timeout(timeout);
                Ok(())
            }
        }
    }

    /// How long a write may wait for a peer that does not read.
    ///
    /// # Errors
    /// As `TcpStream::set_write_timeout`.
    pub fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.set_write_timeout(Some(timeout)),
            Transport::Tls(tls) => {
                tls.set_write_timeout(Some(timeout));
                Ok(())
            }
        }
    }

    /// Ends reading, writing or both, for every handle on the connection.
    pub fn shutdown(&self, how: Shutdown) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.shutdown(how);
            }
            Transport::Tls(tls) => tls.shutdown(how),
        }
    }

    /// Closes as nginx's lingering close does: ends the writing side, then
    /// reads and drops what the peer still sends (a request body refused
    /// unread) until it closes, `limit` passes or `max` bytes came. Without
    /// it the unread bytes make the kernel reset the connection, and the
    /// peer may lose the answer it was sent.
    pub fn linger(&self, limit: Duration, max: u64) {
        self.shutdown(Shutdown::Write);
        let mut socket = match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => tls.socket(),
        };
        let deadline = Instant::now() + limit;
        let (mut scratch, mut dropped) = ([0u8; 16 * 1024], 0u64);
        while dropped < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match socket.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n as u64,
            }
        }
        let _ = socket.shutdown(Shutdown::Both);
    }

    /// Sends up to `count` bytes of `file` from its current position; 0 once
    /// the file has ended.
    ///
    /// # Errors
    /// As the connection's writes; a write timeout that passes with nothing
    /// sent is [`io::ErrorKind::TimedOut`].
    pub fn send_file(&mut self, file: &mut File, count: u64) -> io::Result<u64> {
        match self {
            Transport::Plain(stream) => crate::sendfile::send_file(stream, file, count),
            Transport::Tls(tls) => tls.send_file(file, count),
        }
    }

    /// Copies into `buf` what has arrived and not been read, without
    /// waiting or consuming it; 0 when nothing has (or on any error).
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        match self {
            Transport::Plain(stream) => {
                let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
                rustix::net::recv(stream, buf, flags).map_or(0, |(n, _)| n)
            }
            Transport::Tls(tls) => tls.peek(buf),
        }
    }

    /// Writes `bytes` without waiting for the peer: for a refusal on a fresh
    /// connection, whose send buffer takes one line at once. A peer that
    /// does not read can then never stall the caller.
    pub fn send_now(&self, bytes: &[u8]) {
        match self {
            Transport::Plain(stream) => {
                let _ = rustix::net::send(stream, bytes, rustix::net::SendFlags::DONTWAIT);
            }
            Transport::Tls(tls) => tls.send_now(bytes),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
            Transport::Tls(tls) => tls.flush(),
        }
    }
}
