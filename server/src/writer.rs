//! The write half of a session: a thread per session that writes, whole and
//! in order, the replies its reader queues and the events other parts of the
//! server send it, so a session receives events while it is idle.
//!
//! Two writers share the connection's sending side, under one lock held for
//! a whole message: this thread, and the reader's fast path, which writes a
//! small reply itself when nothing is queued ahead of it (see [`WriteHalf`]).
//! So an event never lands inside a reply. Files go through the transport's
//! `send_file` (`sendfile(2)` on plain TCP); after `frames on`, in `DATA`
//! frames of at most [`SEND_CHUNK`] bytes ended by `END`, so a `cancel`
//! stops a download between two frames and the session goes on.

use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::status::Activity;
use common::{Event, Header};
use crossbeam_channel::{Receiver, Select, TryRecvError};
use parking_lot::Mutex;

use crate::cmd::FileReply;
use crate::presence::{Notice, SessionInfo};
use crate::repo::Download;
use crate::transport::Transport;

/// Bytes sent per `sendfile` call between progress updates; the largest frame.
pub const SEND_CHUNK: u64 = 4 * 1024 * 1024;

/// How long one send of a download waits for the peer before the writer
/// looks at how long nothing has moved.
const STALL_TICK: Duration = Duration::from_secs(1);

/// Stack size of a writer thread.
pub const WRITER_STACK_SIZE: usize = 128 * 1024;

/// Something the reader wants written.
pub enum Outgoing {
    /// A complete reply: header line and body.
    Message(Vec<u8>),
    /// A `get` reply: the header, then the file's bytes.
    File {
        /// The encoded `OK` header.
        header: Vec<u8>,
        /// The opened file.
        download: Download,
        /// Its name, for status and logs.
        name: String,
        /// Framed (`frames on`): the number of the request it answers, so a
        /// later `cancel` can stop it. `None`: the raw bytes.
        frames: Option<u64>,
    },
}

impl Outgoing {
    /// A `get` or `resume` reply; framed with the number of the request it
    /// answers (the header then announces no body of its own: `OK 0 ...
    /// bytes=<len>`, and the frames follow), else raw.
    pub fn file(file: FileReply, frames: Option<u64>) -> Outgoing {
        let FileReply { header, download, name } = file;
        let header = match (header, frames) {
            (Header::Ok { len, mut fields }, Some(_)) => {
                fields.push(("bytes".into(), len.to_string()));
                Header::Ok { len: 0, fields }
            }
            (header, _) => header,
        };
        Outgoing::File { header: header.encode().into_bytes(), download, name, frames }
    }

    /// A reply with a header and a body.
    pub fn reply(header: &Header, body: &[u8]) -> Outgoing {
        let mut bytes = header.encode().into_bytes();
        bytes.extend_from_slice(body);
        Outgoing::Message(bytes)
    }
}

/// The connection's write side, shared by the writer thread and the reader's
/// fast path: a small reply with nothing queued ahead of it is written by the
/// reader at once, saving a hand-off between threads per request. Whoever
/// writes holds the lock for the whole message, so nothing lands inside a
/// reply; `queued` (messages handed to the writer thread and not yet written)
/// keeps replies in order, and the fast path writes the events already
/// waiting before its reply, so a reply never overtakes an earlier event.
pub struct WriteHalf {
    stream: Mutex<Transport>,
    queued: AtomicUsize,
    events: Receiver<Notice>,
    /// A download whose peer takes nothing for this long is dropped.
    stall: Duration,
    /// Downloads go no faster (`--max-rate-per-client`).
    rate: Option<u64>,
    /// Framed downloads answering requests numbered below this are cancelled.
    cancelled_before: AtomicU64,
}

impl WriteHalf {
    /// Wraps the connection; the first message (the greeting) counts as
    /// queued. `stall` is how long a peer may go without taking a
    /// download's bytes (the connection's write timeout).
    pub fn new(transport: Transport, events: Receiver<Notice>, stall: Duration) -> Arc<WriteHalf> {
        WriteHalf::with_rate(transport, events, stall, None)
    }

    /// The same, its downloads going at most `rate` bytes a second.
    pub fn with_rate(
        transport: Transport,
        events: Receiver<Notice>,
        stall: Duration,
        rate: Option<u64>,
    ) -> Arc<WriteHalf> {
        let cancelled_before = AtomicU64::new(0);
        Arc::new(WriteHalf {
            stream: Mutex::new(transport),
            queued: AtomicUsize::new(1),
            events,
            stall,
            rate,
            cancelled_before,
        })
    }

    /// `cancel`, request number `request`: framed downloads asked for before
    /// it stop at their next frame (or before their first).
    pub fn cancel_before(&self, request: u64) {
        self.cancelled_before.fetch_max(request, Ordering::SeqCst);
    }

    /// Writes `bytes` now, after any events waiting, if nothing is queued
    /// ahead of them; `false` means the caller must queue them for the writer
    /// thread instead. A failed write shuts the connection down, which ends the session.
    pub fn write_now(&self, bytes: &[u8], session: &SessionInfo) -> bool {
        // Only the writer thread lowers `queued`: if it is not zero now, the
        // reply must queue whatever happens next, so do not wait for the lock.
        if self.queued.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let mut stream = self.stream.lock();
        if self.queued.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let written = self.write_waiting_events(&mut stream, session).and_then(|()| stream.write_all(bytes));
        if written.is_err() {
            stream.shutdown(Shutdown::Both);
        }
        true
    }

    /// Writes the events waiting in the outbox, then the missed-notices
    /// report if any were dropped. Called with the lock held.
    fn write_waiting_events(&self, stream: &mut Transport, session: &SessionInfo) -> io::Result<()> {
        self.events.try_iter().try_for_each(|event| {
            session.notice_sent(event.text.len());
            stream.write_all(&event.encode())
        })?;
        match session.take_missed() {
            0 => Ok(()),
            n => {
                let notice =
                    Event::notice(format!("{n} notices were dropped because this client was not reading them"));
                stream.write_all(&notice.encode())
            }
        }
    }

    /// A message is being handed to the writer thread.
    pub fn note_queued(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }
}

/// Writes until the reader hangs up its side of `replies`, then writes the
/// events still queued and returns. On a write error it shuts the connection
/// down, which wakes the reader. `first` (the greeting) is written before
/// anything else, events included.
pub fn run(
    half: Arc<WriteHalf>,
    first: Outgoing,
    replies: Receiver<Outgoing>,
    events: Receiver<Notice>,
    session: Arc<SessionInfo>,
) {
    let mut ready = Select::new();
    ready.recv(&replies);
    ready.recv(&events);
    // The greeting goes first, before any event.
    let greeted = write_outgoing(&mut half.stream.lock(), first, &session, &half);
    half.queued.fetch_sub(1, Ordering::SeqCst);
    let result = greeted.and_then(|()| loop {
        // Messages are taken off the channels only while the lock is held, so
        // the reader's fast path can never slip a reply past one taken here.
        let mut stream = half.stream.lock();
        let step = half.write_waiting_events(&mut stream, &session).and_then(|()| {
            let msg = match replies.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty) => return Ok(true),
                Err(TryRecvError::Disconnected) => return Ok(false),
            };
            let written = write_outgoing(&mut stream, msg, &session, &half);
            half.queued.fetch_sub(1, Ordering::SeqCst);
            written.map(|()| true)
        });
        drop(stream);
        match step {
            Ok(true) => {
                ready.ready();
            }
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    });
    if let Err(e) = result {
        tracing::debug!(client = %session.name(), "write failed: {e}");
        half.stream.lock().shutdown(Shutdown::Both);
    }
}

fn write_outgoing(stream: &mut Transport, msg: Outgoing, session: &SessionInfo, half: &WriteHalf) -> io::Result<()> {
    match msg {
        Outgoing::Message(bytes) => stream.write_all(&bytes),
        Outgoing::File { header, mut download, name, frames } => {
            let started = Instant::now();
            let clock = &session.clock;
            let doing = clock.doing(Activity::Get { file: name.clone(), size: download.len, done: 0 });
            let mut push = Push::new(stream, half.stall)?.paced(half.rate);
            let progress = |n| clock.set_transferred(n);
            let result = push.write(&header).and_then(|()| match frames {
                None => push.send_file(&mut download.file, download.len, progress).map(|()| (download.len, false)),
                Some(request) => {
                    let cancelled = || half.cancelled_before.load(Ordering::SeqCst) > request;
                    push.send_frames(&mut download.file, download.len, cancelled, progress)
                }
            });
            drop(push);
            drop(doing);
            let (sent, cancelled) = result?;
            let secs = started.elapsed().as_secs_f64();
            let how = if cancelled { format!("cancelled after {sent} of {}", download.len) } else { sent.to_string() };
            tracing::info!(
                client = %session.name(),
                "sent '{}': {how} bytes in {secs:.3}s ({:.1} MB/s)",
                common::text::escape(&name),
                sent as f64 / secs.max(1e-9) / 1e6
            );
            Ok(())
        }
    }
}

/// Sending to a peer that may take the bytes as slowly as it likes, but once
/// it has taken nothing for `stall` (the idle timeout) the download is
/// dropped: the connection's write timeout is [`STALL_TICK`], so a trickle
/// of partial sends cannot hide that nothing moves. Every door sends its
/// files this way (the line protocol's writer, the web side).
pub(crate) struct Push<'a> {
    stream: &'a mut Transport,
    stall: Duration,
    moved: Instant,
    /// A file's bytes go no faster (`--max-rate-per-client`).
    pace: Option<common::pace::Pace>,
}

impl<'a> Push<'a> {
    /// Sends on `stream` until the peer takes nothing for `stall`; the
    /// connection's write timeout is `stall` again once this is dropped.
    ///
    /// # Errors
    /// When the write timeout cannot be set.
    pub(crate) fn new(stream: &'a mut Transport, stall: Duration) -> io::Result<Push<'a>> {
        stream.set_write_timeout(STALL_TICK)?;
        Ok(Push { stream, stall, moved: Instant::now(), pace: None })
    }

    /// The same, sending files at most `rate` bytes a second (`None`: as fast as the peer takes them).
    pub(crate) fn paced(mut self, rate: Option<u64>) -> Push<'a> {
        self.pace = rate.map(common::pace::Pace::new);
        self
    }
}

impl Drop for Push<'_> {
    fn drop(&mut self) {
        let _ = self.stream.set_write_timeout(self.stall);
    }
}

impl io::Write for Push<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        Push::write(self, bytes).map(|()| bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Push<'_> {
    /// A send that timed out or was interrupted is tried again, until the
    /// peer has taken nothing for `stall`.
    fn retry(&self, e: io::Error) -> io::Result<()> {
        match e.kind() {
            io::ErrorKind::Interrupted => Ok(()),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock if self.moved.elapsed() < self.stall => Ok(()),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                let secs = self.stall.as_secs();
                Err(io::Error::new(io::ErrorKind::TimedOut, format!("the peer took nothing for {secs}s")))
            }
            _ => Err(e),
        }
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    bytes = &bytes[n..];
                    self.moved = Instant::now();
                }
                Err(e) => self.retry(e)?,
            }
        }
        Ok(())
    }

    /// Sends the next `len` bytes of `file`; `progress` hears of the bytes
    /// sent so far after each step.
    pub(crate) fn send_file(&mut self, file: &mut std::fs::File, len: u64, progress: impl Fn(u64)) -> io::Result<()> {
        let mut sent = 0;
        while sent < len {
            let step = self.pace.as_ref().map_or(SEND_CHUNK, |p| p.chunk().min(SEND_CHUNK));
            match self.stream.send_file(file, step.min(len - sent)) {
                // The file shrank after its length was announced: the reply
                // cannot be completed, so the connection must end.
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")),
                Ok(n) => {
                    sent += n;
                    if let Some(pace) = &mut self.pace {
                        pace.took(n);
                    }
                    self.moved = Instant::now();
                    progress(sent);
                }
                Err(e) => self.retry(e)?,
            }
        }
        Ok(())
    }

    /// Sends `len` bytes of `file` as `DATA` frames, then `END`; stops
    /// between two frames once `cancelled` says so. The bytes sent, and
    /// whether it was cancelled.
    fn send_frames(
        &mut self,
        file: &mut std::fs::File,
        len: u64,
        cancelled: impl Fn() -> bool,
        progress: impl Fn(u64),
    ) -> io::Result<(u64, bool)> {
        let mut sent = 0;
        while sent < len && !cancelled() {
            let frame = SEND_CHUNK.min(len - sent);
            self.write(Header::Data { len: frame }.encode().as_bytes())?;
            self.send_file(file, frame, |n| progress(sent + n))?;
            sent += frame;
        }
        let stopped = sent < len;
        self.write(Header::End { cancelled: stopped, digest: None }.encode().as_bytes())?;
        Ok((sent, stopped))
    }
}
