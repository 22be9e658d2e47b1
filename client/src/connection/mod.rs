//! The client's side of the wire: connect, send a request, read the reply.
//!
//! A reader thread owns the socket's read side between replies, so events
//! show up while no command runs. A reply's body is read on the caller's
//! thread: the reader thread lends it the socket and waits to get it back,
//! so a download goes from the socket through one buffer to its file with
//! no hand-off per chunk.
//!
//! # Layout
//! - here: [`Connection`], the wire: requests out, reply headers and bodies in.
//! - `handshake`: [`Connection::open`]: dialling, the greeting, `frames on`,
//!   the [`Login`]; [`Dial`], what a reconnect needs again.
//! - `reader`: the reader thread, and the [`EventSink`] events go to.
//!
//! Everything the server says is treated as untrusted: header lines, events
//! and text bodies have hard size limits, a download's memory is one
//! [`CHUNK_SIZE`] buffer, and events go to an [`EventSink`] that prints them
//! escaped.

mod handshake;
mod reader;

use std::io::{self, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::text::escape;
use common::{Header, Request};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

pub use handshake::{AskPassword, Dial, Greeting, Login};
pub use reader::{EventSink, PrintEvent, PrintEventFromThread, MAX_QUEUED_EVENTS};

use reader::Incoming;

use crate::error::ClientError;
use crate::transport::Transport;

/// Largest text body (status, list, help, echo) the client accepts.
pub const MAX_TEXT_BODY: u64 = 16 * 1024 * 1024;

/// Largest event body the client accepts.
pub const MAX_EVENT_BODY: u64 = 64 * 1024;

/// Size of the buffer a body is read through.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// A peer that has not greeted within this long is sent a first request,
/// to find out whether it speaks this protocol at all.
pub const PROBE_AFTER: Duration = Duration::from_millis(1500);

/// How long a body read waits before checking for a stall or a cancel.
const TICK: Duration = Duration::from_millis(500);

/// The connection's read side, as the reader thread and a body's reader pass it.
type ReadSide = BufReader<Transport>;

/// Why a body transfer stopped early.
#[derive(Debug)]
pub enum BodyError {
    /// Reading from the server failed.
    Read(ClientError),
    /// Writing the local copy failed.
    Write(io::Error),
    /// The observer cancelled; `remaining` bytes of the body are still to come.
    Cancelled {
        /// Bytes not yet read.
        remaining: u64,
    },
}

impl BodyError {
    pub(crate) fn into_client_error(self) -> ClientError {
        match self {
            BodyError::Read(e) => e,
            BodyError::Write(e) => ClientError::Local(e.to_string()),
            BodyError::Cancelled { .. } => ClientError::Cancelled(String::new()),
        }
    }
}

/// A step of a transfer, for progress and cancelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// This many bytes are done.
    Moved(u64),
    /// Nothing arrived for a moment.
    Waiting,
}

/// Where a reply body's bytes go, a buffer at a time.
pub trait BodySink {
    /// Takes `buf[..filled]`, the next bytes of the body, and returns a
    /// buffer (of any length) to receive the bytes after them into.
    ///
    /// # Errors
    /// When the bytes cannot be stored.
    fn store(&mut self, buf: Vec<u8>, filled: usize) -> io::Result<Vec<u8>>;
}

/// Any writer: the bytes are written and the buffer comes straight back.
impl<W: Write + ?Sized> BodySink for W {
    fn store(&mut self, buf: Vec<u8>, filled: usize) -> io::Result<Vec<u8>> {
        self.write_all(&buf[..filled])?;
        Ok(buf)
    }
}

/// A reply body still to be read, with the read side lent for it.
struct Body {
    reader: ReadSide,
    left: u64,
}

/// An open session with a server.
///
/// A reader thread owns the socket's read side: it parses every message,
/// prints or forwards events, and hands reply headers over a channel, so
/// events are seen even while no command runs. For a body it lends the read
/// side to this side until the body has been read (see [`Body`]).
pub struct Connection {
    writer: Transport,
    incoming: Receiver<Incoming>,
    /// The body of the last `OK` header, while it is being read.
    body: Option<Body>,
    /// Where a body's read side goes back to the reader thread.
    lend_back: Sender<ReadSide>,
    peer: SocketAddr,
    timeout: Duration,
    on_event: Option<PrintEvent>,
    /// Set when this side closes, so the reader thread ends quietly.
    closing: Arc<AtomicBool>,
    /// Set by the reader thread when the connection has ended.
    ended: Arc<AtomicBool>,
    /// Why the reader thread ended the connection.
    end_reason: Arc<Mutex<Option<String>>>,
    /// Set once the server's greeting admitted this client: only then is
    /// the connection's end worth a notice.
    admitted: Arc<AtomicBool>,
    /// Bytes of events passed on and not yet taken (batch mode).
    queued_events: Arc<AtomicU64>,
}

impl Connection {
    /// Writes bytes as they are: an upload's frame lines.
    ///
    /// # Errors
    /// [`ClientError::Connection`] when the write fails.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(bytes).map_err(|e| self.failure("sending", e))
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
        let sent = self.writer.write_all(request.encode().as_bytes());
        sent.map_err(|e| self.failure("sending request", e))
    }

    /// The connection's write side, for an upload's body.
    pub fn upload_sink(&mut self) -> &mut Transport {
        &mut self.writer
    }

    /// The next message, or `None` once `cancel` says so (it is asked about
    /// twice a second while nothing comes); nothing by `deadline` is an error.
    fn next_incoming(&mut self, deadline: Instant, cancel: &dyn Fn() -> bool) -> Result<Option<Incoming>, ClientError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.silent());
            }
            match self.incoming.recv_timeout(left.min(TICK)) {
                Ok(Incoming::Closed(reason)) => return Err(ClientError::Connection(reason)),
                Ok(msg) => return Ok(Some(msg)),
                Err(RecvTimeoutError::Timeout) => {
                    if cancel() {
                        return Ok(None);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ClientError::Connection("server closed the connection".into()))
                }
            }
        }
    }

    fn silent(&self) -> ClientError {
        ClientError::Connection(format!("the server stopped answering (no reply for {}s)", self.timeout.as_secs()))
    }

    /// Reads the next reply header, handing any events before it to the
    /// in-band printer. An `ERR` header becomes [`ClientError::Remote`].
    ///
    /// # Errors
    /// [`ClientError::Remote`] for `ERR`, [`ClientError::Connection`] when the
    /// connection fails, the header is not valid or no reply comes in time.
    pub fn read_reply_header(&mut self) -> Result<Header, ClientError> {
        self.read_reply_header_unless(&|| false).map(|header| header.expect("never cancelled"))
    }

    /// As [`Connection::read_reply_header`], but stops waiting once `cancel`
    /// says so: `Ok(None)`. The reply is then still to come (a server can take
    /// a while to hash a big file before it answers `get`), so the connection
    /// can only be closed.
    ///
    /// # Errors
    /// As [`Connection::read_reply_header`].
    pub fn read_reply_header_unless(&mut self, cancel: &dyn Fn() -> bool) -> Result<Option<Header>, ClientError> {
        if self.body.is_some() {
            return Err(ClientError::Connection("reply out of order: a body was not read".into()));
        }
        // Events do not count as an answer: the reply is due by then.
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(incoming) = self.next_incoming(deadline, cancel)? else { return Ok(None) };
            match incoming {
                Incoming::Event(event) => {
                    self.queued_events.fetch_sub(event.text.len() as u64, Ordering::SeqCst);
                    if let Some(print) = &mut self.on_event {
                        print(&event);
                    }
                }
                Incoming::Header(Header::Err { code, message }) => {
                    return Err(ClientError::Remote { code, message: escape(&message).into_owned() })
                }
                Incoming::Header(header) => {
                    if let Header::Ok { len, .. } | Header::Data { len } = header {
                        if len > 0 {
                            // The reader thread lends the read side right after the header.
                            let Ok(Incoming::Body(reader)) = self.incoming.recv() else {
                                return Err(ClientError::Connection("server closed the connection".into()));
                            };
                            self.body = Some(Body { reader, left: len });
                        }
                    }
                    return Ok(Some(header));
                }
                Incoming::Body(_) | Incoming::Closed(_) => {
                    return Err(ClientError::Connection("reply out of order".into()));
                }
            }
        }
    }

    /// True while the body (or frame) of the last header is not all read.
    pub fn has_body(&self) -> bool {
        self.body.is_some()
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
        self.read_body_into(&mut body, &mut |_| true).map_err(BodyError::into_client_error)?;
        String::from_utf8(body).map_err(|_| ClientError::Connection("server sent a reply that is not UTF-8".into()))
    }

    /// Streams the body of the last `OK` header into `out` and returns its
    /// length. `observe` hears of every step ([`Transfer::Moved`] with the
    /// bytes done, or [`Transfer::Waiting`] about twice a second while nothing
    /// comes) and returns `false` to cancel. A body that stalls for the
    /// timeout is an error; one that keeps moving never is.
    ///
    /// # Errors
    /// [`BodyError::Read`] when the connection fails or ends early,
    /// [`BodyError::Write`] when `out` fails (the rest of the body is then
    /// skipped, so the session stays usable), [`BodyError::Cancelled`] when
    /// `observe` said so (the rest of the body is still to come: read it with
    /// [`Connection::skip_body`] or close the connection).
    pub fn read_body_into(
        &mut self,
        out: &mut dyn BodySink,
        observe: &mut dyn FnMut(Transfer) -> bool,
    ) -> Result<u64, BodyError> {
        let Some(mut body) = self.body.take() else { return Ok(0) };
        let mut buf = vec![0; CHUNK_SIZE.min(usize::try_from(body.left).unwrap_or(CHUNK_SIZE))];
        let _ = body.reader.get_ref().set_read_timeout(Some(TICK));
        let (mut done, mut heard, mut write_error) = (0, Instant::now(), None);
        let failure = loop {
            if body.left == 0 {
                break None;
            }
            let want = buf.len().min(usize::try_from(body.left).unwrap_or(usize::MAX));
            match body.reader.read(&mut buf[..want]) {
                Ok(0) => break Some(ClientError::Connection("server closed the connection mid-reply".into())),
                Ok(n) => {
                    body.left -= n as u64;
                    done += n as u64;
                    heard = Instant::now();
                    if write_error.is_some() {
                        continue; // skipping the rest
                    }
                    match out.store(std::mem::take(&mut buf), n) {
                        Ok(next) if !next.is_empty() => buf = next,
                        Ok(_) => buf = vec![0; CHUNK_SIZE],
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                            // Nothing will read the rest (`| head`): stop now,
                            // the session is ending.
                            return Err(self.keep_for_later(body, BodyError::Write(e)));
                        }
                        Err(e) => {
                            buf = vec![0; CHUNK_SIZE];
                            write_error = Some(e);
                            continue;
                        }
                    }
                    if !observe(Transfer::Moved(done)) && body.left > 0 {
                        let remaining = body.left;
                        return Err(self.keep_for_later(body, BodyError::Cancelled { remaining }));
                    }
                }
                Err(e) if crate::transport::is_timeout(&e) => {
                    if heard.elapsed() >= self.timeout {
                        let secs = self.timeout.as_secs();
                        break Some(ClientError::Connection(format!(
                            "the server stopped sending (nothing for {secs}s)"
                        )));
                    }
                    if write_error.is_none() && !observe(Transfer::Waiting) {
                        let remaining = body.left;
                        return Err(self.keep_for_later(body, BodyError::Cancelled { remaining }));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(ClientError::Connection(format!("reading reply: {e}"))),
            }
        };
        self.give_back(body);
        match (failure, write_error) {
            (Some(e), _) => Err(BodyError::Read(e)),
            (None, Some(e)) => Err(BodyError::Write(e)),
            (None, None) => Ok(done),
        }
    }

    /// Returns the read side to the reader thread once a body is read (or
    /// failed: the reader thread then finds the connection broken and says so).
    fn give_back(&mut self, body: Body) {
        let _ = body.reader.get_ref().set_read_timeout(None);
        let _ = self.lend_back.send(body.reader);
    }

    /// A body left unread stays lent until it is skipped or the connection closes.
    fn keep_for_later(&mut self, body: Body, why: BodyError) -> BodyError {
        self.body = Some(body);
        why
    }

    /// Reads and drops the rest of the current body, e.g. after the local
    /// side failed or a cancel.
    ///
    /// # Errors
    /// [`ClientError::Connection`] when the connection fails.
    pub fn skip_body(&mut self) -> Result<(), ClientError> {
        self.read_body_into(&mut io::sink(), &mut |_| true).map(|_| ()).map_err(BodyError::into_client_error)
    }
}

impl Connection {
    /// A failed send, explained: by why the reader thread ended the
    /// connection, when it did (a send then fails only because of that).
    pub fn failure(&self, context: &str, e: io::Error) -> ClientError {
        match self.end_reason.lock().map(|reason| reason.clone()) {
            Ok(Some(reason)) => ClientError::Connection(reason),
            _ => ClientError::connection(context, e),
        }
    }

    /// True once the connection has ended (the server closed it, or it broke).
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// The server is about to close the connection as asked (`exit`): the
    /// reader thread then ends quietly.
    pub fn expect_close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Closes the connection from this side; the reader thread ends quietly.
    pub fn close(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        // Wakes the reader thread, which then ends.
        self.writer.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}
