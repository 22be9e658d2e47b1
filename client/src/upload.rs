//! Uploads: `put`. The request announces the size, so the server can
//! refuse before a byte is sent; the bytes then go in `DATA` frames with the
//! transport's `send_file` (`sendfile(2)` on TCP), so Ctrl+C can end an
//! upload between two frames and keep the session. A second thread hashes
//! a file of more than a frame meanwhile, and the BLAKE3 follows the bytes
//! in `END ok blake3=<hex>` (the request says `-` for it). Small files, and
//! `put -c` (the server finds what it kept by the hash), are hashed first.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use common::text::escape;
use common::{Code, Digest, Header, Request};

use crate::command::{is_glob, PutHow};
use crate::error::ClientError;
use crate::link::Transfers;
use crate::progress::Progress;
use crate::render::{self, unexpected};

/// Bytes in one frame of an upload; Ctrl+C takes effect after the frame.
const UPLOAD_CHUNK: u64 = 1024 * 1024;

/// Files up to this size are hashed before the request, as one frame's
/// worth hashes in about 0.1 ms; larger ones while they are sent.
const HASH_FIRST_UP_TO: u64 = UPLOAD_CHUNK;

impl Transfers<'_> {
    /// `put`: uploads `local` as `remote` (relative to the share's top); the report line.
    pub(crate) fn put(&mut self, local: &Path, remote: &str, how: PutHow) -> Result<String, ClientError> {
        let mut upload = self.put_request(local, remote, how)?;
        self.put_bytes(&mut upload)?;
        self.put_report(upload)
    }

    /// The first step of an upload: opens `local` (hashing it first when
    /// resuming or small) and sends the `put` request. The go-ahead is read
    /// by [`Transfers::put_bytes`], so a caller may send this while the
    /// server still stores the previous file (`put -r`).
    pub(crate) fn put_request(&mut self, local: &Path, remote: &str, how: PutHow) -> Result<PendingPut, ClientError> {
        let PutHow { replace, resume } = how;
        let local_err = |what: &str, e: io::Error| ClientError::Local(format!("{what} '{}': {e}", local.display()));
        let remote = remote.to_string();
        let mut file = File::open(local).map_err(|e| local_err("cannot open", e))?;
        let meta = file.metadata().map_err(|e| local_err("cannot read", e))?;
        if !meta.is_file() {
            return Err(ClientError::Local(format!("'{}' is not a regular file", local.display())));
        }
        // Resuming needs the hash first (the server keeps bytes under it), and
        // a small file is hashed sooner than a thread starts; otherwise the
        // hash is made while the bytes go, and follows them.
        let digest = if resume || meta.len() <= HASH_FIRST_UP_TO {
            let digest = Digest::of_reader(&mut file).map_err(|e| local_err("cannot read", e))?;
            file.seek(SeekFrom::Start(0)).map_err(|e| local_err("cannot read", e))?;
            Some(digest)
        } else {
            None
        };
        let size = meta.len();
        // The file's time travels with it, as with sftp -p.
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs());
        self.link.conn().send(&Request::Put { size, digest, name: remote.clone(), replace, modified, resume })?;
        Ok(PendingPut {
            local: local.to_path_buf(),
            remote,
            file,
            size,
            hash_along: digest.is_none(),
            offset: 0,
            started: Instant::now(),
        })
    }

    /// The second step: reads the go-ahead and sends the bytes (from the
    /// offset the server kept, with `-c`), then `END`.
    pub(crate) fn put_bytes(&mut self, upload: &mut PendingPut) -> Result<(), ClientError> {
        let PendingPut { local, remote, file, size, hash_along, offset, started } = upload;
        // With -c the server may have kept the start of an earlier attempt.
        *offset = match self.link.conn().read_reply_header()? {
            header @ Header::Ok { len: 0, .. } => header.field("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
            other => return Err(unexpected(&other)),
        };
        if *offset > *size {
            self.link.conn().close();
            return Err(ClientError::Connection(format!("the server kept {offset} bytes of a {size}-byte file")));
        }
        file.seek(SeekFrom::Start(*offset))
            .map_err(|e| ClientError::Local(format!("cannot read '{}': {e}", local.display())))?;
        *started = Instant::now();
        self.send_body(file, *size, (local, remote), *offset, *hash_along).map_err(|e| match e {
            ClientError::Cancelled(m) => ClientError::Cancelled(format!("{m}; put -c resumes it")),
            e => e,
        })
    }

    /// Withdraws an upload whose request went but whose bytes did not
    /// (Ctrl+C between two files of `put -r`): after its go-ahead, `END
    /// cancelled`, so the session stays in step and nothing is stored.
    pub(crate) fn withdraw_put(&mut self, _withdrawn: PendingPut) -> Result<(), ClientError> {
        match self.link.conn().read_reply_header() {
            Ok(Header::Ok { len: 0, .. }) => match self.end_cancelled(ClientError::Cancelled(String::new())) {
                Err(ClientError::Cancelled(_)) => Ok(()),
                other => other,
            },
            // Refused: nothing to withdraw.
            Err(ClientError::Remote { .. }) => Ok(()),
            Err(e) => Err(e),
            Ok(other) => Err(unexpected(&other)),
        }
    }

    /// The last step: the server's answer once it has checked and stored
    /// the file; the report line.
    pub(crate) fn put_report(&mut self, upload: PendingPut) -> Result<String, ClientError> {
        let PendingPut { local, remote, size, offset, started, .. } = upload;
        let body = match self.link.conn().read_reply_header()? {
            Header::Ok { len, .. } => self.link.conn().read_text_body(len)?,
            other => return Err(unexpected(&other)),
        };
        if self.settings.json {
            return Ok(render::json_line(&serde_json::json!({
                "type": "put", "local": local.to_string_lossy(), "name": remote, "bytes": size,
                "reply": body.trim_end(),
            })));
        }
        let resumed = if offset > 0 { format!(", resumed at {offset}") } else { String::new() };
        Ok(format!("{} ({}{resumed})\n", escape(body.trim_end()), render::rate(size - offset, started)))
    }

    /// Sends `size` bytes of `file` in frames with a progress bar, then
    /// `END` (with the file's hash, made on a second thread meanwhile, when
    /// `hash_along`). Ctrl+C ends the upload at the next frame (`END
    /// cancelled`): the server stores nothing and the session goes on.
    fn send_body(
        &mut self,
        file: &mut File,
        size: u64,
        (local, remote): (&Path, &str),
        offset: u64,
        hash_along: bool,
    ) -> Result<(), ClientError> {
        let stop = AtomicBool::new(false);
        let hashing = if hash_along {
            let copy =
                file.try_clone().map_err(|e| ClientError::Local(format!("cannot read '{}': {e}", local.display())))?;
            Some(copy)
        } else {
            None
        };
        std::thread::scope(|scope| {
            let hasher = hashing.map(|copy| scope.spawn(|| hash_prefix(copy, size, &stop)));
            let sent = self.send_frames(file, size, (local, remote), offset);
            stop.store(sent.is_err(), Ordering::Relaxed);
            let digest = hasher
                .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("the hashing thread failed"))))
                .transpose();
            match (sent, digest) {
                (Err(why), _) => self.end_cancelled(why),
                (Ok(()), Err(e)) => {
                    self.end_cancelled(ClientError::Local(format!("cannot read '{}': {e}", local.display())))
                }
                (Ok(()), Ok(digest)) => {
                    self.link.conn().send_raw(Header::End { cancelled: false, digest }.encode().as_bytes())?;
                    Ok(())
                }
            }
        })
    }

    /// The `DATA` frames of an upload, with its progress bar. Stops early,
    /// with the reason, on Ctrl+C or a file that shrank (its frame is filled
    /// up so the stream stays in step): the caller then sends `END cancelled`.
    fn send_frames(
        &mut self,
        file: &mut File,
        size: u64,
        (local, remote): (&Path, &str),
        offset: u64,
    ) -> Result<(), ClientError> {
        let mut progress = Progress::new(self.settings.progress, "put", remote, size, offset);
        let mut pace = self.settings.limit_rate.map(common::pace::Pace::new);
        let mut sent = offset;
        while sent < size {
            if self.link.is_interrupted() {
                progress.abandon();
                return Err(ClientError::Cancelled(format!(": upload of '{}' cancelled", escape(remote))));
            }
            let frame = UPLOAD_CHUNK.min(size - sent);
            self.link.conn().send_raw(Header::Data { len: frame }.encode().as_bytes())?;
            let mut left = frame;
            while left > 0 {
                let step = pace.as_ref().map_or(left, |p| p.chunk().min(left));
                let sent_now = self.link.conn().upload_sink().send_file(file, step);
                let n =
                    sent_now.map_err(|e| self.link.conn().failure(&format!("uploading '{}'", local.display()), e))?;
                if n == 0 {
                    self.link.conn().send_raw(&vec![0; usize::try_from(left).unwrap_or(0)])?;
                    progress.abandon();
                    let shrank = format!("'{}' shrank while being sent; nothing was stored", local.display());
                    return Err(ClientError::Local(shrank));
                }
                left -= n;
                sent += n;
                if let Some(pace) = &mut pace {
                    pace.took(n);
                }
                progress.set(sent);
            }
        }
        progress.finish();
        Ok(())
    }

    /// Ends an upload early for `why` (Ctrl+C, a local file that cannot be
    /// read): `END cancelled`, then the server's `ERR 499`. Anything else
    /// (the connection failed) is reported as it is.
    fn end_cancelled(&mut self, why: ClientError) -> Result<(), ClientError> {
        if !matches!(why, ClientError::Cancelled(_) | ClientError::Local(_)) {
            return Err(why);
        }
        self.link.conn().send_raw(Header::End { cancelled: true, digest: None }.encode().as_bytes())?;
        match self.link.conn().read_reply_header() {
            Err(ClientError::Remote { code: Code::Cancelled, .. }) => Err(why),
            Err(e) => Err(e),
            Ok(other) => Err(unexpected(&other)),
        }
    }
}

/// The BLAKE3 of the first `size` bytes of `file`, read at their offsets
/// (so the sending side's file position is left alone); gives up when
/// `stop` is set.
fn hash_prefix(file: File, size: u64, stop: &AtomicBool) -> io::Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut done = 0;
    while done < size {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("upload stopped"));
        }
        let want = buf.len().min(usize::try_from(size - done).unwrap_or(usize::MAX));
        let n = match file.read_at(&mut buf[..want], done) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(Digest::from(hasher.finalize()))
}

/// Bytes read at a time to hash an upload while it is sent.
const HASH_BUFFER: usize = 1024 * 1024;

/// An upload whose request is sent: what the next steps need.
pub(crate) struct PendingPut {
    local: PathBuf,
    /// The remote name, relative to the share.
    remote: String,
    file: File,
    size: u64,
    /// No hash in the request: it follows the bytes.
    hash_along: bool,
    /// Bytes the server kept of an earlier attempt (`-c`).
    offset: u64,
    /// When the bytes began to go.
    started: Instant,
}

/// Local files named by `put` words, globs expanded.
///
/// # Errors
/// [`ClientError::Usage`] for a bad glob, [`ClientError::Local`] for one
/// that matches no file.
pub fn expand_local(words: &[String]) -> Result<Vec<PathBuf>, ClientError> {
    let mut files = Vec::new();
    for typed in words {
        let path = crate::local::expand_home(typed);
        let word = path.to_str().unwrap_or(typed);
        if !is_glob(word) {
            files.push(path.clone());
            continue;
        }
        let paths = glob::glob(word).map_err(|e| ClientError::Usage(format!("bad glob '{}': {e}", escape(word))))?;
        let before = files.len();
        files.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()));
        if files.len() == before {
            return Err(ClientError::Local(format!("no local files match '{}'", escape(word))));
        }
    }
    Ok(files)
}
