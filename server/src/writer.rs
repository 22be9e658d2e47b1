//! The write half of a session: one thread per session that owns the socket's
//! sending side and writes, whole and in order, the replies its reader queues
//! and the events other parts of the server send it.
//!
//! Because only this thread writes, an event can never land inside a reply,
//! and a session receives events while it is idle. Files are sent with
//! `sendfile(2)`: the bytes go from the page cache to the socket without
//! passing through this process.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::Header;
use crossbeam_channel::{Receiver, Select, TryRecvError};
use parking_lot::Mutex;

use crate::registry::{Activity, SessionInfo};
use crate::repo::Download;

/// Bytes sent per `sendfile` call between progress updates.
const SEND_CHUNK: u64 = 4 * 1024 * 1024;

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
    },
}

impl Outgoing {
    /// A reply with a header and a body.
    pub fn reply(header: &Header, body: &[u8]) -> Outgoing {
        let mut bytes = header.encode().into_bytes();
        bytes.extend_from_slice(body);
        Outgoing::Message(bytes)
    }
}

/// The socket's write side, shared by the writer thread and the reader's
/// fast path: a small reply with nothing queued ahead of it is written by the
/// reader at once, saving a hand-off between threads per request. Whoever
/// writes holds the lock for the whole message, so nothing lands inside a
/// reply; `queued` (messages handed to the writer thread and not yet written)
/// keeps replies in order, and the fast path writes the events already
/// waiting before its reply, so a reply never overtakes an earlier event.
pub struct WriteHalf {
    stream: Mutex<TcpStream>,
    queued: AtomicUsize,
    events: Receiver<String>,
}

impl WriteHalf {
    /// Wraps the socket; the first message (the greeting) counts as queued.
    pub fn new(stream: TcpStream, events: Receiver<String>) -> Arc<WriteHalf> {
        Arc::new(WriteHalf { stream: Mutex::new(stream), queued: AtomicUsize::new(1), events })
    }

    /// Writes `bytes` now, after any events waiting, if nothing is queued
    /// ahead of them; `false` means the caller must queue them for the writer
    /// thread instead. A failed write shuts the socket down, which ends the session.
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
            let _ = stream.shutdown(Shutdown::Both);
        }
        true
    }

    /// Writes the events waiting in the outbox, then the missed-notices
    /// report if any were dropped. Called with the lock held.
    fn write_waiting_events(&self, stream: &mut TcpStream, session: &SessionInfo) -> io::Result<()> {
        self.events.try_iter().try_for_each(|text| write_event(stream, &text))?;
        match session.take_missed() {
            0 => Ok(()),
            n => write_event(stream, &format!("{n} notices were dropped because this client was not reading them\n")),
        }
    }

    /// A message is being handed to the writer thread.
    pub fn note_queued(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }
}

/// Writes until the reader hangs up its side of `replies`, then writes the
/// events still queued and returns. On a write error it shuts the socket
/// down, which wakes the reader. `first` (the greeting) is written before
/// anything else, events included.
pub fn run(
    half: Arc<WriteHalf>,
    first: Outgoing,
    replies: Receiver<Outgoing>,
    events: Receiver<String>,
    session: Arc<SessionInfo>,
) {
    let mut ready = Select::new();
    ready.recv(&replies);
    ready.recv(&events);
    // The greeting goes first, before any event.
    let greeted = write_outgoing(&mut half.stream.lock(), first, &session);
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
            let written = write_outgoing(&mut stream, msg, &session);
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
        let _ = half.stream.lock().shutdown(Shutdown::Both);
    }
}

fn write_event(stream: &mut TcpStream, text: &str) -> io::Result<()> {
    let mut bytes = Header::Event { len: text.len() as u64 }.encode().into_bytes();
    bytes.extend_from_slice(text.as_bytes());
    stream.write_all(&bytes)
}

fn write_outgoing(stream: &mut TcpStream, msg: Outgoing, session: &SessionInfo) -> io::Result<()> {
    match msg {
        Outgoing::Message(bytes) => stream.write_all(&bytes),
        Outgoing::File { header, download, name } => {
            let started = Instant::now();
            session.set_activity(Activity::Sending(name.clone(), download.len));
            let result =
                stream.write_all(&header).and_then(|()| send_file(stream, download.file, download.len, session));
            session.set_activity(Activity::Idle);
            let sent = result?;
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                client = %session.name(),
                "sent '{}': {sent} bytes in {secs:.3}s ({:.1} MB/s)",
                common::text::escape(&name),
                sent as f64 / secs.max(1e-9) / 1e6
            );
            Ok(())
        }
    }
}

fn send_file(stream: &mut TcpStream, mut file: std::fs::File, len: u64, session: &SessionInfo) -> io::Result<u64> {
    let mut sent = 0;
    while sent < len {
        let n = common::sendfile::send_file(stream, &mut file, SEND_CHUNK.min(len - sent))?;
        if n == 0 {
            // The file shrank after its length was announced: the reply cannot
            // be completed, so the connection must end.
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent"));
        }
        sent += n;
        session.set_transferred(sent);
    }
    Ok(sent)
}
