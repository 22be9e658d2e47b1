//! Opening a connection: dialling ([`crate::transport::connect`]), the
//! server's greeting (with a probe for peers that speak another protocol),
//! `frames on`, and the login; what a reconnect needs again is a [`Dial`].

use std::cell::RefCell;
use std::io::BufReader;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::text::escape;
use common::{Code, Header, Request};
use crossbeam_channel::{bounded, unbounded};

use super::reader::{read_messages, EventSink, Flags};
use super::{Connection, PROBE_AFTER};
use crate::error::ClientError;
use crate::progress::{ProgressMode, Waiting};
use crate::trust::Trust;

/// What the server said on connect.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The name the server gave this client (`Client02`).
    pub name: String,
    /// The protocol version it speaks.
    pub protocol: String,
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

/// The longest the client waits, on its own, to try a login again.
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(5);

/// The wait a `429` names (`...; try again in 3s`).
fn retry_after(message: &str) -> Option<Duration> {
    let secs = message.rsplit_once("try again in ")?.1.strip_suffix('s')?;
    secs.parse::<u64>().ok().map(Duration::from_secs)
}

/// Asks for the password of `user` at `host` (the CLI asks on the terminal);
/// called once, the first time it is needed.
pub type AskPassword = Arc<dyn Fn(&str, &str) -> Result<String, ClientError> + Send + Sync>;

/// An account's name and password, for `login`. The password is asked for
/// (through the [`AskPassword`] the CLI gives) the first time it is needed,
/// after the server's identity is settled, as ssh does, and kept for
/// reconnects.
#[derive(Clone)]
pub struct Login {
    /// The account.
    pub user: String,
    /// The server, as typed, for the question.
    pub host: String,
    password: Arc<Mutex<Option<String>>>,
    ask: AskPassword,
    /// Tries a refused password may have (asking again in between), as ssh
    /// gives three on a terminal; one where nobody can be asked.
    tries: u32,
}

impl Login {
    /// An account to log in to, its password asked for by `ask` when needed.
    pub fn new(user: &str, host: &str, ask: AskPassword) -> Login {
        let password = Arc::new(Mutex::new(None));
        Login { user: user.to_string(), host: host.to_string(), password, ask, tries: 1 }
    }

    /// The same, with `tries` passwords asked for when one is refused.
    pub fn with_tries(mut self, tries: u32) -> Login {
        self.tries = tries.max(1);
        self
    }

    /// Forgets a refused password, so the next try asks again.
    fn forget(&self) {
        *self.password.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The password, asked for now if it is not known yet.
    ///
    /// # Errors
    /// What asking fails with (no terminal to ask on, say).
    fn password(&self) -> Result<String, ClientError> {
        let mut known = self.password.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(password) = known.as_ref() {
            return Ok(password.clone());
        }
        let password = (self.ask)(&self.user, &self.host)?;
        *known = Some(password.clone());
        Ok(password)
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login {{ user: {:?}, password: <hidden> }}", self.user)
    }
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
        let (mut tries, mut waits) = (login.tries, 0);
        loop {
            let password = login.password()?;
            self.send(&Request::Login { user: login.user.clone(), password })?;
            match self.read_reply_header() {
                Ok(header) => {
                    let user = header.field("user").map(str::to_string);
                    if let Header::Ok { len, .. } = header {
                        self.read_text_body(len)?;
                    }
                    return Ok(user);
                }
                // A wrong password, with tries left: asked again, as ssh does.
                Err(ClientError::Remote { code: Code::Unauthorized, .. }) if tries > 1 && !self.has_ended() => {
                    tries -= 1;
                    login.forget();
                    eprintln!("Permission denied, please try again.");
                }
                // The server's slowdown after a failure: the same password
                // again once it says it may be tried (a person types slower).
                Err(ClientError::Remote { code: Code::TooMany, message }) if !self.has_ended() => {
                    waits += 1;
                    let Some(wait) = retry_after(&message).filter(|w| *w <= MAX_LOGIN_WAIT && waits <= 3) else {
                        return Err(ClientError::Identity(format!("login as {} refused: {message}", login.user)));
                    };
                    std::thread::sleep(wait);
                }
                // Every place is taken: not admitted (as a full server at the door).
                Err(ClientError::Remote { code: Code::Unavailable, message }) => {
                    return Err(ClientError::NotAdmitted(message))
                }
                Err(ClientError::Remote { message, .. }) => {
                    return Err(ClientError::Identity(format!("login as {} refused: {message}", login.user)))
                }
                Err(e) => return Err(e),
            }
        }
    }
}
