//! Running commands against a connected server and printing their results.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use common::text::{escape, escape_multiline};
use common::{Code, Digest, Header, ListEntry, ListEntryKind, Request};
use serde_json::json;

use crate::background::BackgroundWriter;
use crate::command::{help_text, is_glob, quote_word, Command};
use crate::connection::{BodyError, BodySink, Connection, Greeting, Transfer};
use crate::error::ClientError;
use crate::progress::{Progress, ProgressMode};

/// A cancelled download with at most this much left is read to its end to
/// keep the session; with more, the client reconnects instead of waiting.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

/// Bytes sent per `sendfile` call during an upload, between progress updates.
const UPLOAD_CHUNK: u64 = 1024 * 1024;

/// Whether to go on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// The user said `exit`; the server said goodbye.
    Exit,
}

/// Local settings of a session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where downloads go; relative paths follow `lcd`.
    pub download_dir: PathBuf,
    /// When to draw progress bars.
    pub progress: ProgressMode,
    /// `status` and `list` print JSON lines.
    pub json: bool,
}

/// Opens a fresh connection, for reconnecting after a cancelled transfer;
/// given the name on the connection being replaced, if any.
pub type Opener = Box<dyn FnMut(Option<String>) -> Result<(Connection, Greeting), ClientError>>;

/// A connected client: the connection plus local settings.
pub struct Session {
    conn: Connection,
    greeting: Greeting,
    /// The name the user chose, re-taken after a reconnect.
    chosen_name: Option<String>,
    settings: Settings,
    interrupted: Arc<AtomicBool>,
    opener: Opener,
    listings: HashMap<String, Vec<ListEntry>>,
}

impl Session {
    /// Wraps an open connection; `opener` reconnects when a cancelled
    /// transfer leaves the connection unusable.
    pub fn new(conn: Connection, greeting: Greeting, settings: Settings, opener: Opener) -> Session {
        let interrupted = Arc::new(AtomicBool::new(false));
        Session { conn, greeting, chosen_name: None, settings, interrupted, opener, listings: HashMap::new() }
    }

    /// Set this (from a Ctrl+C handler) to cancel the transfer in progress.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupted)
    }

    /// `Client02@127.0.0.1:12345> `
    pub fn prompt(&self) -> String {
        format!("{}@{}> ", self.greeting.name, self.conn.peer())
    }

    /// Parses and runs one line of user input, printing its result to `out`.
    ///
    /// # Errors
    /// [`ClientError`] for a failed command; see [`ClientError::ends_session`].
    pub fn execute(&mut self, line: &str, out: &mut dyn Write) -> Result<Flow, ClientError> {
        // A Ctrl+C from here on cancels this command, even one pressed while
        // the server is still preparing its reply.
        self.interrupted.store(false, Ordering::SeqCst);
        match Command::parse(line)? {
            Command::Nothing => {}
            Command::Help(command) => print(out, &help_text(command.as_deref())?)?,
            Command::Exit => {
                self.conn.expect_close();
                self.text_request(&Request::Exit)?;
                return Ok(Flow::Exit);
            }
            Command::Status => self.status(out)?,
            Command::List(dir) => {
                let entries = self.list_entries(&dir)?;
                print(out, &format_entries(&entries, self.settings.json))?;
            }
            Command::Remote(request) => {
                let body = self.text_request(&request)?;
                if let Request::Name(nick) = &request {
                    self.greeting.name = escape(nick).into_owned();
                    self.chosen_name = Some(nick.clone());
                }
                print(out, &escape_multiline(&body))?;
            }
            Command::Get { force, resume, names } => {
                for name in self.expand_remote(&names)? {
                    let report = self.get(&name, force, resume)?;
                    print(out, &report)?;
                }
            }
            Command::Cat(names) => {
                for name in self.expand_remote(&names)? {
                    self.cat(&name, out)?;
                }
            }
            Command::Put { locals, remote } => {
                let files = expand_local(&locals)?;
                for file in &files {
                    let report = self.put(file, remote.as_deref())?;
                    print(out, &report)?;
                }
            }
            Command::Lls(dir) => print(out, &local_listing(dir.as_deref().unwrap_or("."))?)?,
            Command::Lcd(dir) => {
                let dir = match dir {
                    Some(dir) => PathBuf::from(dir),
                    None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/")),
                };
                std::env::set_current_dir(&dir)
                    .map_err(|e| ClientError::Local(format!("lcd: '{}': {e}", dir.display())))?;
                print(out, &format!("{}\n", current_dir()?.display()))?;
            }
            Command::Lpwd => print(out, &format!("{}\n", current_dir()?.display()))?,
        }
        Ok(Flow::Continue)
    }

    /// Entries of a remote folder, from the last `list` of it or fetched now:
    /// for tab completion. Errors give no entries.
    pub fn remote_entries(&mut self, dir: &str) -> Vec<ListEntry> {
        if let Some(entries) = self.listings.get(dir) {
            return entries.clone();
        }
        self.list_entries(dir).unwrap_or_default()
    }

    fn text_request(&mut self, request: &Request) -> Result<String, ClientError> {
        self.conn.send(request)?;
        let header = self.conn.read_reply_header()?;
        self.text_body(&header)
    }

    fn text_body(&mut self, header: &Header) -> Result<String, ClientError> {
        match header {
            Header::Ok { len, .. } => self.conn.read_text_body(*len),
            other => Err(unexpected(other)),
        }
    }

    fn list_entries(&mut self, dir: &str) -> Result<Vec<ListEntry>, ClientError> {
        let body = self.text_request(&Request::List(dir.to_string()))?;
        let entries: Vec<ListEntry> = body.lines().filter_map(ListEntry::parse).collect();
        let key = dir.trim_matches('/').to_string();
        self.listings.insert(key, entries.clone());
        Ok(entries)
    }

    fn status(&mut self, out: &mut dyn Write) -> Result<(), ClientError> {
        self.conn.send(&Request::Status)?;
        let header = self.conn.read_reply_header()?;
        let body = self.text_body(&header)?;
        if !self.settings.json {
            return print(out, &escape_multiline(&body));
        }
        let number = |key: &str| header.field(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (sessions, departed) = parse_status(&body);
        let line = json!({
            "uptime_secs": number("uptime"),
            "clients": number("clients"),
            "max_clients": number("max"),
            "sessions": sessions,
            "recently_left": departed,
        });
        print(out, &format!("{line}\n"))
    }

    /// Remote names with globs expanded (in their last component).
    fn expand_remote(&mut self, words: &[String]) -> Result<Vec<String>, ClientError> {
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

    fn get(&mut self, name: &str, force: bool, resume: bool) -> Result<String, ClientError> {
        // The local name comes from what the user asked for (or a glob match,
        // checked the same way), never from anything else the server says.
        let base = local_base_name(name)?;
        let dir = &self.settings.download_dir;
        let target = dir.join(base);
        if !force && target.symlink_metadata().is_ok() {
            return Err(ClientError::Local(format!("local file '{}' exists (use get -f to overwrite)", escape(base))));
        }
        let part = dir.join(format!("{base}.part"));
        let local_err = |what: &str, e: io::Error| ClientError::Local(format!("{what} '{}': {e}", part.display()));
        let mut hasher = blake3::Hasher::new();
        let offset = match fs::metadata(&part) {
            Ok(meta) if resume && meta.is_file() => {
                let mut existing = File::open(&part).map_err(|e| local_err("cannot read", e))?;
                hasher.update_reader(&mut existing).map_err(|e| local_err("cannot read", e))?;
                meta.len()
            }
            _ => 0,
        };
        let request = if offset > 0 {
            Request::Resume { offset, name: name.to_string() }
        } else {
            Request::Get(name.to_string())
        };
        let (len, expected) = self.request_download(&request)?;
        let file = if offset > 0 { OpenOptions::new().append(true).open(&part) } else { File::create(&part) };
        let mut writer = match file.and_then(|file| BackgroundWriter::new(file, hasher)) {
            Ok(writer) => writer,
            Err(e) => {
                self.conn.skip_body()?;
                return Err(local_err("cannot create", e));
            }
        };
        let started = Instant::now();
        let mut progress = Progress::new(self.settings.progress, "get", base, offset + len, offset);
        let interrupted = Arc::clone(&self.interrupted);
        let result = self.conn.read_body_into(&mut writer, &mut |step| {
            match step {
                Transfer::Moved(n) => progress.set(offset + n),
                Transfer::Waiting => progress.tick(),
            }
            !interrupted.load(Ordering::SeqCst)
        });
        if matches!(result, Err(BodyError::Cancelled { .. })) {
            progress.abandon();
        } else {
            progress.finish();
        }
        let kept = format!("partial download kept as {}; get -c {} resumes", part.display(), quote_word(name));
        match result {
            Ok(_) => {}
            Err(BodyError::Write(e)) => return Err(local_err("cannot write", e)),
            Err(BodyError::Read(e)) => return Err(ClientError::Connection(format!("{e}; {kept}"))),
            Err(BodyError::Cancelled { remaining }) => {
                self.abandon_body(remaining)?;
                return Err(ClientError::Cancelled(format!(": {kept}")));
            }
        }
        let (file, hasher) = writer.finish().map_err(|e| local_err("cannot write", e))?;
        let digest = Digest(*hasher.finalize().as_bytes());
        if digest != expected {
            drop(file);
            let _ = fs::remove_file(&part);
            let how = if offset > 0 { "after resuming " } else { "" };
            return Err(ClientError::Local(format!(
                "'{}' did not match its BLAKE3 hash {how}and was discarded",
                escape(name)
            )));
        }
        file.sync_all().map_err(|e| local_err("cannot write", e))?;
        drop(file);
        if force {
            fs::rename(&part, &target).map_err(|e| local_err("cannot rename", e))?;
        } else {
            // A hard link never replaces a file that appeared meanwhile.
            fs::hard_link(&part, &target).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    ClientError::Local(format!("local file '{}' exists (use get -f to overwrite)", escape(base)))
                } else {
                    local_err("cannot link", e)
                }
            })?;
            let _ = fs::remove_file(&part);
        }
        let total = offset + len;
        let resumed = if offset > 0 { format!(", resumed at {offset}") } else { String::new() };
        Ok(format!("got '{}' ({total} bytes{resumed}, {}, BLAKE3 verified)\n", escape(base), rate(len, started)))
    }

    /// Sends `get` or `resume` and reads the reply's header: the body's length
    /// and the whole file's hash. A reply without a valid hash is refused
    /// (its body skipped), since nothing could be verified.
    fn request_download(&mut self, request: &Request) -> Result<(u64, Digest), ClientError> {
        self.conn.send(request)?;
        let interrupted = Arc::clone(&self.interrupted);
        let Some(header) = self.conn.read_reply_header_unless(&|| interrupted.load(Ordering::SeqCst))? else {
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
    /// a failed command.
    fn cat(&mut self, name: &str, out: &mut dyn Write) -> Result<(), ClientError> {
        let (_, expected) = self.request_download(&Request::Get(name.to_string()))?;
        let mut out = out;
        let mut sink = HashingSink { out: &mut out, hasher: blake3::Hasher::new() };
        let interrupted = Arc::clone(&self.interrupted);
        let result = self.conn.read_body_into(&mut sink, &mut |_| !interrupted.load(Ordering::SeqCst));
        match result {
            Ok(_) => {}
            Err(BodyError::Write(e)) => return Err(ClientError::Local(format!("cannot write output: {e}"))),
            Err(BodyError::Read(e)) => return Err(e),
            Err(BodyError::Cancelled { remaining }) => {
                self.abandon_body(remaining)?;
                return Err(ClientError::Cancelled(String::new()));
            }
        }
        let digest = Digest(*sink.hasher.finalize().as_bytes());
        out.flush().map_err(|e| ClientError::Local(format!("cannot write output: {e}")))?;
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

    fn reconnect(&mut self) -> Result<(), ClientError> {
        // Closed first, so the old session is usually gone before the new one
        // arrives and this client is not told of its own departure.
        self.conn.close();
        let previous = self.chosen_name.clone().unwrap_or_else(|| self.greeting.name.clone());
        let (conn, greeting) = (self.opener)(Some(previous))?;
        self.conn = conn;
        self.greeting = greeting;
        if let Some(nick) = self.chosen_name.clone() {
            self.text_request(&Request::Name(nick.clone()))?;
            self.greeting.name = escape(&nick).into_owned();
        }
        Ok(())
    }

    fn put(&mut self, local: &Path, remote: Option<&str>) -> Result<String, ClientError> {
        let local_err = |what: &str, e: io::Error| ClientError::Local(format!("{what} '{}': {e}", local.display()));
        let remote = match remote {
            Some(r) => r.to_string(),
            None => local
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    ClientError::Usage(format!(
                        "put: '{}' has no usable file name; give a remote name",
                        local.display()
                    ))
                })?
                .to_string(),
        };
        let mut file = File::open(local).map_err(|e| local_err("cannot open", e))?;
        let meta = file.metadata().map_err(|e| local_err("cannot read", e))?;
        if !meta.is_file() {
            return Err(ClientError::Local(format!("'{}' is not a regular file", local.display())));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(&mut file).map_err(|e| local_err("cannot read", e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| local_err("cannot read", e))?;
        let size = meta.len();
        let digest = Digest(*hasher.finalize().as_bytes());
        self.conn.send(&Request::Put { size, digest, name: remote.clone() })?;
        match self.conn.read_reply_header()? {
            Header::Ok { len: 0, .. } => {}
            other => return Err(unexpected(&other)),
        }
        let started = Instant::now();
        let mut progress = Progress::new(self.settings.progress, "put", &remote, size, 0);
        let mut sent = 0;
        while sent < size {
            if self.interrupted.load(Ordering::SeqCst) {
                progress.abandon();
                // The server waits for the rest of the bytes; only a new
                // connection gets out of that. It discards the partial upload.
                self.reconnect()?;
                return Err(ClientError::Cancelled(format!(": upload of '{}' abandoned", escape(&remote))));
            }
            let n = common::sendfile::send_file(self.conn.upload_sink(), &mut file, UPLOAD_CHUNK.min(size - sent))
                .map_err(|e| ClientError::connection(&format!("uploading '{}'", local.display()), e))?;
            if n == 0 {
                // The file shrank while being sent: the server waits for more
                // bytes than there are, so the session cannot go on.
                return Err(ClientError::Connection(format!("'{}' shrank while being sent", local.display())));
            }
            sent += n;
            progress.set(sent);
        }
        progress.finish();
        let body = match self.conn.read_reply_header()? {
            Header::Ok { len, .. } => self.conn.read_text_body(len)?,
            other => return Err(unexpected(&other)),
        };
        Ok(format!("{} ({})\n", escape(body.trim_end()), rate(size, started)))
    }
}

/// A listing as a table (size, modified, name; folders end in `/`) or JSON lines.
fn format_entries(entries: &[ListEntry], json: bool) -> String {
    let mut out = String::new();
    for e in entries {
        if json {
            let kind = if e.kind == ListEntryKind::Dir { "dir" } else { "file" };
            let line = json!({ "name": e.name, "type": kind, "size": e.size, "modified": e.modified });
            out.push_str(&format!("{line}\n"));
        } else {
            let (size, slash) = match e.kind {
                ListEntryKind::File => (e.size.to_string(), ""),
                ListEntryKind::Dir => ("-".to_string(), "/"),
            };
            out.push_str(&format!("{size:>12}  {}  {}{slash}\n", escape(&e.modified), escape(&e.name)));
        }
    }
    out
}

/// `lls`: a local folder as a table.
fn local_listing(dir: &str) -> Result<String, ClientError> {
    let local_err = |e: io::Error| ClientError::Local(format!("lls: '{dir}': {e}"));
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(local_err)? {
        let entry = entry.map_err(local_err)?;
        let Ok(meta) = fs::metadata(entry.path()) else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = if meta.is_dir() { ListEntryKind::Dir } else { ListEntryKind::File };
        let modified = meta.modified().map(rfc3339).unwrap_or_default();
        entries.push(ListEntry { kind, size: meta.len(), modified, name });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(format_entries(&entries, false))
}

fn print(out: &mut dyn Write, text: &str) -> Result<(), ClientError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| ClientError::Local(format!("cannot write output: {e}")))
}

fn unexpected(header: &Header) -> ClientError {
    ClientError::Connection(format!("unexpected reply {}", escape(header.encode().trim_end())))
}

fn current_dir() -> Result<PathBuf, ClientError> {
    std::env::current_dir().map_err(|e| ClientError::Local(format!("cannot read the local folder: {e}")))
}

fn rate(bytes: u64, since: Instant) -> String {
    format!("{:.1} MB/s", bytes as f64 / since.elapsed().as_secs_f64().max(1e-9) / 1e6)
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Local files named by `put` words, globs expanded.
fn expand_local(words: &[String]) -> Result<Vec<PathBuf>, ClientError> {
    let mut files = Vec::new();
    for word in words {
        if !is_glob(word) {
            files.push(PathBuf::from(word));
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

/// The last component of a remote name, checked to be a plain file name that
/// is safe to create in the download folder.
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

/// `status` text lines as JSON values: the sessions and the departures.
fn parse_status(body: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut sessions = Vec::new();
    let mut departed = Vec::new();
    let mut in_departed = false;
    for line in body.lines() {
        if line == "recently left" {
            in_departed = true;
            continue;
        }
        let Some(fields) = line.strip_prefix("  ") else { continue };
        let parts: Vec<&str> = fields.split("  ").collect();
        if in_departed {
            if let [name, address, left, ..] = parts.as_slice() {
                let left_at = left.strip_prefix("left ").unwrap_or(left);
                departed.push(json!({ "name": name, "address": address, "left_at": left_at }));
            }
        } else if let [name, address, connected, idle, activity @ ..] = parts.as_slice() {
            let (name, you) = match name.strip_suffix(" (you)") {
                Some(name) => (name, true),
                None => (*name, false),
            };
            sessions.push(json!({
                "name": name,
                "you": you,
                "address": address,
                "connected_at": connected.strip_prefix("connected ").unwrap_or(connected),
                "idle_secs": idle.strip_prefix("idle ").map(parse_duration).unwrap_or(0),
                "activity": activity.join("  "),
            }));
        }
    }
    (sessions, departed)
}

/// Reads `1h 02m 03s`, `4m 05s`, `7s` back into seconds.
fn parse_duration(text: &str) -> u64 {
    text.split_whitespace()
        .map(|part| {
            let (number, unit) = part.split_at(part.len().saturating_sub(1));
            let n: u64 = number.parse().unwrap_or(0);
            match unit {
                "h" => n * 3600,
                "m" => n * 60,
                _ => n,
            }
        })
        .sum()
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
    fn status_text_becomes_json() {
        let body = "uptime 1m 05s\nclients 2/3\n  \
            alice (you)  127.0.0.1:5000  connected 2026-11-21T09:00:00Z  idle 1h 02m 03s  get big file.iso 41%\n  \
            Client02  127.0.0.1:5001  connected 2026-11-21T09:01:00Z  idle 7s  idle\n\
            recently left\n  Client01  127.0.0.1:4999  left 2026-11-21T08:59:00Z\n";
        let (sessions, departed) = parse_status(body);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0]["name"], "alice");
        assert_eq!(sessions[0]["you"], true);
        assert_eq!(sessions[0]["idle_secs"], 3723);
        assert_eq!(sessions[0]["activity"], "get big file.iso 41%");
        assert_eq!(sessions[1]["connected_at"], "2026-11-21T09:01:00Z");
        assert_eq!(departed[0]["left_at"], "2026-11-21T08:59:00Z");
    }

    #[test]
    fn only_plain_base_names_become_local_files() {
        assert_eq!(local_base_name("docs/a.txt").unwrap(), "a.txt");
        for bad in ["", "..", "a/..", ".bashrc", "x/\u{1b}[2J", "a\\b"] {
            assert!(local_base_name(bad).is_err(), "{bad:?}");
        }
    }
}
