//! Downloads: `get` (to a file, verified, resumable) and `cat` (to standard
//! output), with remote globs expanded from a listing.
//!
//! A download is written to `NAME.part` in the download folder, hashed as it
//! arrives, and linked to `NAME` only when its BLAKE3 matches the reply's.
//! The local name comes from what the user asked for (or a glob match checked
//! the same way), never from anything else the server says.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::text::escape;
use common::{Code, Digest, Header, ListEntryKind, Request};

use crate::background::BackgroundWriter;
use crate::command::{is_glob, quote_word};
use crate::connection::{BodyError, BodySink, Transfer};
use crate::error::ClientError;
use crate::progress::Progress;
use crate::render::{self, unexpected};
use crate::session::Session;

/// A cancelled download with at most this much left is read to its end to
/// keep the session; with more, the client reconnects instead of waiting.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

impl Session {
    /// Remote names with globs expanded (in their last component).
    pub(crate) fn expand_remote(&mut self, words: &[String]) -> Result<Vec<String>, ClientError> {
        let mut names = Vec::new();
        for word in words {
            if !is_glob(word) {
                names.push(word.clone());
                continue;
            }
            let (dir, pattern) = word.rsplit_once('/').unwrap_or(("", word));
            if is_glob(dir) {
                return Err(ClientError::Usage(format!("only the last part of '{}' may be a glob", escape(word))));
            }
            let matcher = glob::Pattern::new(pattern)
                .map_err(|e| ClientError::Usage(format!("bad glob '{}': {e}", escape(word))))?;
            let before = names.len();
            for entry in self.list_entries(dir)? {
                // Only names that are safe as local file names are taken from the listing.
                let usable = local_base_name(&entry.name).is_ok_and(|base| base == entry.name);
                if entry.kind == ListEntryKind::File && usable && matcher.matches(&entry.name) {
                    names.push(if dir.is_empty() { entry.name } else { format!("{dir}/{}", entry.name) });
                }
            }
            if names.len() == before {
                let message = format!("no files match '{}'", escape(word));
                return Err(ClientError::Remote { code: Code::NotFound, message });
            }
        }
        Ok(names)
    }

    /// `get`: downloads `name` into the download folder; the report line.
    pub(crate) fn get(&mut self, name: &str, force: bool, resume: bool) -> Result<String, ClientError> {
        let part = PartFile::new(&self.settings.download_dir, name, force)?;
        let (offset, hasher) = part.start(resume)?;
        let request = if offset > 0 {
            Request::Resume { offset, name: name.to_string() }
        } else {
            Request::Get(name.to_string())
        };
        let (len, expected) = self.request_download(&request)?;
        let writer = match part.open(offset, hasher) {
            Ok(writer) => writer,
            Err(e) => {
                self.conn.skip_body()?;
                return Err(part.error("cannot create", e));
            }
        };
        let started = Instant::now();
        let (file, hasher) = self.receive(writer, &part, offset, len)?;
        part.keep(file, Digest::from(hasher.finalize()), expected, offset > 0)?;
        let resumed = if offset > 0 { format!(", resumed at {offset}") } else { String::new() };
        let (base, total, rate) = (escape(&part.base), offset + len, render::rate(len, started));
        Ok(format!("got '{base}' ({total} bytes{resumed}, {rate}, BLAKE3 verified)\n"))
    }

    /// Streams the reply's body into the part file with a progress bar; the
    /// file and the hash of everything in it.
    fn receive(
        &mut self,
        mut writer: BackgroundWriter,
        part: &PartFile,
        offset: u64,
        len: u64,
    ) -> Result<(File, blake3::Hasher), ClientError> {
        let mut progress = Progress::new(self.settings.progress, "get", &part.base, offset + len, offset);
        let interrupted = self.interrupt_flag();
        let result = self.conn.read_body_into(&mut writer, &mut |step| {
            match step {
                Transfer::Moved(n) => progress.set(offset + n),
                Transfer::Waiting => progress.tick(),
            }
            !interrupted.load(std::sync::atomic::Ordering::SeqCst)
        });
        if matches!(result, Err(BodyError::Cancelled { .. })) {
            progress.abandon();
        } else {
            progress.finish();
        }
        let (path, name) = (part.path.display(), quote_word(&part.name));
        let kept = format!("partial download kept as {path}; get -c {name} resumes");
        match result {
            Ok(_) => writer.finish().map_err(|e| part.error("cannot write", e)),
            Err(BodyError::Write(e)) => Err(part.error("cannot write", e)),
            Err(BodyError::Read(e)) => Err(ClientError::Connection(format!("{e}; {kept}"))),
            Err(BodyError::Cancelled { remaining }) => {
                self.abandon_body(remaining)?;
                Err(ClientError::Cancelled(format!(": {kept}")))
            }
        }
    }

    /// Sends `get` or `resume` and reads the reply's header: the body's length
    /// and the whole file's hash. A reply without a valid hash is refused
    /// (its body skipped), since nothing could be verified.
    fn request_download(&mut self, request: &Request) -> Result<(u64, Digest), ClientError> {
        self.conn.send(request)?;
        let interrupted = self.interrupt_flag();
        let cancel = move || interrupted.load(std::sync::atomic::Ordering::SeqCst);
        let Some(header) = self.conn.read_reply_header_unless(&cancel)? else {
            // Ctrl+C before the reply (the server may still be hashing a big
            // file): only a new connection gets out of waiting for it.
            self.reconnect()?;
            return Err(ClientError::Cancelled(": the server had not answered yet".into()));
        };
        let Header::Ok { len, .. } = header else { return Err(unexpected(&header)) };
        match header.field("blake3").and_then(|d| d.parse::<Digest>().ok()) {
            Some(digest) => Ok((len, digest)),
            None => {
                self.conn.skip_body()?;
                Err(ClientError::Connection("server's get reply has no valid blake3 field".into()))
            }
        }
    }

    /// `cat`: the file's bytes to `out` as they arrive; the hash is checked at
    /// the end, when the bytes are already out, so a mismatch is reported as
    /// a failed command. A closed output ends the run normally.
    pub(crate) fn cat(&mut self, name: &str, out: &mut dyn Write) -> Result<(), ClientError> {
        let (_, expected) = self.request_download(&Request::Get(name.to_string()))?;
        let mut out = out;
        let mut sink = HashingSink { out: &mut out, hasher: blake3::Hasher::new() };
        let interrupted = self.interrupt_flag();
        let result =
            self.conn.read_body_into(&mut sink, &mut |_| !interrupted.load(std::sync::atomic::Ordering::SeqCst));
        match result {
            Ok(_) => {}
            Err(BodyError::Write(e)) => return Err(ClientError::output(&e)),
            Err(BodyError::Read(e)) => return Err(e),
            Err(BodyError::Cancelled { remaining }) => {
                self.abandon_body(remaining)?;
                return Err(ClientError::Cancelled(String::new()));
            }
        }
        let digest = Digest::from(sink.hasher.finalize());
        out.flush().map_err(|e| ClientError::output(&e))?;
        if digest != expected {
            return Err(ClientError::Local(format!("'{}' did not match its BLAKE3 hash", escape(name))));
        }
        Ok(())
    }

    /// After a cancelled download: read the rest if it is small, else start over
    /// on a fresh connection rather than wait for it.
    fn abandon_body(&mut self, remaining: u64) -> Result<(), ClientError> {
        if remaining <= DRAIN_LIMIT {
            self.conn.skip_body()
        } else {
            self.reconnect()
        }
    }
}

/// Where one download goes: `NAME.part` while it arrives, `NAME` once verified.
struct PartFile {
    /// The name asked of the server.
    name: String,
    /// The local name: the last part of `name`, a plain file name.
    base: String,
    /// `DIR/NAME.part`.
    path: PathBuf,
    /// `DIR/NAME`.
    target: PathBuf,
    /// Replace an existing `NAME` (`get -f`).
    force: bool,
}

impl PartFile {
    /// For remote `name` in `dir`; refuses at once a name that is no plain
    /// file name, or when `NAME` exists and `force` is off.
    fn new(dir: &Path, name: &str, force: bool) -> Result<PartFile, ClientError> {
        let base = local_base_name(name)?;
        let target = dir.join(base);
        if !force && target.symlink_metadata().is_ok() {
            return Err(exists(base));
        }
        let path = dir.join(format!("{base}.part"));
        Ok(PartFile { name: name.to_string(), base: base.to_string(), path, target, force })
    }

    fn error(&self, what: &str, e: io::Error) -> ClientError {
        ClientError::Local(format!("{what} '{}': {e}", self.path.display()))
    }

    /// Where to start: with `resume`, after the bytes already in the part
    /// file, with the hash of those bytes; else at 0.
    fn start(&self, resume: bool) -> Result<(u64, blake3::Hasher), ClientError> {
        let mut hasher = blake3::Hasher::new();
        match fs::metadata(&self.path) {
            Ok(meta) if resume && meta.is_file() => {
                let existing = File::open(&self.path).map_err(|e| self.error("cannot read", e))?;
                hasher.update_reader(existing).map_err(|e| self.error("cannot read", e))?;
                Ok((meta.len(), hasher))
            }
            _ => Ok((0, hasher)),
        }
    }

    /// Opens the part file (appending after `offset` bytes) behind a writer thread.
    fn open(&self, offset: u64, hasher: blake3::Hasher) -> io::Result<BackgroundWriter> {
        let file = if offset > 0 { OpenOptions::new().append(true).open(&self.path) } else { File::create(&self.path) };
        BackgroundWriter::new(file?, hasher)
    }

    /// Checks the whole file's hash, then moves it into place; a mismatch
    /// discards it.
    fn keep(&self, file: File, digest: Digest, expected: Digest, resumed: bool) -> Result<(), ClientError> {
        if digest != expected {
            drop(file);
            let _ = fs::remove_file(&self.path);
            let how = if resumed { "after resuming " } else { "" };
            return Err(ClientError::Local(format!(
                "'{}' did not match its BLAKE3 hash {how}and was discarded",
                escape(&self.name)
            )));
        }
        file.sync_all().map_err(|e| self.error("cannot write", e))?;
        drop(file);
        if self.force {
            return fs::rename(&self.path, &self.target).map_err(|e| self.error("cannot rename", e));
        }
        // A hard link never replaces a file that appeared meanwhile.
        fs::hard_link(&self.path, &self.target).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                exists(&self.base)
            } else {
                self.error("cannot link", e)
            }
        })?;
        let _ = fs::remove_file(&self.path);
        Ok(())
    }
}

fn exists(base: &str) -> ClientError {
    ClientError::Local(format!("local file '{}' exists (use get -f to overwrite)", escape(base)))
}

/// The last component of a remote name, checked to be a plain file name that
/// is safe to create in the download folder.
///
/// # Errors
/// [`ClientError::Usage`] for an empty, dot, hidden or control-character name.
pub fn local_base_name(name: &str) -> Result<&str, ClientError> {
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if base.is_empty()
        || base == "."
        || base == ".."
        || base.starts_with('.')
        || base.contains(['\\', '\0'])
        || base.chars().any(char::is_control)
    {
        return Err(ClientError::Usage(format!("get: '{}' does not end in a usable file name", escape(name))));
    }
    Ok(base)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_base_names_become_local_files() {
        assert_eq!(local_base_name("docs/a.txt").unwrap(), "a.txt");
        for bad in ["", "..", "a/..", ".bashrc", "x/\u{1b}[2J", "a\\b"] {
            assert!(local_base_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_part_file_is_kept_only_when_its_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let part = PartFile::new(dir.path(), "docs/a.txt", false).unwrap();
        fs::write(&part.path, b"abc").unwrap();
        let (offset, hasher) = part.start(true).unwrap();
        assert_eq!(offset, 3);
        let good = Digest::from(hasher.finalize());
        assert_eq!(good, Digest::from(blake3::hash(b"abc")));
        assert!(part.keep(File::open(&part.path).unwrap(), good, Digest([0; 32]), true).is_err());
        assert!(!part.path.exists() && !part.target.exists(), "a mismatch is discarded");

        fs::write(&part.path, b"abc").unwrap();
        part.keep(File::open(&part.path).unwrap(), good, good, false).unwrap();
        assert_eq!(fs::read(&part.target).unwrap(), b"abc");
        assert!(!part.path.exists());
        assert!(PartFile::new(dir.path(), "a.txt", false).is_err(), "exists, without -f");
        assert!(PartFile::new(dir.path(), "a.txt", true).is_ok(), "replaced with -f");
    }
}
