//! The client's side of the wire: connect, send a request, read the reply.
//!
//! Everything the server says is treated as untrusted: header lines and text
//! bodies have hard size limits, and events are handed to a callback (which
//! prints them escaped) before the reply they precede.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use common::text::escape;
use common::{Code, Header, Request, DEFAULT_PORT, MAX_HEADER_LEN};

use crate::error::ClientError;

/// Largest text body (status, list, help, echo) the client accepts.
pub const MAX_TEXT_BODY: u64 = 16 * 1024 * 1024;

/// Largest event body the client accepts.
pub const MAX_EVENT_BODY: u64 = 64 * 1024;

/// Size of the read buffer: downloads stream through it.
const READ_BUFFER: usize = 256 * 1024;

/// Which side of a download failed.
#[derive(Debug)]
pub enum BodyError {
    /// Reading from the server.
    Read(io::Error),
    /// Writing the local copy.
    Write(io::Error),
}

/// What the server said on connect.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The name the server gave this client (`Client02`).
    pub name: String,
    /// The protocol version it speaks.
    pub protocol: String,
}

/// An open session with a server.
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    peer: SocketAddr,
    on_event: Box<dyn FnMut(&str)>,
}

/// Turns `host`, `host:port`, `1.2.3.4`, `[::1]:port` or `::1` into addresses.
///
/// # Errors
/// [`ClientError::Connect`] when the name does not resolve.
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let fail = |reason: String| ClientError::Connect { addr: addr.to_string(), reason };
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

impl Connection {
    /// Connects, trying each address in turn, and reads the greeting.
    ///
    /// # Errors
    /// [`ClientError::Full`] when the server is at its cap, [`ClientError::Connect`]
    /// when no address answers, [`ClientError::Connection`] on a bad greeting.
    pub fn open(
        addr: &str,
        timeout: Duration,
        on_event: Box<dyn FnMut(&str)>,
    ) -> Result<(Connection, Greeting), ClientError> {
        let mut last_error = None;
        let mut stream = None;
        for candidate in resolve(addr)? {
            match TcpStream::connect_timeout(&candidate, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some(stream) = stream else {
            let reason = last_error.map_or_else(|| "no address answered".to_string(), |e| e.to_string());
            return Err(ClientError::Connect { addr: addr.to_string(), reason });
        };
        let _ = stream.set_nodelay(true);
        // A reply that stops coming ends the wait; a moving transfer never does,
        // since the timeout applies to each read.
        let _ = stream.set_read_timeout(Some(timeout));
        let peer = stream.peer_addr().map_err(|e| ClientError::connection("connect", e))?;
        let writer = stream.try_clone().map_err(|e| ClientError::connection("connect", e))?;
        let mut conn = Connection { reader: BufReader::with_capacity(READ_BUFFER, stream), writer, peer, on_event };
        match conn.read_reply_header() {
            Ok(header) => {
                let name = header.field("name").unwrap_or("client").to_string();
                let protocol = header.field("proto").unwrap_or("?").to_string();
                if let Header::Ok { len, .. } = header {
                    conn.read_text_body(len)?;
                }
                Ok((conn, Greeting { name: escape(&name).into_owned(), protocol }))
            }
            Err(ClientError::Remote { code: Code::Unavailable, message }) if message.contains("full") => {
                Err(ClientError::Full)
            }
            Err(ClientError::Remote { message, .. }) => {
                Err(ClientError::Connection(format!("server refused: {message}")))
            }
            Err(e) => Err(e),
        }
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one request line.
    ///
    /// # Errors
    /// [`ClientError::Connection`] when the write fails.
    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        self.writer.write_all(request.encode().as_bytes()).map_err(|e| ClientError::connection("sending request", e))
    }

    /// The socket's write side, for an upload's body.
    pub fn upload_sink(&mut self) -> &mut TcpStream {
        &mut self.writer
    }

    /// Reads the next reply header, handing any events before it to the
    /// callback. An `ERR` header becomes [`ClientError::Remote`].
    ///
    /// # Errors
    /// [`ClientError::Remote`] for `ERR`, [`ClientError::Connection`] when the
    /// connection fails or the header is not valid.
    pub fn read_reply_header(&mut self) -> Result<Header, ClientError> {
        loop {
            let line = self.read_header_line()?;
            let header =
                Header::parse(&line).map_err(|e| ClientError::Connection(format!("bad reply from server: {e}")))?;
            match header {
                Header::Event { len } => {
                    if len > MAX_EVENT_BODY {
                        return Err(ClientError::Connection(format!(
                            "server sent an event of {len} bytes; limit is {MAX_EVENT_BODY}"
                        )));
                    }
                    let text = self.read_text_body(len)?;
                    (self.on_event)(&text);
                }
                Header::Err { code, message } => {
                    return Err(ClientError::Remote { code, message: escape(&message).into_owned() })
                }
                ok => return Ok(ok),
            }
        }
    }

    /// Reads a text body of `len` bytes, refusing one larger than the limit.
    ///
    /// # Errors
    /// [`ClientError::Connection`] when too large, short or not UTF-8.
    pub fn read_text_body(&mut self, len: u64) -> Result<String, ClientError> {
        if len > MAX_TEXT_BODY {
            return Err(ClientError::Connection(format!(
                "server sent a reply of {len} bytes; limit is {MAX_TEXT_BODY}"
            )));
        }
        let mut body = Vec::with_capacity(len as usize);
        (&mut self.reader).take(len).read_to_end(&mut body).map_err(|e| ClientError::connection("reading reply", e))?;
        if body.len() as u64 != len {
            return Err(ClientError::Connection("server closed the connection mid-reply".into()));
        }
        String::from_utf8(body).map_err(|_| ClientError::Connection("server sent a reply that is not UTF-8".into()))
    }

    /// Streams a binary body of `len` bytes into `out`, calling `progress`
    /// with the bytes done so far.
    ///
    /// # Errors
    /// [`BodyError::Read`] when the connection fails or ends early,
    /// [`BodyError::Write`] when `out` fails.
    pub fn read_body_into(
        &mut self,
        len: u64,
        out: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, BodyError> {
        let mut done = 0;
        while done < len {
            let chunk = self.reader.fill_buf().map_err(BodyError::Read)?;
            if chunk.is_empty() {
                return Err(BodyError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-transfer",
                )));
            }
            let n = chunk.len().min(usize::try_from(len - done).unwrap_or(usize::MAX));
            out.write_all(&chunk[..n]).map_err(BodyError::Write)?;
            self.reader.consume(n);
            done += n as u64;
            progress(done);
        }
        Ok(done)
    }

    fn read_header_line(&mut self) -> Result<String, ClientError> {
        let mut line = Vec::with_capacity(128);
        let limit = MAX_HEADER_LEN as u64 + 2;
        (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| ClientError::connection("reading reply", e))?;
        if line.is_empty() {
            return Err(ClientError::Connection("server closed the connection".into()));
        }
        if line.last() != Some(&b'\n') {
            return Err(if line.len() as u64 >= limit {
                ClientError::Connection("server sent a reply header that is too long".into())
            } else {
                ClientError::Connection("server closed the connection mid-reply".into())
            });
        }
        String::from_utf8(line)
            .map_err(|_| ClientError::Connection("server sent a reply header that is not UTF-8".into()))
    }
}
