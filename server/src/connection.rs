//! Reading request lines off a session's transport with a hard length limit
//! and a time limit.
//!
//! The length limit is enforced while reading, so a client that sends an
//! endless line costs at most [`MAX_LINE_LEN`] bytes of memory before it is
//! cut off. The time limit counts from a line's first byte, so a client that
//! trickles a byte at a time cannot hold its session (and slot) for ever.

use std::io::{self, BufRead, BufReader};
use std::time::{Duration, Instant};

use common::MAX_LINE_LEN;

use crate::transport::{is_timeout, Transport};

/// Size of the read buffer: one page, which holds a request line or several
/// pipelined ones. An upload's body bypasses it (`BufReader` reads large
/// requests straight into the caller's buffer once its own is empty). It is
/// small on purpose: a `BufReader` over a [`Transport`] zeroes its whole
/// buffer before the first read (stable Rust gives `Transport` no way to
/// read into uninitialised memory), and at 64 KiB that was 64 KiB of
/// resident memory per idle session.
const READ_BUFFER: usize = 4096;

/// One line as read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its `\n` or `\r\n`.
    Text(String),
    /// A complete line that is not UTF-8.
    NotUtf8,
    /// More than [`MAX_LINE_LEN`] bytes without a line end; the connection must close.
    TooLong,
    /// The line was not complete within the line timeout of its first byte;
    /// the connection must close.
    TooSlow,
    /// The client closed its side.
    Eof,
}

/// The read half of a session's connection.
pub struct RequestReader {
    reader: BufReader<Transport>,
    line: Vec<u8>,
    /// How long a line may take from its first byte to its end.
    line_timeout: Duration,
    /// When the first byte of the line being read arrived.
    started: Option<Instant>,
    /// The read timeout between lines, to restore once a line is complete.
    wait: Duration,
    /// The read timeout is shorter than `wait`: a line is under way.
    shortened: bool,
}

impl RequestReader {
    /// Bytes read from the connection and not yet taken as a line.
    pub fn buffered(&self) -> &[u8] {
        self.reader.buffer()
    }

    /// Wraps the connection's read side; a line must be complete
    /// `line_timeout` after its first byte.
    pub fn new(transport: Transport, line_timeout: Duration) -> RequestReader {
        RequestReader {
            reader: BufReader::with_capacity(READ_BUFFER, transport),
            line: Vec::with_capacity(256),
            line_timeout,
            started: None,
            wait: Duration::MAX,
            shortened: false,
        }
    }

    /// How long [`RequestReader::read_line`] waits for a line to begin before
    /// it reports a timeout.
    ///
    /// # Errors
    /// When the connection's timeout cannot be set.
    pub fn set_wait(&mut self, wait: Duration) -> io::Result<()> {
        self.wait = wait;
        self.shortened = false;
        self.reader.get_ref().set_read_timeout(wait)
    }

    /// The connection, e.g. to change its read timeout.
    pub fn transport(&self) -> &Transport {
        self.reader.get_ref()
    }

    /// The buffered reader, for an upload's body, which may already be partly buffered.
    pub fn body(&mut self) -> &mut impl BufRead {
        &mut self.reader
    }

    /// True when a `cancel` line is among the bytes already received and
    /// not yet read (buffered, or waiting in the socket): a long command
    /// looks, so that it can stop early. Reads nothing.
    pub fn cancel_waiting(&self) -> bool {
        let mut peeked = [0u8; READ_BUFFER];
        let buffered = self.reader.buffer();
        let waiting = if buffered.is_empty() {
            let n = self.reader.get_ref().peek(&mut peeked);
            &peeked[..n]
        } else {
            buffered
        };
        let mut lines = waiting.split(|&b| b == b'\n');
        lines.next_back(); // not ended yet
        lines.any(|line| line.trim_ascii().eq_ignore_ascii_case(b"cancel"))
    }

    /// Reads the next request line.
    ///
    /// Nothing arriving for the wait (see [`RequestReader::set_wait`]) is an
    /// error of kind `WouldBlock` or `TimedOut`; a line begun and not ended
    /// in time is [`Line::TooSlow`].
    ///
    /// # Errors
    /// Whatever the connection reports.
    pub fn read_line(&mut self) -> io::Result<Line> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.started.is_some() && is_timeout(&e) => {
                    if self.line_time_left()?.is_none() {
                        return Ok(self.abandon_line());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if self.line.is_empty() {
                    return Ok(Line::Eof);
                }
                // The last line had no line end: take it as it is.
                return Ok(self.finish_line());
            }
            if let Some(end) = available.iter().position(|&b| b == b'\n') {
                self.line.extend_from_slice(&available[..end]);
                self.reader.consume(end + 1);
                return Ok(self.finish_line());
            }
            let n = available.len();
            self.line.extend_from_slice(available);
            self.reader.consume(n);
            // +1 leaves room for the `\r` of a CRLF line of exactly the limit.
            if self.line.len() > MAX_LINE_LEN + 1 {
                self.line.clear();
                self.end_line()?;
                return Ok(Line::TooLong);
            }
            self.started.get_or_insert_with(Instant::now);
            if self.line_time_left()?.is_none() {
                return Ok(self.abandon_line());
            }
        }
    }

    /// The time the line under way has left, with the read timeout cut to
    /// it; `None` once it is over.
    fn line_time_left(&mut self) -> io::Result<Option<Duration>> {
        let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        let left = self.line_timeout.saturating_sub(elapsed);
        if left.is_zero() {
            return Ok(None);
        }
        if left < self.wait {
            self.reader.get_ref().set_read_timeout(left)?;
            self.shortened = true;
        }
        Ok(Some(left))
    }

    /// A line took too long: it is dropped.
    fn abandon_line(&mut self) -> Line {
        self.line.clear();
        let _ = self.end_line();
        Line::TooSlow
    }

    /// A line is over: the wait between lines applies again.
    fn end_line(&mut self) -> io::Result<()> {
        self.started = None;
        if self.shortened {
            self.shortened = false;
            self.reader.get_ref().set_read_timeout(self.wait)?;
        }
        Ok(())
    }

    fn finish_line(&mut self) -> Line {
        if let Err(e) = self.end_line() {
            tracing::debug!("cannot restore the read timeout: {e}");
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let line = if self.line.len() > MAX_LINE_LEN {
            Line::TooLong
        } else {
            match std::str::from_utf8(&self.line) {
                Ok(text) => Line::Text(text.to_string()),
                Err(_) => Line::NotUtf8,
            }
        };
        self.line.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    /// A connected pair on loopback: the client's end and the server's.
    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    }

    fn reader_for(input: &[u8]) -> RequestReader {
        let (mut client, server) = connected();
        client.write_all(input).unwrap();
        drop(client);
        RequestReader::new(Transport::plain(server), Duration::from_secs(10))
    }

    #[test]
    fn lines_with_lf_crlf_and_none() {
        let mut r = reader_for(b"status\r\nget a b\nlast");
        assert_eq!(r.read_line().unwrap(), Line::Text("status".into()));
        assert_eq!(r.read_line().unwrap(), Line::Text("get a b".into()));
        assert_eq!(r.read_line().unwrap(), Line::Text("last".into()));
        assert_eq!(r.read_line().unwrap(), Line::Eof);
    }

    #[test]
    fn the_limit_is_exact() {
        let at_limit = format!("{}\r\n", "a".repeat(MAX_LINE_LEN));
        let over = format!("{}\n", "b".repeat(MAX_LINE_LEN + 1));
        let mut r = reader_for(format!("{at_limit}{over}").as_bytes());
        assert_eq!(r.read_line().unwrap(), Line::Text("a".repeat(MAX_LINE_LEN)));
        assert_eq!(r.read_line().unwrap(), Line::TooLong);
    }

    #[test]
    fn an_endless_line_is_cut_off() {
        let mut r = reader_for(&vec![b'x'; 1 << 20]);
        assert_eq!(r.read_line().unwrap(), Line::TooLong);
    }

    #[test]
    fn a_trickled_line_is_cut_off_at_the_line_timeout() {
        let (mut client, server) = connected();
        let mut r = RequestReader::new(Transport::plain(server), Duration::from_millis(300));
        r.set_wait(Duration::from_secs(20)).unwrap();
        client.write_all(b"status\n").unwrap();
        assert_eq!(r.read_line().unwrap(), Line::Text("status".into()));
        // One byte every 50 ms: each arrives well within the wait, but the
        // line as a whole takes longer than its timeout.
        let trickle = std::thread::spawn(move || {
            for _ in 0..40 {
                if client.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            client
        });
        let started = Instant::now();
        assert_eq!(r.read_line().unwrap(), Line::TooSlow);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "{took:?}");
        drop(trickle.join().unwrap());
    }

    #[test]
    fn a_line_begun_and_stalled_is_cut_off_too() {
        let (mut client, server) = connected();
        let mut r = RequestReader::new(Transport::plain(server), Duration::from_millis(200));
        r.set_wait(Duration::from_secs(20)).unwrap();
        client.write_all(b"get half").unwrap();
        assert_eq!(r.read_line().unwrap(), Line::TooSlow, "long before the 20 s wait");
    }

    #[test]
    fn invalid_utf8_is_reported_and_reading_goes_on() {
        let mut r = reader_for(b"\xff\xfe\nok\n");
        assert_eq!(r.read_line().unwrap(), Line::NotUtf8);
        assert_eq!(r.read_line().unwrap(), Line::Text("ok".into()));
    }
}
