//! The byte stream a session runs over. Today that is plain TCP; a TLS
//! stream becomes one more variant of [`Transport`], and nothing above this
//! module changes: the session reads requests from one handle, the writer
//! writes replies to another, and shutdown holds a [`Closer`].
//!
//! Files are sent with `sendfile(2)` on a plain socket (the bytes go from the
//! page cache to the socket without passing through this process); a stream
//! that has to see the bytes (TLS) gets a copy loop instead.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// One session's connection, or a handle on it.
#[derive(Debug)]
pub enum Transport {
    /// A TCP connection as accepted.
    Plain(TcpStream),
}

impl Transport {
    /// Wraps an accepted TCP connection.
    pub fn plain(stream: TcpStream) -> Transport {
        Transport::Plain(stream)
    }

    /// Sends small writes at once (Nagle off): replies are small and a
    /// client waits for each.
    pub fn set_nodelay(&self) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.set_nodelay(true);
            }
        }
    }

    /// Another handle on the same connection, e.g. for the writer thread.
    ///
    /// # Errors
    /// When the OS cannot duplicate the socket.
    pub fn try_clone(&self) -> io::Result<Transport> {
        match self {
            Transport::Plain(stream) => stream.try_clone().map(Transport::Plain),
        }
    }

    /// How long a read may wait; expiry is an error of kind `WouldBlock` or `TimedOut`.
    ///
    /// # Errors
    /// As `TcpStream::set_read_timeout`.
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.set_read_timeout(Some(timeout)),
        }
    }

    /// How long a write may wait for a peer that does not read.
    ///
    /// # Errors
    /// As `TcpStream::set_write_timeout`.
    pub fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.set_write_timeout(Some(timeout)),
        }
    }

    /// Ends reading, writing or both, for every handle on the connection.
    pub fn shutdown(&self, how: Shutdown) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.shutdown(how);
            }
        }
    }

    /// Sends up to `count` bytes of `file` from its current position; 0 once
    /// the file has ended.
    ///
    /// # Errors
    /// As the connection's writes; a write timeout that passes with nothing
    /// sent is [`io::ErrorKind::TimedOut`].
    pub fn send_file(&mut self, file: &mut File, count: u64) -> io::Result<u64> {
        match self {
            Transport::Plain(stream) => common::sendfile::send_file(stream, file, count),
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
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
        }
    }
}

/// A way to end a session from outside it, as shutdown does; it holds the
/// connection only to close it. A session with nothing to close (a test, a
/// front end without a connection of its own) has an empty one.
#[derive(Debug, Default)]
pub struct Closer {
    transport: Option<Transport>,
}

impl Closer {
    /// Closes `transport` (another handle on the session's connection).
    pub fn new(transport: Transport) -> Closer {
        Closer { transport: Some(transport) }
    }

    /// Wakes the session's reader with end of input; replies still go out.
    pub fn stop_reading(&self) {
        if let Some(t) = &self.transport {
            t.shutdown(Shutdown::Read);
        }
    }

    /// Ends the connection both ways.
    pub fn close(&self) {
        if let Some(t) = &self.transport {
            t.shutdown(Shutdown::Both);
        }
    }
}
