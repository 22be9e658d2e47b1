//! The client's side of the wire: connect, send a request, read the reply.
//!
//! A reader thread owns the socket's read side between replies, so events
//! show up while no command runs. A reply's body is read on the caller's
//! thread: the reader thread lends it the socket and waits to get it back,
//! so a download goes from the socket through one buffer to its file with
//! no hand-off per chunk.
//!
//! Everything the server says is treated as untrusted: header lines, events
//! and text bodies have hard size limits, a download's memory is one
//! [`CHUNK_SIZE`] buffer, and events go to an [`EventSink`] that prints them
//! escaped.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::text::escape;
use common::{Code, Event, Header, Request, MAX_HEADER_LEN};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};

use crate::error::ClientError;
use crate::progress::{ProgressMode, Waiting};
use crate::transport::Transport;
use crate::trust::Trust;

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

/// What the server said on connect.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The name the server gave this client (`Client02`).
    pub name: String,
    /// The protocol version it speaks.
    pub protocol: String,
}

/// Prints an event on the caller's thread.
pub type PrintEvent = Box<dyn FnMut(&Event)>;

/// Prints an event from the reader thread.
pub type PrintEventFromThread = Box<dyn FnMut(&Event) + Send>;

/// Where events go.
pub enum EventSink {
    /// Handed to the caller in order with replies and printed by it: batch
    /// mode, where output must read in the order things happened.
    InBand(PrintEvent),
    /// Printed by the reader thread as soon as they arrive: at a prompt,
    /// where events must show while the user is idle.
    Direct(PrintEventFromThread),
}

impl EventSink {
    /// The same sink, but the first departure notice of `previous` (this
    /// client's name on a connection just closed) is not shown: after a
    /// reconnect, a user should not be told they left. The notice is known
    /// by its fields (`event=left name=...`), not its sentence.
    pub fn skipping_departure_of(self, previous: Option<String>) -> EventSink {
        let Some(name) = previous else { return self };
        let mut pending = Some(name);
        let mut keep = move |event: &Event| -> bool {
            let departure = event.field("event") == Some("left") && event.field("name") == pending.as_deref();
            if departure {
                pending = None;
            }
            !departure
        };
        match self {
            EventSink::InBand(mut print) => EventSink::InBand(Box::new(move |event| {
                if keep(event) {
                    print(event);
                }
            })),
            EventSink::Direct(mut print) => EventSink::Direct(Box::new(move |event| {
                if keep(event) {
                    print(event);
                }
            })),
        }
    }
}

/// What the reader thread passes on.
enum Incoming {
    Header(Header),
    /// The read side, lent for the body of the `OK` header just passed on.
    Body(ReadSide),
    Event(Event),
    Closed(String),
}

/// A reply body still to be read, with the read side lent for it.
struct Body {
    reader: ReadSide,
    left: u64,
}

/// Where and how to connect: everything a reconnect needs again.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The server's address as the user gave it.
    pub addr: String,
    /// How long to wait for the connection and for a reply that stops coming.
    pub timeout: Duration,
    /// Speak TLS, trusting servers as this says.
    pub tls: Option<Trust>,
    /// Log in to this account once connected (and again on every reconnect).
    pub login: Option<Login>,
}

/// An account's name and password, for `login`. The password comes from
/// `FILE_CLIENT_PASSWORD`, else it is asked for on the terminal the first
/// time it is needed (after the server's identity is settled, as ssh does)
/// and kept for reconnects; never from the command line.
#[derive(Clone)]
pub struct Login {
    /// The account.
    pub user: String,
    /// The server, as typed, for the question.
    pub host: String,
    password: Arc<Mutex<Option<String>>>,
}

impl Login {
    /// An account to log in to; its password from the environment if set there.
    pub fn new(user: &str, host: &str) -> Login {
        let password = std::env::var("FILE_CLIENT_PASSWORD").ok();
        Login { user: user.to_string(), host: host.to_string(), password: Arc::new(Mutex::new(password)) }
    }

    /// The password, asked for now if it is not known yet.
    ///
    /// # Errors
    /// [`ClientError::Usage`] with no terminal to ask on.
    fn password(&self) -> Result<String, ClientError> {
        let mut known = self.password.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(password) = known.as_ref() {
            return Ok(password.clone());
        }
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let user = &self.user;
            return Err(ClientError::Usage(format!(
                "no password for {user}: set FILE_CLIENT_PASSWORD (no terminal to ask on)"
            )));
        }
        let password = rpassword::prompt_password(format!("password for {}@{}: ", self.user, self.host))
            .map_err(|e| ClientError::Local(format!("cannot read the password: {e}")))?;
        *known = Some(password.clone());
        Ok(password)
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login {{ user: {:?}, password: <hidden> }}", self.user)
    }
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

/// Most bytes of events the client holds for the caller: a server that
/// sends more without a reply in between is cut off.
pub const MAX_QUEUED_EVENTS: u64 = 4 * 1024 * 1024;

/// What the reader thread shares with the [`Connection`].
struct Flags {
    closing: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
    end_reason: Arc<Mutex<Option<String>>>,
    /// To shut the connection down when the reader gives up on it.
    socket: Transport,
    admitted: Arc<AtomicBool>,
    queued_events: Arc<AtomicU64>,
}

impl Connection {
    /// Connects, trying each address in turn, and reads the greeting.
    ///
    /// # Errors
    /// [`ClientError::NotAdmitted`] when the server refuses the session (it
    /// is full, or shutting down), [`ClientError::Connect`] when no address
    /// answers, [`ClientError::Connection`] on a bad greeting.
    pub fn open(dial: &Dial, events: EventSink, progress: ProgressMode) -> Result<(Connection, Greeting), ClientError> {
        let timeout = dial.timeout;
        let (stream, peer) = crate::transport::connect(&dial.addr, timeout, dial.tls.as_ref())?;
        let reader = stream.try_clone().map_err(|e| ClientError::connection("connect", e))?;
        let (tx, incoming) = unbounded();
        let (lend_back, returned) = bounded(1);
        let (on_event, direct) = match events {
            EventSink::InBand(f) => (Some(f), None),
            EventSink::Direct(f) => (None, Some(f)),
        };
        let flags = Flags {
            closing: Arc::new(AtomicBool::new(false)),
            ended: Arc::new(AtomicBool::new(false)),
            end_reason: Arc::new(Mutex::new(None)),
            socket: stream.try_clone().map_err(|e| ClientError::connection("connect", e))?,
            admitted: Arc::new(AtomicBool::new(false)),
            queued_events: Arc::new(AtomicU64::new(0)),
        };
        let end_reason = Arc::clone(&flags.end_reason);
        let (closing, ended, admitted, queued_events) = (
            Arc::clone(&flags.closing),
            Arc::clone(&flags.ended),
            Arc::clone(&flags.admitted),
            Arc::clone(&flags.queued_events),
        );
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || read_messages(BufReader::with_capacity(64 * 1024, reader), &tx, &returned, direct, &flags))
            .map_err(|e| ClientError::Local(format!("cannot start a thread: {e}")))?;
        let mut conn = Connection {
            writer: stream,
            incoming,
            body: None,
            lend_back,
            peer,
            timeout,
            on_event,
            closing,
            ended,
            end_reason,
            admitted,
            queued_events,
        };
        let (greeting, probed) = conn.read_greeting(progress);
        match greeting {
            Ok(header) => {
                let name = header.field("name").unwrap_or("client").to_string();
                let protocol = header.field("proto").unwrap_or("?").to_string();
                if let Header::Ok { len, .. } = header {
                    conn.read_text_body(len)?;
                }
                conn.admitted.store(true, Ordering::SeqCst);
                conn.turn_frames_on(probed)?;
                let name = match &dial.login {
                    Some(login) => conn.log_in(login)?.unwrap_or(name),
                    None => name,
                };
                Ok((conn, Greeting { name: escape(&name).into_owned(), protocol }))
            }
            // Something that is not a file-server answered the probe.
            Err(ClientError::Connection(reason)) if reason.starts_with("bad reply") => Err(ClientError::Connection(
                format!("{} does not speak the file-server protocol ({reason})", conn.peer),
            )),
            // 503 in place of the greeting: not admitted (full, shutting down).
            Err(ClientError::Remote { code: Code::Unavailable, message }) => Err(ClientError::NotAdmitted(message)),
            Err(ClientError::Remote { message, .. }) => {
                Err(ClientError::Connection(format!("server refused: {message}")))
            }
            Err(e) => Err(e),
        }
    }

    /// The greeting's header, saying what the wait is for once it takes a
    /// while. A file-server greets at once; a peer that has said nothing
    /// after [`PROBE_AFTER`] is sent `frames on` (the first request anyway),
    /// so that a server of another protocol (HTTP, say) answers it and is
    /// recognised, rather than waited on for the whole timeout. True when the
    /// probe was sent.
    fn read_greeting(&mut self, progress: ProgressMode) -> (Result<Header, ClientError>, bool) {
        let waiting =
            RefCell::new(Waiting::new(progress, format!("connected to {}; waiting for its greeting", self.peer)));
        let probe_at = Instant::now() + PROBE_AFTER;
        let mut probed = false;
        loop {
            let probe_due = || {
                waiting.borrow_mut().tick();
                !probed && Instant::now() >= probe_at
            };
            match self.read_reply_header_unless(&probe_due) {
                Ok(Some(header)) => return (Ok(header), probed),
                Ok(None) => {
                    if let Err(e) = self.send(&Request::Frames(true)) {
                        return (Err(e), probed);
                    }
                    probed = true;
                }
                Err(e) => return (Err(e), probed),
            }
        }
    }

    /// `frames on` (already sent when `sent`): transfers come and go in
    /// `DATA` frames, so a cancelled one ends at a frame's end and the
    /// session goes on.
    fn turn_frames_on(&mut self, sent: bool) -> Result<(), ClientError> {
        if !sent {
            self.send(&Request::Frames(true))?;
        }
        let header = self.read_reply_header()?;
        if let Header::Ok { len, .. } = header {
            self.read_text_body(len)?;
        }
        if header.field("frames") != Some("on") {
            return Err(ClientError::Connection("the server does not speak framed transfers (frames on)".into()));
        }
        Ok(())
    }

    /// Logs in; the name the server now shows for this session, when it
    /// took the account's.
    fn log_in(&mut self, login: &Login) -> Result<Option<String>, ClientError> {
        let password = login.password()?;
        self.send(&Request::Login { user: login.user.clone(), password })?;
        match self.read_reply_header() {
            Ok(header) => {
                let user = header.field("user").map(str::to_string);
                if let Header::Ok { len, .. } = header {
                    self.read_text_body(len)?;
                }
                Ok(user)
            }
            // Every place is taken: not admitted (as a full server at the door).
            Err(ClientError::Remote { code: Code::Unavailable, message }) => Err(ClientError::NotAdmitted(message)),
            Err(ClientError::Remote { message, .. }) => {
                Err(ClientError::Identity(format!("login as {} refused: {message}", login.user)))
            }
            Err(e) => Err(e),
        }
    }

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

/// The reader thread: parses messages until the connection ends, passing
/// each on. Sends `Closed` with the reason as its last word.
fn read_messages(
    mut reader: ReadSide,
    tx: &Sender<Incoming>,
    returned: &Receiver<ReadSide>,
    mut direct: Option<PrintEventFromThread>,
    flags: &Flags,
) {
    let reason = loop {
        let header = match read_header_line(&mut reader)
            .and_then(|line| Header::parse(&line).map_err(|e| format!("bad reply from server: {e}")))
        {
            Ok(header) => header,
            Err(reason) => break reason,
        };
        match header {
            Header::Event { len, fields } => {
                if len > MAX_EVENT_BODY {
                    break format!("server sent an event of {len} bytes; limit is {MAX_EVENT_BODY}");
                }
                let mut body = Vec::with_capacity(len as usize);
                if (&mut reader).take(len).read_to_end(&mut body).map_or(true, |n| n as u64 != len) {
                    break "server closed the connection mid-event".into();
                }
                let event = Event { text: String::from_utf8_lossy(&body).into_owned(), fields };
                match &mut direct {
                    Some(print) => print(&event),
                    None => {
                        let queued = flags.queued_events.fetch_add(event.text.len() as u64, Ordering::SeqCst);
                        if queued > MAX_QUEUED_EVENTS {
                            break format!(
                                "the server sent more than {} MiB of events without a reply; disconnecting",
                                MAX_QUEUED_EVENTS >> 20
                            );
                        }
                        if tx.send(Incoming::Event(event)).is_err() {
                            return;
                        }
                    }
                }
            }
            Header::Ok { len, .. } | Header::Data { len } => {
                if tx.send(Incoming::Header(header)).is_err() {
                    return;
                }
                if len > 0 {
                    // The caller reads the body, then gives the read side back.
                    if tx.send(Incoming::Body(reader)).is_err() {
                        return;
                    }
                    let Ok(back) = returned.recv() else { return };
                    reader = back;
                }
            }
            err => {
                if tx.send(Incoming::Header(err)).is_err() {
                    return;
                }
            }
        }
    };
    if let Ok(mut slot) = flags.end_reason.lock() {
        *slot = Some(reason.clone());
    }
    flags.ended.store(true, Ordering::SeqCst);
    // A send under way (an upload) fails at once rather than run on.
    flags.socket.shutdown(std::net::Shutdown::Both);
    if let Some(print) = &mut direct {
        if flags.admitted.load(Ordering::SeqCst) && !flags.closing.load(Ordering::SeqCst) {
            print(&Event::notice(format!("connection closed: {reason}; the next command reconnects")));
        }
    }
    let _ = tx.send(Incoming::Closed(reason));
}

/// One header line, at most [`MAX_HEADER_LEN`] bytes.
fn read_header_line(reader: &mut ReadSide) -> Result<String, String> {
    let mut line = Vec::with_capacity(128);
    let limit = MAX_HEADER_LEN as u64 + 2;
    reader.take(limit).read_until(b'\n', &mut line).map_err(|e| format!("reading reply: {e}"))?;
    if line.is_empty() {
        return Err("server closed the connection".into());
    }
    if line.last() != Some(&b'\n') {
        // A TLS record (an alert: 21, or a handshake: 22, version 3.x): a
        // `--tls` server answering a client that speaks plain text.
        if matches!(line.as_slice(), [21 | 22, 3, ..]) {
            return Err("the server speaks TLS: connect with --tls".into());
        }
        return Err(if line.len() as u64 >= limit {
            "server sent a reply header that is too long".into()
        } else {
            "server closed the connection mid-reply".into()
        });
    }
    String::from_utf8(line).map_err(|_| "server sent a reply header that is not UTF-8".into())
}
