//! Reading one HTTP/1.1 request head off a connection, with limits: at most
//! [`MAX_HEAD`] bytes, complete within a time of its first byte (a
//! slowloris trickle cannot hold a connection), and the wait for a next
//! request on a kept-alive connection bounded too. Parsing is `httparse`'s.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::transport::Transport;

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// Most headers in one request.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target as sent (`/docs/a%20b.txt?tar`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header names in lower case, values as sent (trimmed).
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after the response (HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `keep-alive`).
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let says = |word: &str| connection.split(',').any(|t| t.trim() == word);
        if self.minor == 0 {
            says("keep-alive")
        } else {
            !says("close")
        }
    }
}

/// What reading a head gave.
#[derive(Debug)]
pub enum Outcome {
    /// A head; the bytes after it (a body's start, or pipelined requests)
    /// stay in the buffer.
    Head(Head),
    /// The peer closed, or stayed silent for the keep-alive wait, before a
    /// request began: end quietly.
    Idle,
    /// A request began and did not finish in time: `408`.
    TooSlow,
    /// Over [`MAX_HEAD`]: `431`.
    TooLarge,
    /// Not HTTP: `400`, with why.
    Bad(String),
}

/// Reads the next head from `conn`, using and refilling `buf` (which holds
/// bytes already read and not yet used). Waits up to `idle` for a request to
/// begin, then `limit` from its first byte for the whole head.
///
/// # Errors
/// A failing connection.
pub fn read_head(conn: &mut Transport, buf: &mut Vec<u8>, idle: Duration, limit: Duration) -> io::Result<Outcome> {
    let mut started = (!buf.is_empty()).then(Instant::now);
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = Head {
                        method: request.method.unwrap_or("").to_string(),
                        target: request.path.unwrap_or("").to_string(),
                        minor: request.version.unwrap_or(1),
                        headers: request
                            .headers
                            .iter()
                            .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
                            .collect(),
                    };
                    buf.drain(..len);
                    return Ok(Outcome::Head(head));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Ok(Outcome::Bad(e.to_string())),
            }
            if buf.len() >= MAX_HEAD {
                return Ok(Outcome::TooLarge);
            }
        }
        let wait = match started {
            None => idle,
            Some(t) => match limit.checked_sub(t.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(Outcome::TooSlow),
            },
        };
        conn.set_read_timeout(wait)?;
        match conn.read(&mut chunk) {
            Ok(0) if started.is_none() => return Ok(Outcome::Idle),
            Ok(0) => return Ok(Outcome::Bad("the connection closed mid-request".into())),
            Ok(n) => {
                started.get_or_insert_with(Instant::now);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if crate::connection::is_timeout(&e) && started.is_none() => return Ok(Outcome::Idle),
            Err(e) if crate::connection::is_timeout(&e) => return Ok(Outcome::TooSlow),
            Err(e) => return Err(e),
        }
    }
}
