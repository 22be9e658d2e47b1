//! Reading request lines off a session's transport with a hard length limit.
//!
//! The limit is enforced while reading, so a client that sends an endless line
//! costs at most [`MAX_LINE_LEN`] bytes of memory before it is cut off.

use std::io::{self, BufRead, BufReader, Read};

use common::MAX_LINE_LEN;

use crate::transport::Transport;

/// Size of the read buffer: large enough that an upload's body arrives in few reads.
const READ_BUFFER: usize = 64 * 1024;

/// One line as read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its `\n` or `\r\n`.
    Text(String),
    /// A complete line that is not UTF-8.
    NotUtf8,
    /// More than [`MAX_LINE_LEN`] bytes without a line end; the connection must close.
    TooLong,
    /// The client closed its side.
    Eof,
}

/// The read half of a session's connection.
pub struct RequestReader {
    reader: BufReader<Transport>,
    line: Vec<u8>,
}

impl RequestReader {
    /// Wraps the connection's read side.
    pub fn new(transport: Transport) -> RequestReader {
        RequestReader { reader: BufReader::with_capacity(READ_BUFFER, transport), line: Vec::with_capacity(256) }
    }

    /// The connection, e.g. to change its read timeout.
    pub fn transport(&self) -> &Transport {
        self.reader.get_ref()
    }

    /// The buffered reader, for an upload's body, which may already be partly buffered.
    pub fn body(&mut self) -> &mut impl Read {
        &mut self.reader
    }

    /// Reads the next request line.
    ///
    /// A read timeout surfaces as an error of kind `WouldBlock` or `TimedOut`;
    /// the part of a line read so far is kept, so calling again resumes it.
    ///
    /// # Errors
    /// Whatever the connection reports.
    pub fn read_line(&mut self) -> io::Result<Line> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
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
                return Ok(Line::TooLong);
            }
        }
    }

    fn finish_line(&mut self) -> Line {
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

    fn reader_for(input: &[u8]) -> RequestReader {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(input).unwrap();
        drop(client);
        RequestReader::new(Transport::plain(server))
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
    fn invalid_utf8_is_reported_and_reading_goes_on() {
        let mut r = reader_for(b"\xff\xfe\nok\n");
        assert_eq!(r.read_line().unwrap(), Line::NotUtf8);
        assert_eq!(r.read_line().unwrap(), Line::Text("ok".into()));
    }
}
