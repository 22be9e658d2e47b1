//! One client's session: admitted, greeted, then a loop of request lines
//! until `exit`, end of input, an idle timeout or shutdown.
//!
//! The [`Handler`] runs on a pool thread and owns the read half of the
//! socket; it queues replies for the session's writer thread (see
//! [`crate::writer`]). Leaving the session, by any path, gives back the
//! registry entry and the slot before the socket closes, so a client that
//! has seen the connection close can count on its slot being free.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::text::escape;
use common::{Code, Digest, Header, RemotePath, Request, PROTOCOL_VERSION};
use crossbeam_channel::{bounded, unbounded, Sender};

use crate::connection::{Line, RequestReader};
use crate::registry::{Activity, Registration};
use crate::repo::{self, RepoError};
use crate::server::Context;
use crate::slots::Slot;
use crate::writer::{self, Outgoing, WriteHalf};

/// Replies the reader may queue ahead of the writer (pipelined requests).
const REPLY_QUEUE: usize = 8;

/// The `help` reply.
pub const HELP: &str = "\
status                      uptime, connected clients and what each is doing
list [dir]                  files and folders with size and modification time
get <name>                  download a file; the reply carries its BLAKE3 hash
resume <offset> <name>      the rest of a file from byte <offset>, with the whole file's hash
put <size> <blake3> <name>  upload (file-client: put <local> [remote]); needs --allow-uploads
name <nick>                 choose the name others see (letters, digits, - _ .; up to 32)
say <text>                  send a line to every other connected client
help                        this list
exit                        say goodbye and close the connection
anything else               echoed back with \" ACK\"
";

/// Runs a session to its end on the current thread.
pub fn serve(stream: TcpStream, addr: SocketAddr, slot: Slot, ctx: Arc<Context>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(ctx.config.idle_timeout));
    let clones = (stream.try_clone(), stream.try_clone());
    let (Ok(for_registry), Ok(for_writer)) = clones else {
        tracing::error!(%addr, "cannot duplicate the socket; dropping the connection");
        return;
    };
    // Unbounded, so an idle session costs no queue memory up front (a bounded
    // channel allocates all its slots); `notify` enforces the bound.
    let (events_tx, events_rx) = unbounded();
    let session = ctx.registry.register(addr, for_registry, events_tx);
    tracing::info!(client = %session.name(), %addr, "connected ({}/{})", ctx.registry.len(), ctx.config.max_clients);

    // A session admitted just as shutdown began is told so and ends at once.
    let stopping = ctx.stopping.load(Ordering::SeqCst);
    let first = if stopping {
        Outgoing::reply(&Header::err(Code::Unavailable, "server is shutting down"), b"")
    } else {
        greeting(&session.name())
    };
    let (replies, replies_rx) = bounded(REPLY_QUEUE);
    let info = session.info();
    let half = WriteHalf::new(for_writer, events_rx.clone());
    let writer = thread::Builder::new()
        .name(format!("writer-{}", session.name()))
        .stack_size(writer::WRITER_STACK_SIZE)
        .spawn({
            let half = Arc::clone(&half);
            move || writer::run(half, first, replies_rx, events_rx, info)
        });
    let Ok(writer) = writer else {
        tracing::error!(client = %session.name(), "cannot start a writer thread; dropping the connection");
        return;
    };

    let mut handler =
        Handler { reader: RequestReader::new(stream), replies, half, ctx, session, timeout_shortened: false };
    let reason = if stopping { "server shutting down".to_string() } else { handler.run() };
    let Handler { reader, replies, session, .. } = handler;
    drop(replies);
    if writer.join().is_err() {
        tracing::error!(client = %session.name(), "writer thread panicked");
    }
    tracing::info!(client = %session.name(), "disconnected: {reason}");
    drop(session);
    drop(slot);
    let _ = reader.stream().shutdown(Shutdown::Both);
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
struct Handler {
    reader: RequestReader,
    replies: Sender<Outgoing>,
    half: Arc<WriteHalf>,
    ctx: Arc<Context>,
    session: Registration,
    /// The read timeout is below the idle timeout and must be restored.
    timeout_shortened: bool,
}

/// Whether the session goes on after a request.
enum Next {
    Continue,
    Close(&'static str),
}

impl Handler {
    fn run(&mut self) -> String {
        if let Err(e) = self.reader.stream().set_read_timeout(Some(self.ctx.config.idle_timeout)) {
            return format!("cannot set a read timeout: {e}");
        }
        loop {
            let line = match self.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return "idle timeout".into(),
                Err(e) => return format!("read failed: {e}"),
            };
            let text = match line {
                Line::Eof => return "end of input".into(),
                Line::TooLong => {
                    self.send_err(
                        Code::BadRequest,
                        format!("request line longer than {} bytes; closing", common::MAX_LINE_LEN),
                    );
                    return "request line too long".into();
                }
                Line::NotUtf8 => {
                    self.send_err(Code::BadRequest, "request is not valid UTF-8");
                    continue;
                }
                Line::Text(text) => text,
            };
            self.session.touch();
            if !self.session.begin_command(&self.ctx.stopping) {
                self.send_err(Code::Unavailable, "server is shutting down");
                return "server shutting down".into();
            }
            let next = self.execute(&text);
            let told_to_stop = self.session.end_command();
            if let Next::Close(reason) = next {
                return reason.into();
            }
            if told_to_stop {
                return "server shutting down".into();
            }
        }
    }

    /// The next line, or `None` once the client has been silent (and no
    /// transfer has moved) for the idle timeout.
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        let idle_timeout = self.ctx.config.idle_timeout;
        loop {
            match self.reader.read_line() {
                Ok(line) => {
                    if self.timeout_shortened {
                        self.reader.stream().set_read_timeout(Some(idle_timeout))?;
                        self.timeout_shortened = false;
                    }
                    return Ok(Some(line));
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    let remaining = idle_timeout.saturating_sub(self.session.idle_for());
                    if remaining.is_zero() {
                        self.session.notify(format!("idle for {}s; disconnecting", idle_timeout.as_secs()));
                        return Ok(None);
                    }
                    // A transfer kept the session alive: wait only for the rest.
                    self.reader.stream().set_read_timeout(Some(remaining.max(Duration::from_millis(10))))?;
                    self.timeout_shortened = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn execute(&mut self, line: &str) -> Next {
        let request = match Request::parse(line) {
            Ok(request) => request,
            Err(e) => {
                self.send_err(Code::BadRequest, e.to_string());
                return Next::Continue;
            }
        };
        tracing::info!(client = %self.session.name(), "{}", request.summary());
        // A download's activity belongs to the writer, which sends it later.
        let tracked = !matches!(request, Request::Get(_) | Request::Resume { .. });
        if tracked {
            self.session.set_activity(Activity::Command(request.summary()));
        }
        let next = match request {
            Request::Put { size, digest, name } => self.put(size, &digest, &name),
            Request::Exit => {
                self.send_text("bye\n");
                Next::Close("exit")
            }
            Request::Status => {
                let text = self.ctx.registry.status(self.session.id);
                let (uptime, clients, max) = self.ctx.registry.counts();
                let fields = [("uptime", uptime.as_secs()), ("clients", clients as u64), ("max", max as u64)];
                let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                self.send(Outgoing::reply(&Header::Ok { len: text.len() as u64, fields }, text.as_bytes()));
                Next::Continue
            }
            Request::List(dir) => {
                self.list(&dir);
                Next::Continue
            }
            Request::Get(name) => {
                self.get(&name, 0);
                Next::Continue
            }
            Request::Resume { offset, name } => {
                self.get(&name, offset);
                Next::Continue
            }
            Request::Help => {
                self.send_text(HELP);
                Next::Continue
            }
            Request::Name(nick) => {
                self.rename(&nick);
                Next::Continue
            }
            Request::Say(text) => {
                let line = format!("[{}] {}", self.session.name(), escape(&text));
                let recipients = self.ctx.registry.broadcast_from(self.session.id, &line);
                let header = Header::Ok { len: 0, fields: vec![("recipients".into(), recipients.to_string())] };
                self.send(Outgoing::reply(&header, b""));
                Next::Continue
            }
            Request::Echo(text) => {
                self.send_text(&format!("{text} ACK\n"));
                Next::Continue
            }
        };
        if tracked {
            self.session.set_activity(Activity::Idle);
        }
        next
    }

    fn rename(&mut self, nick: &str) {
        if let Err(e) = common::validate_nick(nick) {
            return self.send_err(Code::BadRequest, format!("{e}: '{}'", escape(nick)));
        }
        match self.ctx.registry.rename(self.session.id, nick) {
            Ok(old) => {
                tracing::info!(client = %old, "is now {nick}");
                self.send_text(&format!("you are now {nick}\n"));
            }
            Err(e) => self.send_err(Code::Exists, e.to_string()),
        }
    }

    fn list(&mut self, dir: &str) {
        let listing = RemotePath::parse(dir)
            .map_err(|e| (e.code(), format!("{e}: '{}'", escape(dir))))
            .and_then(|path| self.ctx.repo.list(&path).map_err(|e| (e.code(), e.to_string())));
        match listing {
            Ok(entries) => {
                let body: String = entries.iter().map(|e| e.encode()).collect();
                self.send_text(&body);
            }
            Err((code, message)) => self.send_err(code, message),
        }
    }

    /// `get` (offset 0) and `resume`: the bytes from `offset` on; the hash is
    /// always the whole file's, so a resumed download can be checked.
    fn get(&mut self, name: &str, offset: u64) {
        let path = match RemotePath::parse_file(name) {
            Ok(path) => path,
            Err(e) => return self.send_err(e.code(), format!("{e}: '{}'", escape(name))),
        };
        let mut download = match self.ctx.repo.open_download(&path) {
            Ok(download) => download,
            Err(e) => return self.send_repo_err(&e),
        };
        if offset > download.len {
            let message = format!("'{path}' has only {} bytes; cannot resume from {offset}", download.len);
            return self.send_err(Code::BadRequest, message);
        }
        let mut fields = vec![("blake3".into(), download.digest.to_string())];
        if offset > 0 {
            if let Err(e) = std::io::Seek::seek(&mut download.file, std::io::SeekFrom::Start(offset)) {
                return self.send_repo_err(&RepoError::Io { context: format!("cannot read '{path}'"), source: e });
            }
            fields.push(("offset".into(), offset.to_string()));
            fields.push(("size".into(), download.len.to_string()));
            download.len -= offset;
        }
        let header = Header::Ok { len: download.len, fields };
        self.send(Outgoing::File { header: header.encode().into_bytes(), download, name: path.to_string() });
    }

    fn put(&mut self, size: u64, digest: &Digest, name: &str) -> Next {
        let config = &self.ctx.config;
        if !config.allow_uploads {
            self.send_err(
                Code::Forbidden,
                "uploads are disabled on this server (it was started without --allow-uploads)",
            );
            return Next::Continue;
        }
        let path = match RemotePath::parse_file(name) {
            Ok(path) => path,
            Err(e) => {
                self.send_err(e.code(), format!("{e}: '{}'", escape(name)));
                return Next::Continue;
            }
        };
        if size > config.max_upload_size {
            self.send_err(
                Code::TooLarge,
                format!(
                    "'{path}' is {size} bytes; this server accepts uploads of at most {} bytes",
                    config.max_upload_size
                ),
            );
            return Next::Continue;
        }
        let ctx = Arc::clone(&self.ctx);
        let mut upload = match ctx.repo.begin_upload(&path) {
            Ok(upload) => upload,
            Err(e) => {
                self.send_repo_err(&e);
                return Next::Continue;
            }
        };
        self.send(Outgoing::reply(&Header::ok(0), b""));
        self.session.set_activity(Activity::Receiving(path.to_string(), size));
        let started = Instant::now();
        let session = &self.session;
        if let Err(e) = repo::receive(self.reader.body(), &mut upload, size, |n| session.set_transferred(n)) {
            tracing::warn!(client = %self.session.name(), "upload of '{path}' abandoned after {} of {size} bytes: {e}", upload.written());
            return Next::Close("connection lost during upload");
        }
        match upload.commit(digest) {
            Ok(n) => {
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(client = %self.session.name(), "stored '{path}': {n} bytes in {secs:.3}s");
                self.send_text(&format!("stored '{path}' ({n} bytes)\n"));
            }
            Err(e) => self.send_repo_err(&e),
        }
        Next::Continue
    }

    fn send(&self, msg: Outgoing) {
        if let Outgoing::Message(bytes) = &msg {
            if self.half.write_now(bytes, &self.session) {
                return;
            }
        }
        self.half.note_queued();
        // Fails only when the writer has ended on a broken connection; the
        // next read then fails too and ends the session.
        let _ = self.replies.send(msg);
    }

    fn send_text(&self, text: &str) {
        self.send(Outgoing::reply(&Header::ok(text.len() as u64), text.as_bytes()));
    }

    fn send_err(&self, code: Code, message: impl AsRef<str>) {
        self.send(Outgoing::reply(&Header::err(code, message), b""));
    }

    fn send_repo_err(&self, err: &RepoError) {
        if let RepoError::Io { .. } = err {
            tracing::error!(client = %self.session.name(), "{err}");
        }
        self.send_err(err.code(), err.to_string());
    }
}
