//! Downloads: `get` (to a file, verified, resumable) and `cat` (to standard
//! output), with remote globs expanded from a listing.
//!
//! A download is written to its part file ([`crate::part`]), hashed as it
//! arrives, and moved to its name only when its BLAKE3 matches the reply's.
//! The bytes come in frames (`frames on`), so Ctrl+C stops a
//! download at a frame's end and the session goes on.
//! The local name comes from what the user asked for (or a glob match checked
//! the same way), never from anything else the server says.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::text::escape;
use common::{Code, Digest, Header, Request};

use crate::background::BackgroundWriter;
use crate::connection::{BodyError, BodySink, Transfer};
use crate::error::ClientError;
use crate::link::Transfers;
use crate::part::PartFile;
use crate::progress::{Progress, ProgressMode, Waiting};
use crate::render::{self, unexpected};

/// After a `cancel`, how long the server may send nothing before the client
/// gives up on the connection and opens a new one.
const CANCEL_WAIT: Duration = Duration::from_secs(3);

/// Ctrl+C during a download. The first asks the server to stop (`cancel`):
/// it ends the download at the end of a frame and the session goes on. A
/// second one, or the server staying silent for [`CANCEL_WAIT`] after the
/// first, gives up on the connection instead.
pub(crate) struct Stop {
    interrupted: Arc<AtomicBool>,
    /// When `cancel` was sent.
    asked: Cell<Option<Instant>>,
    /// When the server last sent something.
    heard: Cell<Instant>,
    /// The connection was replaced.
    gave_up: Cell<bool>,
}

impl Stop {
    pub(crate) fn new(interrupted: Arc<AtomicBool>) -> Stop {
        Stop { interrupted, asked: Cell::new(None), heard: Cell::new(Instant::now()), gave_up: Cell::new(false) }
    }

    /// Whether waiting for the server must end now: Ctrl+C was pressed,
    /// or the server has been silent too long since `cancel`.
    fn now(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
            || self.asked.get().is_some() && self.heard.get().elapsed() >= CANCEL_WAIT
    }

    /// Ctrl+C was pressed (and not yet acted on).
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn heard(&self) {
        self.heard.set(Instant::now());
    }
}

/// What came of a framed download.
struct Received {
    /// Bytes of the file received (and given to the sink).
    bytes: u64,
    /// `END ok`: every byte came.
    complete: bool,
    /// The sink failed; the bytes after that were read and dropped.
    write_error: Option<io::Error>,
}

/// A download asked for and not yet read: see [`Transfers::start_download`].
pub(crate) struct Pending {
    part: PartFile,
    writer: BackgroundWriter,
    /// Bytes already in the part file (resuming).
    offset: u64,
    /// The remote name.
    name: String,
    started: Instant,
}

/// Where `get REMOTE LOCAL` puts the file: a folder, and a name of its own
/// when LOCAL is not a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    /// The folder.
    pub dir: std::path::PathBuf,
    /// The file's name there; `None`: the remote name.
    pub base: Option<String>,
}

/// What hears of a download's progress: one bar per file, or one for a tree.
pub(crate) trait Watch {
    /// The bytes begin: `len` after the `offset` already there.
    fn begin(&mut self, name: &str, offset: u64, len: u64);
    /// A step of the transfer (bytes done since `begin`, or a wait).
    fn step(&mut self, offset: u64, step: Transfer);
    /// The transfer ended, whole or not.
    fn end(&mut self, whole: bool);
}

/// One progress bar for one file.
struct OneBar {
    mode: ProgressMode,
    bar: Option<Progress>,
}

impl Watch for OneBar {
    fn begin(&mut self, name: &str, offset: u64, len: u64) {
        self.bar = Some(Progress::new(self.mode, "get", name, offset + len, offset));
    }

    fn step(&mut self, offset: u64, step: Transfer) {
        match (&mut self.bar, step) {
            (Some(bar), Transfer::Moved(n)) => bar.set(offset + n),
            (Some(bar), Transfer::Waiting) => bar.tick(),
            (None, _) => {}
        }
    }

    fn end(&mut self, whole: bool) {
        match self.bar.take() {
            Some(bar) if whole => bar.finish(),
            Some(bar) => bar.abandon(),
            None => {}
        }
    }
}

/// A finished download, for its report line.
pub(crate) struct Got {
    /// The remote name.
    name: String,
    /// The local file name.
    base: String,
    /// Where it was written.
    path: String,
    pub(crate) bytes: u64,
    /// Bytes that were already there (`get -c`), or 0.
    resumed_at: u64,
    rate: String,
}

impl Got {
    /// `got 'a.txt' (6 bytes, 1.2 MiB/s, BLAKE3 verified) -> ./a.txt`, or
    /// one JSON object with `--json`.
    pub(crate) fn report(&self, json: bool) -> String {
        if json {
            return render::json_line(&serde_json::json!({
                "type": "get", "name": self.name, "path": self.path, "bytes": self.bytes,
                "resumed_at": self.resumed_at, "verified": true,
            }));
        }
        let resumed = if self.resumed_at > 0 { format!(", resumed at {}", self.resumed_at) } else { String::new() };
        let (base, path) = (escape(&self.base), escape(&self.path));
        let size = common::text::byte_count(self.bytes);
        format!("got '{base}' ({size}{resumed}, {}, BLAKE3 verified) -> {path}\n", self.rate)
    }
}

/// A `get` or `resume` reply's header, read.
struct Offer {
    /// Bytes to come.
    len: u64,
    /// BLAKE3 of the whole file.
    digest: Digest,
    /// When the file was last modified on the server, if it says.
    modified: Option<SystemTime>,
}

impl Transfers<'_> {
    /// `get`: downloads `name` into the download folder; the report line.
    /// `local`: where it goes instead, a folder and (for a file name given) a name.
    pub(crate) fn get(
        &mut self,
        name: &str,
        local: Option<&LocalTarget>,
        force: bool,
        resume: bool,
    ) -> Result<String, ClientError> {
        let stop = Stop::new(self.link.interrupt_flag());
        let pending = match local {
            None => {
                let dir = self.settings.download_dir.clone();
                self.start_download(&dir, name, force, resume)?
            }
            Some(LocalTarget { dir, base }) => {
                let part = match base {
                    Some(base) => PartFile::named(dir, base, name, force)?,
                    None => PartFile::new(dir, name, force)?,
                };
                self.start_part(part, name, resume)?
            }
        };
        let mut watch = OneBar { mode: self.settings.progress, bar: None };
        let got = self.finish_download(pending, &stop, &mut watch);
        let got = self.end_stop(&stop, got)?;
        Ok(got.report(self.settings.json))
    }

    /// Opens the part file for remote `name` in local folder `dir` and
    /// asks for the bytes (`resume` from a part file there, if any); the
    /// reply is read by [`Transfers::finish_download`], so several can be in
    /// flight.
    pub(crate) fn start_download(
        &mut self,
        dir: &Path,
        name: &str,
        force: bool,
        resume: bool,
    ) -> Result<Pending, ClientError> {
        self.start_part(PartFile::new(dir, name, force)?, name, resume)
    }

    /// Asks for remote `name`'s bytes into `part` (from what it holds, with `resume`).
    fn start_part(&mut self, part: PartFile, name: &str, resume: bool) -> Result<Pending, ClientError> {
        let (file, offset, hasher) = part.start(resume)?;
        let writer = BackgroundWriter::new(file, hasher).map_err(|e| part.error("cannot write", e))?;
        let request = if offset > 0 {
            Request::Resume { offset, name: name.to_string() }
        } else {
            Request::Get(name.to_string())
        };
        if let Err(e) = self.link.conn().send(&request) {
            drop(writer);
            part.discard_if_empty();
            return Err(e);
        }
        Ok(Pending { part, writer, offset, name: name.to_string(), started: Instant::now() })
    }

    /// Reads the reply to a download [`Transfers::start_download`] asked
    /// for into its part file, and moves the file into place once its hash
    /// matches. `watch` hears of its progress.
    pub(crate) fn finish_download(
        &mut self,
        pending: Pending,
        stop: &Stop,
        watch: &mut dyn Watch,
    ) -> Result<Got, ClientError> {
        let Pending { part, mut writer, offset, name, started } = pending;
        let outcome = self.read_offer(&name, stop).and_then(|offer| match offer {
            None => Ok(None),
            Some(offer) => {
                if let Some(short) = part.lacks_space_for(offer.len) {
                    // Asked to stop, the server sends no more than a frame.
                    self.ask_to_stop(stop)?;
                    self.receive_frames(&mut io::sink(), stop, &mut |_| {})?;
                    return Err(short);
                }
                watch.begin(&part.base, offset, offer.len);
                let received = self.receive_frames(&mut writer, stop, &mut |step| watch.step(offset, step));
                watch.end(received.as_ref().is_ok_and(|r| r.complete && r.write_error.is_none()));
                received.map(|r| Some((offer, r)))
            }
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                // What arrived is on disk, for `get -c`; an empty start is not kept.
                let _ = writer.finish();
                part.discard_if_empty();
                return Err(match e {
                    ClientError::Connection(m) if part.path.exists() => {
                        ClientError::Connection(format!("{m}; {}", part.kept_hint()))
                    }
                    e => e,
                });
            }
        };
        let kept = part.kept_hint();
        let Some((offer, received)) = outcome else {
            let _ = writer.finish();
            part.discard_if_empty();
            let kept = if offset > 0 { format!("; {kept}") } else { String::new() };
            return Err(ClientError::Cancelled(format!(": before the server answered{kept}")));
        };
        if let Some(e) = received.write_error {
            let _ = writer.finish();
            return Err(part.error_kept("cannot write", &e));
        }
        let (file, hasher) = writer.finish().map_err(|e| part.error_kept("cannot write", &e))?;
        if !received.complete {
            return Err(ClientError::Cancelled(format!(": {kept}")));
        }
        // The copy keeps the server's modification time, as sftp -p and rsync -t do.
        if let Some(modified) = offer.modified {
            let _ = file.set_modified(modified);
        }
        part.keep(file, Digest::from(hasher.finalize()), offer.digest, offset > 0)?;
        Ok(Got {
            name,
            base: part.base.clone(),
            path: part.target.to_string_lossy().into_owned(),
            bytes: offset + offer.len,
            resumed_at: offset,
            rate: render::rate(offer.len, started),
        })
    }

    /// Sends `get` or `resume` and reads the reply's header: what is coming.
    /// `None` when Ctrl+C stopped it before the bytes began. A reply without
    /// a valid hash ends the session, since nothing could be verified.
    fn request_download(&mut self, request: &Request, stop: &Stop) -> Result<Option<Offer>, ClientError> {
        self.link.conn().send(request)?;
        let name = match request {
            Request::Get(name) | Request::Resume { name, .. } => name.as_str(),
            _ => "",
        };
        self.read_offer(name, stop)
    }

    /// Reads the header of the reply to a download of `name`; see
    /// [`Transfers::request_download`].
    fn read_offer(&mut self, name: &str, stop: &Stop) -> Result<Option<Offer>, ClientError> {
        let name = escape(name);
        // A big file is hashed the first time it is asked for: say so.
        let what = format!("waiting for the server to prepare '{name}' (a big file is hashed the first time)");
        let waiting = RefCell::new(Waiting::new(self.settings.progress, what));
        let header = loop {
            let until_stopped = || {
                waiting.borrow_mut().tick();
                stop.now()
            };
            match self.link.conn().read_reply_header_unless(&until_stopped) {
                Ok(Some(header)) => break header,
                Ok(None) => {
                    if !self.ask_to_stop(stop)? {
                        return Ok(None);
                    }
                }
                // Hashing a big file stops once the server sees the cancel.
                Err(ClientError::Remote { code: Code::Cancelled, .. }) if stop.asked.get().is_some() => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        };
        drop(waiting);
        stop.heard();
        let Header::Ok { .. } = header else { return Err(unexpected(&header)) };
        let digest = header.field("blake3").and_then(|d| d.parse::<Digest>().ok());
        let len = header.field("bytes").and_then(|n| n.parse::<u64>().ok());
        match (digest, len) {
            (Some(digest), Some(len)) => {
                let modified = header
                    .field("modified")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(SystemTime::from);
                Ok(Some(Offer { len, digest, modified }))
            }
            _ => {
                self.link.conn().close();
                Err(ClientError::Connection("the server's get reply has no valid blake3 or bytes field".into()))
            }
        }
    }

    /// Reads a download's `DATA` frames into `sink` up to `END`. Ctrl+C asks
    /// the server to stop; see [`Stop`].
    fn receive_frames(
        &mut self,
        sink: &mut dyn BodySink,
        stop: &Stop,
        progress: &mut dyn FnMut(Transfer),
    ) -> Result<Received, ClientError> {
        let mut received = Received { bytes: 0, complete: false, write_error: None };
        let mut discard = io::sink();
        // --limit-rate: reading slows, and TCP slows the server to match.
        let mut pace = self.settings.limit_rate.map(common::pace::Pace::new);
        let mut counted = 0;
        loop {
            if self.link.conn().has_body() {
                let base = received.bytes;
                let out: &mut dyn BodySink = if received.write_error.is_some() { &mut discard } else { &mut *sink };
                let result = self.link.conn().read_body_into(out, &mut |step| {
                    // A frame's count is of its own bytes: the transfer's is
                    // what came before it and this.
                    let step = match step {
                        Transfer::Moved(n) => {
                            stop.heard();
                            received.bytes = base + n;
                            if let Some(pace) = &mut pace {
                                pace.took(received.bytes - counted);
                                counted = received.bytes;
                            }
                            Transfer::Moved(base + n)
                        }
                        waiting => waiting,
                    };
                    progress(step);
                    !stop.now()
                });
                match result {
                    Ok(n) => received.bytes = base + n,
                    Err(BodyError::Cancelled { .. }) => {
                        if !self.ask_to_stop(stop)? {
                            return Ok(received);
                        }
                    }
                    // Nothing reads the rest (`cat | head`): the run is ending.
                    Err(BodyError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                        return Err(ClientError::output(&e))
                    }
                    Err(BodyError::Write(e)) => {
                        received.write_error = Some(e);
                        self.ask_to_stop(stop)?;
                    }
                    Err(BodyError::Read(e)) => return Err(e),
                }
                continue;
            }
            match self.link.conn().read_reply_header_unless(&|| stop.now())? {
                None => {
                    if !self.ask_to_stop(stop)? {
                        return Ok(received);
                    }
                }
                Some(Header::Data { .. }) => stop.heard(),
                Some(Header::End { cancelled, .. }) => {
                    received.complete = !cancelled;
                    return Ok(received);
                }
                Some(other) => return Err(unexpected(&other)),
            }
        }
    }

    /// Ctrl+C (or silence after it) during a download: the first time, asks
    /// the server to stop and says to go on reading (`true`); after that,
    /// gives up on this connection and opens a new one (`false`).
    fn ask_to_stop(&mut self, stop: &Stop) -> Result<bool, ClientError> {
        stop.interrupted.store(false, Ordering::SeqCst);
        if stop.asked.get().is_none() {
            self.link.conn().send(&Request::Cancel)?;
            stop.asked.set(Some(Instant::now()));
            stop.heard();
            return Ok(true);
        }
        stop.gave_up.set(true);
        self.link.reconnect()?;
        Ok(false)
    }

    /// After a download: the reply to a `cancel` sent during it comes last.
    pub(crate) fn end_stop<T>(&mut self, stop: &Stop, outcome: Result<T, ClientError>) -> Result<T, ClientError> {
        if stop.asked.get().is_some() && !stop.gave_up.get() && !outcome.as_ref().is_err_and(ClientError::ends_session)
        {
            match self.link.conn().read_reply_header()? {
                Header::Ok { len: 0, .. } => {}
                other => return Err(unexpected(&other)),
            }
        }
        outcome
    }

    /// `cat`: the file's bytes to `out` as they arrive; the hash is checked at
    /// the end, when the bytes are already out, so a mismatch is reported as
    /// a failed command. A closed output ends the run normally.
    pub(crate) fn cat(&mut self, name: &str, out: &mut dyn Write) -> Result<(), ClientError> {
        let stop = Stop::new(self.link.interrupt_flag());
        let mut out = out;
        let mut sink = HashingSink { out: &mut out, hasher: blake3::Hasher::new() };
        let outcome = self.request_download(&Request::Get(name.to_string()), &stop).and_then(|offer| match offer {
            None => Ok(None),
            Some(offer) => self.receive_frames(&mut sink, &stop, &mut |_| {}).map(|r| Some((offer, r))),
        });
        let Some((offer, received)) = self.end_stop(&stop, outcome)? else {
            return Err(ClientError::Cancelled(String::new()));
        };
        if let Some(e) = received.write_error {
            return Err(ClientError::output(&e));
        }
        if !received.complete {
            return Err(ClientError::Cancelled(String::new()));
        }
        let digest = Digest::from(sink.hasher.finalize());
        out.flush().map_err(|e| ClientError::output(&e))?;
        if digest != offer.digest {
            return Err(ClientError::Local(format!("'{}' did not match its BLAKE3 hash", escape(name))));
        }
        Ok(())
    }
}

/// Hashes a body's bytes on their way to where they go.
struct HashingSink<'a> {
    out: &'a mut dyn BodySink,
    hasher: blake3::Hasher,
}

impl BodySink for HashingSink<'_> {
    fn store(&mut self, buf: Vec<u8>, filled: usize) -> io::Result<Vec<u8>> {
        self.hasher.update(&buf[..filled]);
        self.out.store(buf, filled)
    }
}
