//! The byte stream to the server. Today that is plain TCP; a TLS stream
//! becomes one more variant of [`Transport`] and [`crate::connection`] does
//! not change. An upload's bytes go with `sendfile(2)` on plain TCP, through
//! a copy loop on anything that has to see them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use common::DEFAULT_PORT;

use crate::error::ClientError;

/// The connection to the server, or another handle on it.
#[derive(Debug)]
pub enum Transport {
    /// A TCP connection.
    Plain(TcpStream),
}

/// Turns `host`, `host:port`, `1.2.3.4`, `[::1]:port` or `::1` into addresses.
///
/// # Errors
/// [`ClientError::Connect`] when the name does not resolve.
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let fail = |reason: String| ClientError::Connect { addr: addr.to_string(), reason };
    // `host:port` with a port that is not one is a typing error, not a
    // host that cannot be found (a bare IPv6 address has several colons).
    if let Some((host, port)) = addr.rsplit_once(':') {
        if (!host.contains(':') || host.ends_with(']')) && port.parse::<u16>().is_err() {
            let port = common::text::escape(port);
            return Err(ClientError::Usage(format!("bad port '{port}' in '{}'", common::text::escape(addr))));
        }
    }
    let with_port = if addr.parse::<std::net::IpAddr>().is_ok() {
        // A bare IP; an IPv6 one needs brackets to take a port.
        SocketAddr::new(addr.parse().map_err(|_| fail("bad address".into()))?, DEFAULT_PORT).to_string()
    } else if addr.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    };
    let addrs: Vec<SocketAddr> = with_port.to_socket_addrs().map_err(|e| fail(e.to_string()))?.collect();
    if addrs.is_empty() {
        return Err(fail("the name has no addresses".into()));
    }
    Ok(addrs)
}

impl Transport {
    /// Connects to the first of `addr`'s addresses that answers within `timeout`.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the name does not resolve or no address answers.
    pub fn connect(addr: &str, timeout: Duration) -> Result<(Transport, SocketAddr), ClientError> {
        let mut last_error = None;
        for candidate in resolve(addr)? {
            match TcpStream::connect_timeout(&candidate, timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    // A server that stops taking an upload's bytes fails the
                    // send after `timeout`, rather than hang the client.
                    let _ = stream.set_write_timeout(Some(timeout));
                    return Ok((Transport::Plain(stream), candidate));
                }
                Err(e) => last_error = Some(e),
            }
        }
        let reason = last_error.map_or_else(|| "no address answered".to_string(), |e| e.to_string());
        Err(ClientError::Connect { addr: addr.to_string(), reason })
    }

    /// Another handle on the same connection, e.g. for the reader thread.
    ///
    /// # Errors
    /// When the OS cannot duplicate the socket.
    pub fn try_clone(&self) -> io::Result<Transport> {
        match self {
            Transport::Plain(stream) => stream.try_clone().map(Transport::Plain),
        }
    }

    /// How long a read may wait (`None`: for ever); expiry is an error of
    /// kind `WouldBlock` or `TimedOut`.
    ///
    /// # Errors
    /// As `TcpStream::set_read_timeout`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.set_read_timeout(timeout),
        }
    }

    /// Ends the connection both ways, for every handle on it.
    pub fn close(&self) {
        match self {
            Transport::Plain(stream) => {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Sends up to `count` bytes of `file` from its current position; 0 once
    /// the file has ended.
    ///
    /// # Errors
    /// As the connection's writes.
    pub fn send_file(&mut self, file: &mut File, count: u64) -> io::Result<u64> {
        match self {
            Transport::Plain(stream) => common::sendfile::send_file(stream, file, count),
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
