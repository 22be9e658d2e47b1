//! Reading one HTTP/1.1 request head off a connection, with limits: at most
//! [`MAX_HEAD`] bytes, complete within a time of its first byte (a
//! slowloris trickle cannot hold a connection), and the wait for a next
//! request on a kept-alive connection bounded too. Parsing is `httparse`'s.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use common::transport::Transport;

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// Most headers in one request.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target's path and query (`/docs/a%20b.txt?tar`); for an
    /// absolute-form target (`http://host/docs/`), its path.
    pub target: String,
    /// The authority of an absolute-form target, which stands for `Host`.
    pub authority: Option<String>,
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

    /// Every value of a header that may come on several lines, joined by
    /// `sep` (`If:` lists, which clients such as neon split over lines).
    pub fn header_joined(&self, name: &str, sep: &str) -> Option<String> {
        let values: Vec<&str> = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(sep))
    }

    /// The host the request is for: an absolute-form target's authority,
    /// else the `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.authority.as_deref().or_else(|| self.header("host"))
    }

    /// The body's length (`Content-Length`, checked when the head was read).
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.split(',').next()?.trim().parse().ok())
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
pub enum HeadRead {
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
/// begin, then `limit` from its first byte for the whole head. `set` is the
/// read timeout the connection has now, if known (a kept-alive connection's
/// wait for its next request is set once, not per request).
///
/// # Errors
/// A failing connection.
pub fn read_head(
    conn: &mut Transport,
    buf: &mut Vec<u8>,
    idle: Duration,
    limit: Duration,
    set: &mut Option<Duration>,
) -> io::Result<HeadRead> {
    let mut started = (!buf.is_empty()).then(Instant::now);
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let (authority, target) = split_target(request.path.unwrap_or(""));
                    let head = Head {
                        method: request.method.unwrap_or("").to_string(),
                        target,
                        authority,
                        minor: request.version.unwrap_or(1),
                        headers: request
                            .headers
                            .iter()
                            .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
                            .collect(),
                    };
                    buf.drain(..len);
                    if let Err(why) = check_framing(&head) {
                        return Ok(HeadRead::Bad(why.into()));
                    }
                    return Ok(HeadRead::Head(head));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Ok(HeadRead::Bad(e.to_string())),
            }
            if buf.len() >= MAX_HEAD {
                return Ok(HeadRead::TooLarge);
            }
        }
        let wait = match started {
            None => idle,
            Some(t) => match limit.checked_sub(t.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(HeadRead::TooSlow),
            },
        };
        if *set != Some(wait) {
            conn.set_read_timeout(wait)?;
            // A wait counted from the head's first byte is never the same twice.
            *set = started.is_none().then_some(wait);
        }
        match conn.read(&mut chunk) {
            Ok(0) if started.is_none() => return Ok(HeadRead::Idle),
            Ok(0) => return Ok(HeadRead::Bad("the connection closed mid-request".into())),
            Ok(n) => {
                started.get_or_insert_with(Instant::now);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if common::transport::is_timeout(&e) && started.is_none() => return Ok(HeadRead::Idle),
            Err(e) if common::transport::is_timeout(&e) => return Ok(HeadRead::TooSlow),
            Err(e) => return Err(e),
        }
    }
}

/// An absolute-form target (`http://host:port/path?q`, as proxies send) as
/// its authority and its origin-form path; any other target as it is.
fn split_target(target: &str) -> (Option<String>, String) {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return (None, target.to_string());
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    (Some(authority.to_string()), path)
}

/// How the body is framed, per RFC 9112 §6.3: every `Content-Length`
/// (repeated, or a list) must be the same run of digits, and never beside
/// `Transfer-Encoding`; one `Host` at most. A head that breaks this could be
/// read two ways (a smuggled request), so it is refused and the connection closed.
fn check_framing(head: &Head) -> Result<(), &'static str> {
    let mut lengths = head
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .peekable();
    if let Some(first) = lengths.peek().copied() {
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) || first.parse::<u64>().is_err() {
            return Err("Content-Length is not a number");
        }
        if lengths.any(|l| l != first) {
            return Err("Content-Length is given twice with different values");
        }
        if head.header("transfer-encoding").is_some() {
            return Err("both Content-Length and Transfer-Encoding");
        }
    }
    if head.headers.iter().filter(|(n, _)| n == "host").count() > 1 {
        return Err("more than one Host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> Head {
        Head {
            method: "PUT".into(),
            target: "/x".into(),
            authority: None,
            minor: 1,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn lengths_that_can_be_read_two_ways_are_refused() {
        assert!(check_framing(&head(&[("content-length", "5")])).is_ok());
        assert!(check_framing(&head(&[("content-length", "5"), ("content-length", "5")])).is_ok());
        assert!(check_framing(&head(&[("content-length", "5, 5")])).is_ok());
        assert_eq!(head(&[("content-length", "5, 5")]).content_length(), Some(5));
        for bad in [
            &[("content-length", "5"), ("content-length", "6")][..],
            &[("content-length", "+5")][..],
            &[("content-length", "5, 6")][..],
            &[("content-length", "")][..],
            &[("content-length", "0x10")][..],
            &[("content-length", "99999999999999999999999")][..],
            &[("content-length", "5"), ("transfer-encoding", "chunked")][..],
            &[("host", "a"), ("host", "b")][..],
        ] {
            assert!(check_framing(&head(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn absolute_form_targets_give_their_authority_and_path() {
        assert_eq!(split_target("/a?b"), (None, "/a?b".into()));
        assert_eq!(split_target("http://host:8080/docs/x"), (Some("host:8080".into()), "/docs/x".into()));
        assert_eq!(split_target("HTTPS://Host"), (Some("Host".into()), "/".into()));
        assert_eq!(split_target("http://h?tar"), (Some("h".into()), "/?tar".into()));
    }
}
