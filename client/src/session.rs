//! Running commands against a connected server and printing their results.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::text::{escape, escape_multiline};
use common::{Digest, Header, ListEntry, ListEntryKind, Request};

use crate::command::{Command, HELP};
use crate::connection::{BodyError, Connection, Greeting};
use crate::error::ClientError;

/// Whether to go on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// The user said `exit`; the server said goodbye.
    Exit,
}

/// A connected client: the connection plus local settings.
pub struct Session {
    conn: Connection,
    greeting: Greeting,
    download_dir: PathBuf,
}

impl Session {
    /// Wraps an open connection; downloads go to `download_dir`.
    pub fn new(conn: Connection, greeting: Greeting, download_dir: PathBuf) -> Session {
        Session { conn, greeting, download_dir }
    }

    /// `Client02@127.0.0.1:12345> `
    pub fn prompt(&self) -> String {
        format!("{}@{}> ", self.greeting.name, self.conn.peer())
    }

    /// Parses and runs one line of user input, printing its result to `out`.
    ///
    /// # Errors
    /// [`ClientError`] for a failed command; see [`ClientError::ends_session`].
    pub fn execute(&mut self, line: &str, out: &mut impl Write) -> Result<Flow, ClientError> {
        let print = |out: &mut dyn Write, text: &str| {
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| ClientError::Local(format!("cannot write output: {e}")))
        };
        match Command::parse(line)? {
            Command::Nothing => {}
            Command::Help => print(out, HELP)?,
            Command::Exit => {
                self.text_request(&Request::Exit)?;
                return Ok(Flow::Exit);
            }
            Command::Remote(request) => {
                let body = self.text_request(&request)?;
                if let Request::Name(nick) = &request {
                    self.greeting.name = escape(nick).into_owned();
                }
                print(out, &escape_multiline(&body))?;
            }
            Command::List(dir) => {
                let body = self.text_request(&Request::List(dir))?;
                print(out, &format_listing(&body))?;
            }
            Command::Get { force, name } => {
                let report = self.get(&name, force)?;
                print(out, &report)?;
            }
            Command::Put { local, remote } => {
                let report = self.put(&local, remote.as_deref())?;
                print(out, &report)?;
            }
        }
        Ok(Flow::Continue)
    }

    fn text_request(&mut self, request: &Request) -> Result<String, ClientError> {
        self.conn.send(request)?;
        match self.conn.read_reply_header()? {
            Header::Ok { len, .. } => self.conn.read_text_body(len),
            other => Err(ClientError::Connection(format!("unexpected reply {}", escape(other.encode().trim_end())))),
        }
    }

    fn get(&mut self, name: &str, force: bool) -> Result<String, ClientError> {
        // The local name comes from what the user asked for, never from the server.
        let base = local_base_name(name)?;
        let target = self.download_dir.join(base);
        if !force && target.symlink_metadata().is_ok() {
            return Err(ClientError::Local(format!("local file '{}' exists (use get -f to overwrite)", escape(base))));
        }
        let part = self.download_dir.join(format!("{base}.part"));
        self.conn.send(&Request::Get(name.to_string()))?;
        let header = self.conn.read_reply_header()?;
        let (len, expected) = match &header {
            Header::Ok { len, .. } => {
                let digest = header.field("blake3").and_then(|d| d.parse::<Digest>().ok());
                let Some(digest) = digest else {
                    return Err(ClientError::Connection("server's get reply has no valid blake3 field".into()));
                };
                (*len, digest)
            }
            other => {
                return Err(ClientError::Connection(format!("unexpected reply {}", escape(other.encode().trim_end()))))
            }
        };
        let local_err = |what: &str, e: io::Error| ClientError::Local(format!("{what} '{}': {e}", part.display()));
        let file = File::create(&part).map_err(|e| local_err("cannot create", e))?;
        let started = Instant::now();
        let mut sink = HashingWriter { file, hasher: blake3::Hasher::new() };
        match self.conn.read_body_into(len, &mut sink, |_| {}) {
            Ok(_) => {}
            Err(BodyError::Write(e)) => return Err(local_err("cannot write", e)),
            Err(BodyError::Read(e)) => {
                let kept = format!("partial file kept as {}", part.display());
                return Err(ClientError::Connection(format!("downloading '{}': {e}; {kept}", escape(name))));
            }
        }
        if Digest(*sink.hasher.finalize().as_bytes()) != expected {
            let _ = fs::remove_file(&part);
            return Err(ClientError::Local(format!(
                "'{}' arrived corrupted (BLAKE3 mismatch); discarded",
                escape(name)
            )));
        }
        sink.file.sync_all().map_err(|e| local_err("cannot write", e))?;
        drop(sink);
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
        let secs = started.elapsed().as_secs_f64();
        Ok(format!(
            "got '{}' ({len} bytes, {:.1} MB/s, BLAKE3 verified)\n",
            escape(base),
            len as f64 / secs.max(1e-9) / 1e6
        ))
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
            other => {
                return Err(ClientError::Connection(format!("unexpected reply {}", escape(other.encode().trim_end()))))
            }
        }
        let started = Instant::now();
        let sent = io::copy(&mut io::Read::take(&mut file, size), self.conn.upload_sink())
            .map_err(|e| ClientError::connection(&format!("uploading '{}'", local.display()), e))?;
        if sent != size {
            // The file shrank while being sent: the server is waiting for more
            // bytes than we have, so the session cannot go on.
            return Err(ClientError::Connection(format!("'{}' shrank while being sent", local.display())));
        }
        let body = match self.conn.read_reply_header()? {
            Header::Ok { len, .. } => self.conn.read_text_body(len)?,
            other => {
                return Err(ClientError::Connection(format!("unexpected reply {}", escape(other.encode().trim_end()))))
            }
        };
        let secs = started.elapsed().as_secs_f64();
        Ok(format!("{} ({:.1} MB/s)\n", escape(body.trim_end()), size as f64 / secs.max(1e-9) / 1e6))
    }
}

/// The last component of a name the user asked for, checked to be a plain
/// file name that is safe to create in the download folder.
fn local_base_name(name: &str) -> Result<&str, ClientError> {
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if base.is_empty()
        || base == "."
        || base == ".."
        || base.contains(['\\', '\0'])
        || base.chars().any(char::is_control)
    {
        return Err(ClientError::Usage(format!("get: '{}' does not end in a file name", escape(name))));
    }
    Ok(base)
}

/// Writes to the `.part` file and hashes on the way.
struct HashingWriter {
    file: File,
    hasher: blake3::Hasher,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A `list` body as a table: size, modified time, name (folders end in `/`).
fn format_listing(body: &str) -> String {
    let mut out = String::new();
    for line in body.lines() {
        match ListEntry::parse(line) {
            Some(e) => {
                let size = match e.kind {
                    ListEntryKind::File => e.size.to_string(),
                    ListEntryKind::Dir => "-".to_string(),
                };
                let slash = if e.kind == ListEntryKind::Dir { "/" } else { "" };
                out.push_str(&format!("{size:>12}  {}  {}{slash}\n", escape(&e.modified), escape(&e.name)));
            }
            None => out.push_str(&format!("{}\n", escape(line))),
        }
    }
    out
}
