//! Uploads: `put`. The file is hashed first, so the request can announce
//! its size and BLAKE3 and the server can refuse before a byte is sent; the
//! bytes then go in `DATA` frames with the transport's `send_file`
//! (`sendfile(2)` on TCP), so Ctrl+C can end an upload between two frames
//! and keep the session.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::text::escape;
use common::{Code, Digest, Header, Request};

use crate::command::{is_glob, PutHow};
use crate::error::ClientError;
use crate::progress::Progress;
use crate::render::{self, unexpected};
use crate::session::Session;

/// Bytes in one frame of an upload; Ctrl+C takes effect after the frame.
const UPLOAD_CHUNK: u64 = 1024 * 1024;

impl Session {
    /// `put <local|glob>... [remote]`: uploads each file, printing a report line each.
    pub(crate) fn put_all(
        &mut self,
        locals: &[String],
        remote: Option<&str>,
        how: PutHow,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        for file in expand_local(locals)? {
            let report = self.put(&file, remote, how)?;
            render::print(out, &report)?;
        }
        Ok(())
    }

    /// `put`: uploads `local` as `remote` (default: its file name); the report line.
    pub(crate) fn put(&mut self, local: &Path, remote: Option<&str>, how: PutHow) -> Result<String, ClientError> {
        let PutHow { replace, resume } = how;
        let local_err = |what: &str, e: io::Error| ClientError::Local(format!("{what} '{}': {e}", local.display()));
        let remote = match remote {
            Some(r) => r.to_string(),
            None => local.file_name().and_then(|n| n.to_str()).map(str::to_string).ok_or_else(|| {
                ClientError::Usage(format!("put: '{}' has no usable file name; give a remote name", local.display()))
            })?,
        };
        // Relative to the remote folder (`cd`).
        let remote = self.remote_path(&remote)?;
        let mut file = File::open(local).map_err(|e| local_err("cannot open", e))?;
        let meta = file.metadata().map_err(|e| local_err("cannot read", e))?;
        if !meta.is_file() {
            return Err(ClientError::Local(format!("'{}' is not a regular file", local.display())));
        }
        let digest = Digest::of_reader(&mut file).map_err(|e| local_err("cannot read", e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| local_err("cannot read", e))?;
        let size = meta.len();
        // The file's time travels with it, as with sftp -p.
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs());
        self.conn.send(&Request::Put { size, digest, name: remote.clone(), replace, modified, resume })?;
        // With -c the server may have kept the start of an earlier attempt.
        let offset = match self.conn.read_reply_header()? {
            header @ Header::Ok { len: 0, .. } => header.field("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
            other => return Err(unexpected(&other)),
        };
        if offset > size {
            self.conn.close();
            return Err(ClientError::Connection(format!("the server kept {offset} bytes of a {size}-byte file")));
        }
        file.seek(SeekFrom::Start(offset)).map_err(|e| local_err("cannot read", e))?;
        let started = Instant::now();
        self.send_body(&mut file, size, (local, &remote), offset).map_err(|e| match e {
            ClientError::Cancelled(m) => ClientError::Cancelled(format!("{m}; put -c resumes it")),
            e => e,
        })?;
        let body = match self.conn.read_reply_header()? {
            Header::Ok { len, .. } => self.conn.read_text_body(len)?,
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
    /// `END`. Ctrl+C ends the upload at the next frame (`END cancelled`):
    /// the server stores nothing and the session goes on.
    fn send_body(
        &mut self,
        file: &mut File,
        size: u64,
        (local, remote): (&Path, &str),
        offset: u64,
    ) -> Result<(), ClientError> {
        let mut progress = Progress::new(self.settings.progress, "put", remote, size, offset);
        let mut sent = offset;
        let mut stopped = None;
        while sent < size && stopped.is_none() {
            if self.is_interrupted() {
                stopped = Some(ClientError::Cancelled(format!(": upload of '{}' cancelled", escape(remote))));
                break;
            }
            let frame = UPLOAD_CHUNK.min(size - sent);
            self.conn.send_raw(Header::Data { len: frame }.encode().as_bytes())?;
            let mut left = frame;
            while left > 0 {
                let sent_now = self.conn.upload_sink().send_file(file, left);
                let n = sent_now.map_err(|e| self.conn.failure(&format!("uploading '{}'", local.display()), e))?;
                if n == 0 {
                    // The file shrank while being sent: the frame is filled
                    // up and the upload cancelled, so the session goes on.
                    self.conn.send_raw(&vec![0; usize::try_from(left).unwrap_or(0)])?;
                    let shrank = format!("'{}' shrank while being sent; nothing was stored", local.display());
                    stopped = Some(ClientError::Local(shrank));
                    break;
                }
                left -= n;
                sent += n;
                progress.set(sent);
            }
        }
        self.conn.send_raw(Header::End { cancelled: stopped.is_some() }.encode().as_bytes())?;
        let Some(why) = stopped else {
            progress.finish();
            return Ok(());
        };
        progress.abandon();
        match self.conn.read_reply_header() {
            Err(ClientError::Remote { code: Code::Cancelled, .. }) => Err(why),
            Err(e) => Err(e),
            Ok(other) => Err(unexpected(&other)),
        }
    }
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
