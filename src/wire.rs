//! The protocol spoken by hand: replies as read off the wire, a raw client, connections from another loopback address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::TEST_TIMEOUT;

/// One reply as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The header line without its `\n`.
    pub header: String,
    /// The body (empty for `ERR`).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Every message in `transcript` (what some client read off the wire, all
/// of it), events included.
pub fn parse_messages(mut transcript: &[u8]) -> Vec<Reply> {
    let mut messages = Vec::new();
    while let Some(end) = transcript.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&transcript[..end]).trim_end().to_string();
        let len = match header.split(' ').collect::<Vec<_>>().as_slice() {
            ["OK", len, ..] | ["EVT", len, ..] => len.parse::<usize>().expect("length"),
            ["ERR", ..] => 0,
            _ => panic!("bad header {header:?}"),
        };
        let body = transcript[end + 1..end + 1 + len].to_vec();
        transcript = &transcript[end + 1 + len..];
        messages.push(Reply { header, body });
    }
    assert!(transcript.is_empty(), "a cut-off message at the end: {:?}", String::from_utf8_lossy(transcript));
    messages
}

/// A client that speaks the protocol by hand, for exact checks.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    /// The socket, to write raw bytes.
    pub stream: TcpStream,
    /// The greeting's header line.
    pub greeting: String,
}

impl RawClient {
    /// Connects and reads the greeting (which may be `ERR 503 ...`).
    pub fn connect(addr: SocketAddr) -> RawClient {
        RawClient::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects from the loopback address `from` (127.0.0.2, ...) and reads
    /// the greeting: another host, as far as the server can tell.
    pub fn connect_from(from: &str, addr: SocketAddr) -> RawClient {
        RawClient::from_stream(tcp_from(from, addr))
    }

    /// Reads the greeting on a connection made some other way (from another
    /// source address, say).
    pub fn from_stream(stream: TcpStream) -> RawClient {
        stream.set_read_timeout(Some(TEST_TIMEOUT)).expect("timeout");
        let mut client =
            RawClient { reader: BufReader::new(stream.try_clone().expect("clone")), stream, greeting: String::new() };
        let greeting = client.read_message();
        client.greeting = greeting.header;
        client
    }

    /// Sends `line` and a `\n`.
    pub fn send_line(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a request and reads its reply, skipping events.
    pub fn request(&mut self, line: &str) -> Reply {
        self.send_line(line);
        self.read_reply()
    }

    /// Reads the next reply that is not an event.
    pub fn read_reply(&mut self) -> Reply {
        loop {
            let msg = self.read_message();
            if !msg.header.starts_with("EVT ") {
                return msg;
            }
        }
    }

    /// Reads the next message of any kind, event included.
    pub fn read_message(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read header");
        assert!(line.ends_with('\n'), "connection closed; got {line:?}");
        let header = line.trim_end().to_string();
        let len = match header.split(' ').collect::<Vec<_>>().as_slice() {
            ["OK", len, ..] | ["EVT", len, ..] => len.parse::<usize>().expect("length"),
            ["ERR", ..] => 0,
            _ => panic!("bad header {header:?}"),
        };
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("read body");
        Reply { header, body }
    }

    /// Reads only the header line of the next reply, skipping events before it.
    pub fn read_header(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read header");
            let line = line.trim_end().to_string();
            match line.strip_prefix("EVT ") {
                Some(rest) => {
                    let len = rest.split(' ').next().and_then(|n| n.parse().ok()).expect("event length");
                    drop(self.read_exact(len));
                }
                None => return line,
            }
        }
    }

    /// Reads messages until the event with exactly `text` (its line end
    /// included); other events are skipped, a reply fails the test.
    pub fn expect_event(&mut self, text: &str) -> Reply {
        loop {
            let msg = self.read_message();
            assert!(msg.header.starts_with("EVT "), "expected event {text:?}, got reply {msg:?}");
            if msg.text() == text {
                return msg;
            }
        }
    }

    /// The texts of the events that arrive before the next reply, and that reply.
    pub fn events_then_reply(&mut self) -> (Vec<String>, Reply) {
        let mut events = Vec::new();
        loop {
            let msg = self.read_message();
            if msg.header.starts_with("EVT ") {
                events.push(msg.text());
            } else {
                return (events, msg);
            }
        }
    }

    /// Reads exactly `n` body bytes after [`RawClient::read_header`].
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut body = vec![0; n];
        self.reader.read_exact(&mut body).expect("read body");
        body
    }

    /// Reads messages until the server closes the connection; all must be
    /// events, whose texts are returned.
    pub fn events_until_eof(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        loop {
            if self.reader.fill_buf().expect("read").is_empty() {
                return events;
            }
            let msg = self.read_message();
            assert!(msg.header.starts_with("EVT "), "expected only events before the close, got {msg:?}");
            events.push(msg.text());
        }
    }

    /// Reads until the server closes the connection; returns what came before.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).expect("read to end");
        rest
    }
}

/// A TCP connection to `addr` from the loopback address `from` (`127.0.0.3`),
/// for tests of what one address may hold.
pub fn tcp_from(from: &str, addr: SocketAddr) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    bind(&fd, &SocketAddr::new(from.parse().expect("address"), 0)).expect("bind the source address");
    connect(&fd, &addr).expect("connect");
    TcpStream::from(fd)
}
