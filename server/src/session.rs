//! One client's session over the line protocol: admitted, greeted, then a
//! loop of request lines until `exit`, end of input, an idle timeout or
//! shutdown. The loop only reads lines, hands each to [`crate::cmd`], sends
//! the reply and keeps time; what a command does is decided there.
//!
//! The [`SessionLoop`] runs on a pool thread and owns the read half of the
//! connection; replies go out through the session's [`WriteHalf`] (see
//! [`crate::writer`]). Leaving the session, by any path, gives back the
//! registration and the slot before the connection closes, so a client that
//! has seen the connection close can count on its slot being free.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::status::Activity;
use common::{Code, Event, Header, ListEntry, Request, PROTOCOL_VERSION};
use crossbeam_channel::{bounded, unbounded, Sender};

use crate::cmd::{self, Caller, Outcome, Refusal};
use crate::config::Shared;
use crate::connection::{Line, RequestReader};
use crate::frames::{Ending, FramedUpload};
use crate::presence::Registration;
use crate::proxy;
use crate::slots::{Cap, Place};
use crate::transport::is_timeout;
use crate::transport::{Closer, Transport};
use crate::writer::{self, Outgoing, WriteHalf};

/// Replies the reader may queue ahead of the writer (pipelined requests).
const REPLY_QUEUE: usize = 8;

/// What a client admitted but not served (no thread, no descriptor) is told.
const CANNOT_SERVE: &str = "the server cannot start a session now; try again later";

/// Most characters of client-chosen text (a name in an error) in one log line.
const LOGGED_TEXT: usize = 300;

/// What a connection holds while it is served; dropping it gives it back.
pub enum Admission {
    /// A session's place (`--max-clients`, `--max-per-ip`).
    Session(Place),
    /// A place among the connections being set up (`--max-startups`): for
    /// a TLS handshake, and on a server that needs a login, until the login.
    /// A session's place is taken once they are done.
    Startup(Place),
}

/// Runs a session to its end on the current thread. `sessions` is the cap
/// a connection admitted as a startup takes its session's place from.
pub fn serve(
    transport: Transport,
    addr: SocketAddr,
    admission: Admission,
    sessions: Arc<dyn Cap>,
    shared: Arc<Shared>,
) {
    transport.set_nodelay();
    // A TLS peer that stalls its handshake keeps its startup place no
    // longer than a request line may take.
    if let Err(e) = transport.handshake(Instant::now() + shared.config.line_timeout) {
        tracing::info!(%addr, "TLS handshake failed: {e}");
        drop(admission);
        return transport.shutdown(Shutdown::Both);
    }
    let admission = match admission {
        Admission::Startup(_) if !shared.config.login_required() => match sessions.try_acquire(addr.ip()) {
            Ok(slot) => Admission::Session(slot),
            Err(over) => {
                tracing::debug!(%addr, "refused after its handshake: {}", over.message(addr));
                transport.send_now(Header::err(Code::Unavailable, over.message(addr)).encode().as_bytes());
                return transport.shutdown(Shutdown::Both);
            }
        },
        admission => admission,
    };
    let _ = transport.set_write_timeout(shared.config.idle_timeout);
    let clones = (transport.try_clone(), transport.try_clone());
    let (Ok(for_closer), Ok(for_writer)) = clones else {
        tracing::error!(%addr, "cannot duplicate the connection (out of file descriptors?); refusing it");
        transport.send_now(Header::err(Code::Unavailable, CANNOT_SERVE).encode().as_bytes());
        return;
    };
    // Unbounded, so an idle session costs no queue memory up front (a bounded
    // channel allocates all its slots); `notify` enforces the bound.
    let (events_tx, events_rx) = unbounded();
    let presence = &shared.presence;
    let session = presence.register(addr, Closer::new(for_closer), events_tx);
    session.set_logging_in(matches!(admission, Admission::Startup(_)));
    if shared.connection_log.allow("connection events") {
        tracing::info!(client = %session.name(), %addr, "connected ({}/{})", presence.len(), shared.config.max_clients);
    } else {
        tracing::debug!(client = %session.name(), %addr, "connected ({}/{})", presence.len(), shared.config.max_clients);
    }

    // A session admitted just as shutdown began is told so and ends at once.
    let stopping = shared.stopping.is_set();
    let first = if stopping {
        Outgoing::reply(&Header::err(Code::Unavailable, "server is shutting down"), b"")
    } else {
        greeting(&session.name())
    };
    let (replies, replies_rx) = bounded(REPLY_QUEUE);
    let info = session.info();
    let half = WriteHalf::with_rate(
        for_writer,
        events_rx.clone(),
        shared.config.idle_timeout,
        shared.config.max_rate_per_client,
    );
    let writer = thread::Builder::new()
        .name(format!("writer-{}", session.name()))
        .stack_size(writer::WRITER_STACK_SIZE)
        .spawn({
            let half = Arc::clone(&half);
            move || writer::run(half, first, replies_rx, events_rx, info)
        });
    let Ok(writer) = writer else {
        tracing::error!(client = %session.name(), "cannot start a writer thread; refusing the connection");
        transport.send_now(Header::err(Code::Unavailable, CANNOT_SERVE).encode().as_bytes());
        return;
    };

    let out = Replies { half, queue: replies };
    let reader = RequestReader::new(transport, shared.config.line_timeout);
    let config = &shared.config;
    let login_by = (config.accounts.is_some() && !config.anonymous_read).then(|| Instant::now() + config.login_timeout);
    let mut session_loop = SessionLoop {
        reader,
        out,
        shared,
        session,
        timeout_shortened: false,
        framed: false,
        requests: 0,
        login_by,
        admission,
        sessions,
    };
    let mut reason = if stopping { "server shutting down".to_string() } else { session_loop.run() };
    if session_loop.shared.stopping.grace_is_over() {
        reason = format!("closed at the end of the grace period ({reason})");
    }
    let SessionLoop { reader, out, session, admission, .. } = session_loop;
    drop(out);
    if writer.join().is_err() {
        tracing::error!(client = %session.name(), "writer thread panicked");
    }
    if session_loop.shared.connection_log.allow("connection events") {
        tracing::info!(client = %session.name(), "disconnected: {reason}");
    } else {
        tracing::debug!(client = %session.name(), "disconnected: {reason}");
    }
    drop(session);
    drop(admission);
    reader.transport().shutdown(Shutdown::Both);
}

/// The first message of a session: protocol version and assigned name.
fn greeting(name: &str) -> Outgoing {
    let body = format!("welcome {name}; type help for commands\n");
    let header = Header::Ok {
        len: body.len() as u64,
        fields: vec![("proto".into(), PROTOCOL_VERSION.to_string()), ("name".into(), name.to_string())],
    };
    Outgoing::reply(&header, body.as_bytes())
}

/// The per-client state of the reading side.
struct SessionLoop {
    reader: RequestReader,
    out: Replies,
    shared: Arc<Shared>,
    session: Registration,
    /// The read timeout is below the idle timeout and must be restored.
    timeout_shortened: bool,
    /// `frames on`: transfers go in `DATA` frames.
    framed: bool,
    /// Requests read so far; the number of the one being run.
    requests: u64,
    /// When the session must have logged in by (`--users`), until it has.
    login_by: Option<Instant>,
    /// Its place: among the startups until it has logged in (where a login
    /// is needed), then a session's.
    admission: Admission,
    /// Where a session's place is taken from.
    sessions: Arc<dyn Cap>,
}

/// What waiting for the next request line gave.
enum Wait {
    /// A line (or the end of input).
    Line(Line),
    /// The client was silent, and no transfer moved, for the idle timeout.
    Idle,
    /// The client has not logged in within the login timeout.
    NoLogin,
}

/// Whether the session goes on after a request.
enum Next {
    Continue,
    Close(&'static str),
}

impl SessionLoop {
    fn run(&mut self) -> String {
        if let Err(e) = self.reader.set_wait(self.shared.config.idle_timeout) {
            return format!("cannot set a read timeout: {e}");
        }
        let mut first = true;
        loop {
            let line = match self.next_line() {
                Ok(Wait::Line(line)) => line,
                Ok(Wait::Idle) => return "idle timeout".into(),
                Ok(Wait::NoLogin) => {
                    let secs = self.shared.config.login_timeout.as_secs_f64();
                    self.refuse(Refusal::new(Code::Unauthorized, format!("not logged in within {secs}s; closing")));
                    return "no login in time".into();
                }
                Err(e) => return format!("read failed: {e}"),
            };
            let text = match line {
                Line::Eof => return "end of input".into(),
                Line::TooLong => {
                    let limit = common::MAX_LINE_LEN;
                    self.refuse(Refusal::new(
                        Code::BadRequest,
                        format!("request line longer than {limit} bytes; closing"),
                    ));
                    return "request line too long".into();
                }
                Line::TooSlow => {
                    let secs = self.shared.config.line_timeout.as_secs_f64();
                    let message = format!("request line not complete within {secs}s of its first byte; closing");
                    self.refuse(Refusal::new(Code::Timeout, message));
                    return "request line too slow".into();
                }
                Line::NotUtf8 => {
                    self.refuse(Refusal::new(Code::BadRequest, "request is not valid UTF-8"));
                    continue;
                }
                Line::Text(text) => text,
            };
            let proxied = self.shared.config.proxy.is_some();
            if std::mem::take(&mut first) && proxied && proxy::is_header_line(&text, self.reader.buffered()) {
                tracing::warn!(addr = %self.session.addr, "a PROXY header from an address not in --proxy-from; closed");
                return "a PROXY header from outside --proxy-from".into();
            }
            self.session.clock.touch();
            if !self.session.gate.begin_command(&self.shared.stopping) {
                self.refuse(Refusal::new(Code::Unavailable, "server is shutting down"));
                return "server shutting down".into();
            }
            let next = self.execute(&text);
            let told_to_stop = self.session.gate.end_command();
            if let Next::Close(reason) = next {
                return reason.into();
            }
            if told_to_stop {
                return "server shutting down".into();
            }
        }
    }

    /// The time left to log in, while a login is due; zero once it is late.
    fn login_left(&mut self) -> Option<Duration> {
        if self.session.account().is_some() {
            self.login_by = None;
        }
        self.login_by.map(|by| by.saturating_duration_since(Instant::now()))
    }

    /// The next line; or the client has been silent (and no transfer has
    /// moved) for the idle timeout; or it is late to log in.
    fn next_line(&mut self) -> io::Result<Wait> {
        let idle_timeout = self.shared.config.idle_timeout;
        loop {
            if let Some(left) = self.login_left() {
                if left.is_zero() {
                    return Ok(Wait::NoLogin);
                }
                if left < idle_timeout.saturating_sub(self.session.clock.idle_for()) {
                    self.reader.set_wait(left)?;
                    self.timeout_shortened = true;
                }
            }
            match self.reader.read_line() {
                Ok(line) => {
                    if self.timeout_shortened {
                        self.reader.set_wait(idle_timeout)?;
                        self.timeout_shortened = false;
                    }
                    return Ok(Wait::Line(line));
                }
                Err(e) if is_timeout(&e) && self.login_left().is_some_and(|left| left.is_zero()) => {
                    return Ok(Wait::NoLogin);
                }
                Err(e) if is_timeout(&e) => {
                    let remaining = idle_timeout.saturating_sub(self.session.clock.idle_for());
                    if remaining.is_zero() {
                        let notice = format!("idle for {}s; disconnecting", idle_timeout.as_secs());
                        self.session.notify(Event::notice(notice));
                        return Ok(Wait::Idle);
                    }
                    // A transfer kept the session alive: wait only for the rest.
                    self.reader.set_wait(remaining.max(Duration::from_millis(10)))?;
                    self.timeout_shortened = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs one request line and sends its reply.
    fn execute(&mut self, line: &str) -> Next {
        self.requests += 1;
        let request = match Request::parse(line) {
            Ok(request) => request,
            Err(e) => return self.out.deliver(Outcome::Refused(e.into()), &self.session),
        };
        let summary = request.summary();
        tracing::debug!(client = %self.session.name(), "{summary}");
        match request {
            Request::Frames(on) => {
                self.framed = on;
                let fields = vec![("frames".into(), if on { "on" } else { "off" }.into())];
                return self.out.deliver(Outcome::Ok { fields, body: Vec::new() }, &self.session);
            }
            Request::Cancel => {
                self.out.half.cancel_before(self.requests);
                return self.out.deliver(Outcome::Ok { fields: Vec::new(), body: Vec::new() }, &self.session);
            }
            _ => {}
        }
        // A login of a connection still among the startups needs a session's
        // place: taken for it now, kept only if the login succeeds.
        let place = match (&request, &self.admission) {
            (Request::Login { .. }, Admission::Startup(_)) if self.session.account().is_none() => {
                match self.sessions.try_acquire(self.session.addr.ip()) {
                    Ok(slot) => Some(slot),
                    Err(over) => {
                        let refusal = Refusal::new(Code::Unavailable, over.message(self.session.addr));
                        return self.out.deliver(Outcome::Ended { refusal, reason: "no session place" }, &self.session);
                    }
                }
            }
            _ => None,
        };
        // Shown while the command runs (a first `get` hashes the file).
        self.session.clock.set_activity(Activity::Command(summary));
        let reply = {
            // A `cancel` already sent stops a long command (hashing a big file).
            let reader = &self.reader;
            let wanted = || !reader.cancel_waiting();
            cmd::apply(request, Caller { shared: &self.shared, session: &self.session, wanted: &wanted })
        };
        if let Some(slot) = place.filter(|_| self.session.account().is_some()) {
            self.admission = Admission::Session(slot);
            self.session.set_logging_in(false);
        }
        let next = match reply {
            Outcome::Receive(incoming) if incoming.hash_at_end() && !self.framed => {
                let message = "a put with '-' for its hash needs frames on: the hash comes in END ok blake3=";
                self.out.deliver(Outcome::Refused(Refusal::new(Code::BadRequest, message)), &self.session)
            }
            Outcome::Receive(mut incoming) => {
                self.out.send(Outgoing::reply(&incoming.go_ahead(), b""), &self.session);
                if self.framed {
                    receive_frames(&mut self.reader, &self.out, &self.session, incoming)
                } else {
                    match incoming.receive(self.reader.body()) {
                        Ok(()) => self.out.deliver(incoming.finish(None), &self.session),
                        Err(e) => {
                            incoming.abandon(&e);
                            Next::Close("connection lost during upload")
                        }
                    }
                }
            }
            // From here the download's activity belongs to the writer.
            Outcome::File(file) => {
                let frames = self.framed.then_some(self.requests);
                self.out.send(Outgoing::file(file, frames), &self.session);
                return Next::Continue;
            }
            reply => self.out.deliver(reply, &self.session),
        };
        self.session.clock.set_activity(Activity::Idle);
        next
    }

    fn refuse(&self, refusal: Refusal) {
        self.out.deliver(Outcome::Refused(refusal), &self.session);
    }
}

/// A framed upload: its bytes up to `END`. `END cancelled`, or `END ok`
/// too early, ends the upload (nothing stored) but not the session.
fn receive_frames(
    reader: &mut RequestReader,
    out: &Replies,
    session: &Registration,
    mut incoming: Box<cmd::Incoming<'_>>,
) -> Next {
    let mut frames = FramedUpload::new(reader.body());
    let received = incoming.receive(&mut frames).and_then(|()| frames.finish());
    let size = incoming.size();
    let reply = match (received, frames.ended()) {
        (Ok(Ending::Complete(sent)), _) => incoming.finish(sent),
        (Ok(Ending::Cancelled), _) | (Err(_), Some(Ending::Cancelled)) => {
            incoming.abandon(&"cancelled by the client");
            Outcome::Refused(Refusal::new(
                Code::Cancelled,
                "upload cancelled; nothing was stored (put -c goes on from what arrived)",
            ))
        }
        (Err(_), Some(Ending::Complete(_))) => {
            incoming.abandon(&"END came early");
            let message = format!("the upload ended before its {size} bytes; nothing was stored");
            Outcome::Refused(Refusal::new(Code::BadRequest, message))
        }
        (Err(e), None) => {
            incoming.abandon(&e);
            if e.kind() == io::ErrorKind::InvalidData {
                let refusal = Refusal::new(Code::BadRequest, format!("{e}; closing"));
                out.deliver(Outcome::Refused(refusal), session);
            }
            return Next::Close("connection lost during upload");
        }
    };
    out.deliver(reply, session)
}

/// Where a session's replies go: written at once by the reader when nothing
/// is queued ahead of them, else queued for the writer thread.
pub(crate) struct Replies {
    half: Arc<WriteHalf>,
    queue: Sender<Outgoing>,
}

impl Replies {
    /// Sends a command's reply; says whether the session goes on.
    fn deliver(&self, reply: Outcome<'_>, session: &Registration) -> Next {
        let ok = |header: Header, body: &[u8]| Outgoing::reply(&header, body);
        let (msg, next) = match reply {
            Outcome::Ok { fields, body } => (ok(Header::Ok { len: body.len() as u64, fields }, &body), Next::Continue),
            Outcome::Refused(refusal) => {
                if refusal.code == Code::Internal {
                    tracing::error!(client = %session.name(), "{}", common::text::shorten(&refusal.message, LOGGED_TEXT));
                }
                (ok(refusal.header(), b""), Next::Continue)
            }
            Outcome::File(file) => (Outgoing::file(file, None), Next::Continue),
            // The line protocol's wording of the typed outcomes.
            Outcome::Listing(entries) => {
                let body: String = entries.iter().map(ListEntry::encode).collect();
                (ok(Header::ok(body.len() as u64), body.as_bytes()), Next::Continue)
            }
            Outcome::Status { status, records: true } => {
                let body = status.encode();
                (ok(Header::ok(body.len() as u64), body.as_bytes()), Next::Continue)
            }
            Outcome::Status { status, records: false } => {
                let body = status.render();
                let fields = [("uptime", status.uptime_secs), ("clients", status.clients), ("max", status.max_clients)];
                let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                (ok(Header::Ok { len: body.len() as u64, fields }, body.as_bytes()), Next::Continue)
            }
            Outcome::Close { body, reason } => {
                (ok(Header::ok(body.len() as u64), body.as_bytes()), Next::Close(reason))
            }
            Outcome::Ended { refusal, reason } => (ok(refusal.header(), b""), Next::Close(reason)),
            Outcome::Receive(_) | Outcome::Plain(_) | Outcome::Described { .. } => {
                // Only the session loop reads an upload's bytes (it takes this
                // reply before it gets here); plain reads and descriptions
                // are other doors'.
                let refusal = Refusal::new(Code::Internal, "this reply cannot be sent on the line protocol");
                (ok(refusal.header(), b""), Next::Close("internal error"))
            }
        };
        self.send(msg, session);
        next
    }

    fn send(&self, msg: Outgoing, session: &Registration) {
        if let Outgoing::Message(bytes) = &msg {
            if self.half.write_now(bytes, session) {
                return;
            }
        }
        self.half.note_queued();
        // Fails only when the writer has ended on a broken connection; the
        // next read then fails too and ends the session.
        let _ = self.queue.send(msg);
    }
}
