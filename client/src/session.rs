//! A connected client: the [`Connection`] plus local settings, and
//! [`Session::execute`], which parses one line the user typed and runs it.
//! The commands live beside it: [`crate::download`] (`get`, `cat`),
//! [`crate::upload`] (`put`), [`crate::local`] (`lls`, `lcd`, `lpwd`); what
//! they print is shaped in [`crate::render`].

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::text::{escape, escape_multiline};
use common::{Header, ListEntry, Request, Status};

use crate::command::{help_text, Command};
use crate::connection::{BodyError, BodySink, Connection, Greeting};
use crate::error::ClientError;
use crate::progress::ProgressMode;
use crate::render::{self, print, TerminalText};

/// `name` as seen from remote folder `cwd`, relative to the share's top;
/// see [`Session::remote_path`].
///
/// # Errors
/// [`ClientError::Usage`] when `..` would leave the share.
pub fn resolve_remote(cwd: &str, name: &str) -> Result<String, ClientError> {
    let joined = match name.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None if cwd.is_empty() => name.to_string(),
        None => format!("{cwd}/{name}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ClientError::Usage(format!("'{}' leads outside the share", escape(name))));
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// Longest line of a listing the client accepts: a 4 KiB name and its
/// size and time.
pub const MAX_LIST_LINE: usize = 4096 + 64;

/// Entries of one folder kept for completion; a bigger folder is listed
/// again when needed rather than held.
pub const CACHED_ENTRIES: usize = 10_000;

/// A [`BodySink`] that hands each complete line (without its `\n`) to a
/// function, holding at most one line of `max` bytes.
struct LineSink<F: FnMut(&[u8])> {
    line: Vec<u8>,
    max: usize,
    each: F,
    /// A line was longer than `max`: the rest of the body was dropped.
    overlong: bool,
}

impl<F: FnMut(&[u8])> LineSink<F> {
    fn new(max: usize, each: F) -> LineSink<F> {
        LineSink { line: Vec::new(), max, each, overlong: false }
    }
}

impl<F: FnMut(&[u8])> BodySink for LineSink<F> {
    fn store(&mut self, buf: Vec<u8>, filled: usize) -> std::io::Result<Vec<u8>> {
        if self.overlong {
            return Ok(buf);
        }
        for piece in buf[..filled].split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(piece);
            if self.line.len() > self.max + 1 {
                self.overlong = true;
                self.line = Vec::new();
                return Ok(buf);
            }
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
                (self.each)(&self.line);
                self.line.clear();
            }
        }
        Ok(buf)
    }
}

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
    /// Where downloads go: `--download-dir` at first, the local folder after `lcd`.
    pub download_dir: PathBuf,
    /// When to draw progress bars.
    pub progress: ProgressMode,
    /// Standard output carries JSON objects only, one per line, each with
    /// a `type` (`--json`).
    pub json: bool,
    /// Standard output is a terminal: `cat` escapes control characters.
    pub terminal: bool,
}

/// Opens a fresh connection, for reconnecting after a cancelled transfer;
/// given the name on the connection being replaced, if any.
pub type Opener = Box<dyn FnMut(Option<String>) -> Result<(Connection, Greeting), ClientError>>;

/// A connected client: the connection plus local settings.
pub struct Session {
    pub(crate) conn: Connection,
    pub(crate) greeting: Greeting,
    /// The name the user chose, re-taken after a reconnect.
    chosen_name: Option<String>,
    pub(crate) settings: Settings,
    pub(crate) interrupted: Arc<AtomicBool>,
    opener: Opener,
    listings: HashMap<String, Vec<ListEntry>>,
    /// The connection failed mid-reply: the next command reconnects.
    broken: bool,
    /// The remote folder names are relative to (`cd`); empty for the top.
    cwd: String,
}

impl Session {
    /// Wraps an open connection; `opener` reconnects when a cancelled
    /// transfer leaves the connection unusable.
    pub fn new(conn: Connection, greeting: Greeting, settings: Settings, opener: Opener) -> Session {
        let interrupted = Arc::new(AtomicBool::new(false));
        let listings = HashMap::new();
        Session {
            conn,
            greeting,
            chosen_name: None,
            settings,
            interrupted,
            opener,
            listings,
            broken: false,
            cwd: String::new(),
        }
    }

    /// Set this (from a Ctrl+C handler) to cancel the transfer in progress.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupted)
    }

    /// True once Ctrl+C was pressed during the current command.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// `Client02@127.0.0.1:12345> `, with the remote folder once `cd` left
    /// the top: `Client02@127.0.0.1:12345:/docs> `.
    pub fn prompt(&self) -> String {
        if self.cwd.is_empty() {
            format!("{}@{}> ", self.greeting.name, self.conn.peer())
        } else {
            format!("{}@{}:/{}> ", self.greeting.name, self.conn.peer(), escape(&self.cwd))
        }
    }

    /// A remote name as typed, made relative to the share's top: relative
    /// to the remote folder (`cd`) unless it starts with `/`; `.` and `..`
    /// resolved here, since the server takes neither.
    ///
    /// # Errors
    /// [`ClientError::Usage`] when `..` would leave the share.
    pub fn remote_path(&self, name: &str) -> Result<String, ClientError> {
        resolve_remote(&self.cwd, name)
    }

    /// Parses and runs one line of user input, printing its result to `out`.
    ///
    /// # Errors
    /// [`ClientError`] for a failed command; see [`ClientError::ends_session`].
    pub fn execute(&mut self, line: &str, out: &mut dyn Write) -> Result<Flow, ClientError> {
        // A Ctrl+C from here on cancels this command, even one pressed while
        // the server is still preparing its reply.
        self.interrupted.store(false, Ordering::SeqCst);
        let command = Command::parse(line)?;
        if command.needs_server() && (self.broken || self.conn.has_ended()) {
            if matches!(command, Command::Exit) {
                return Ok(Flow::Exit);
            }
            self.reconnect()?;
            eprintln!("reconnected to {} as {}", self.conn.peer(), self.greeting.name);
        }
        let result = self.run(command, out);
        // A connection that failed mid-reply is out of step: the next command starts over.
        if result.as_ref().is_err_and(|e| matches!(e, ClientError::Connection(_))) {
            self.broken = true;
            self.conn.close();
        }
        result
    }

    fn run(&mut self, command: Command, out: &mut dyn Write) -> Result<Flow, ClientError> {
        match command {
            Command::Nothing => {}
            Command::Help(command) => self.say(out, &help_text(command.as_deref())?)?,
            Command::Exit => {
                self.conn.expect_close();
                self.text_request(&Request::Exit)?;
                return Ok(Flow::Exit);
            }
            Command::Status => self.status(out)?,
            Command::List { dir, bytes } => {
                // Printed as the entries arrive: a huge folder costs no memory.
                let sizes = self.sizes(bytes);
                let (dir, pattern) = self.list_target(&dir)?;
                let mut failed = None;
                self.each_entry(&dir, &mut |entry| {
                    if pattern.as_ref().is_some_and(|p| !p.matches(&entry.name)) {
                        return;
                    }
                    if failed.is_none() {
                        failed = print(out, &render::entries(std::slice::from_ref(&entry), sizes)).err();
                    }
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            Command::Remote(request) => self.remote(&request, out)?,
            Command::Get { recursive: true, force, names, .. } => {
                for name in names {
                    self.get_tree(&name, force, out)?;
                }
            }
            Command::Get { force, resume, names, .. } => {
                for name in self.expand_remote(&names)? {
                    let report = self.get(&name, force, resume)?;
                    print(out, &report)?;
                }
            }
            Command::Cat(names) => {
                for name in self.expand_remote(&names)? {
                    if self.settings.terminal {
                        let mut safe = TerminalText::new(out);
                        let result = self.cat(&name, &mut safe);
                        safe.finish().map_err(|e| ClientError::output(&e))?;
                        result?;
                    } else {
                        self.cat(&name, out)?;
                    }
                }
            }
            Command::Put { recursive: true, force, locals, remote, .. } => {
                for local in &locals {
                    self.put_tree(local, remote.as_deref(), force, out)?;
                }
            }
            Command::Put { force, resume, locals, remote, .. } => {
                let how = crate::command::PutHow { replace: force, resume };
                self.put_all(&locals, remote.as_deref(), how, out)?;
            }
            Command::Mkdir(dir) => {
                let dir = self.remote_path(&dir)?;
                self.remote(&Request::Mkdir(dir), out)?;
            }
            Command::Rm { recursive, names } => {
                for name in self.expand_remote_any(&names, recursive)? {
                    let request = if recursive && self.is_remote_dir(&name)? {
                        Request::RemoveTree(name)
                    } else {
                        Request::Remove(name)
                    };
                    self.remote(&request, out)?;
                }
            }
            Command::Rmdir(dirs) => {
                for dir in dirs {
                    let dir = self.remote_path(&dir)?;
                    self.remote(&Request::Rmdir(dir), out)?;
                }
            }
            Command::Mv { force, from, to } => {
                let (from, mut to) = (self.remote_path(&from)?, self.remote_path(&to)?);
                // `mv a.txt docs` moves into the folder, as mv(1) does.
                if self.is_remote_dir(&to)? {
                    let base = from.rsplit('/').next().unwrap_or(&from);
                    to = if to.is_empty() { base.to_string() } else { format!("{to}/{base}") };
                }
                self.remote(&Request::Move { from, to, replace: force }, out)?;
            }
            Command::Hash(names) => {
                for name in self.expand_remote(&names)? {
                    let body = self.text_request(&Request::Hash(name.clone()))?;
                    // Named as seen from the remote folder, so `b3sum -c` runs
                    // in a local copy of it.
                    let hex = body.split_whitespace().next().unwrap_or_default();
                    let prefix = format!("{}/", self.cwd);
                    let shown = if self.cwd.is_empty() { &name } else { name.strip_prefix(&prefix).unwrap_or(&name) };
                    self.show_reply(&format!("{hex}  {shown}\n"), out)?;
                }
            }
            Command::Cd(dir) => {
                let target = match dir {
                    Some(dir) => self.remote_path(&dir)?,
                    None => String::new(),
                };
                if !target.is_empty() && !self.is_remote_dir(&target)? {
                    return Err(ClientError::Remote {
                        code: common::Code::NotFound,
                        message: format!("no folder '/{}'", escape(&target)),
                    });
                }
                self.cwd = target;
            }
            Command::Pwd => self.say(out, &format!("/{}\n", escape(&self.cwd)))?,
            Command::Lls(dir) => {
                let sizes = self.sizes(false);
                self.say(out, &crate::local::listing(dir.as_deref().unwrap_or("."), sizes)?)?;
            }
            Command::Lcd(dir) => {
                self.say(out, &crate::local::change_dir(dir.as_deref())?)?;
                // One rule: downloads go to the local folder, wherever `lcd` went.
                self.settings.download_dir = PathBuf::from(".");
            }
            Command::Lpwd => self.say(out, &crate::local::current_dir_line()?)?,
        }
        Ok(Flow::Continue)
    }

    /// A request sent as typed (`name`, `say`, an echo): its reply printed.
    fn remote(&mut self, request: &Request, out: &mut dyn Write) -> Result<(), ClientError> {
        let body = self.text_request(request)?;
        if let Request::Name(nick) = request {
            self.greeting.name = escape(nick).into_owned();
            self.chosen_name = Some(nick.clone());
        }
        self.show_reply(&body, out)
    }

    /// A text reply for people, escaped, or one JSON object with `--json`.
    fn show_reply(&self, body: &str, out: &mut dyn Write) -> Result<(), ClientError> {
        if self.settings.json {
            return print(out, &render::json_line(&serde_json::json!({ "type": "reply", "text": body })));
        }
        print(out, &escape_multiline(body))
    }

    /// True when `path` (relative to the top) is a folder on the server.
    pub(crate) fn is_remote_dir(&mut self, path: &str) -> Result<bool, ClientError> {
        if path.is_empty() {
            return Ok(true);
        }
        let (parent, base) = path.rsplit_once('/').unwrap_or(("", path));
        let mut found = false;
        self.each_entry(parent, &mut |entry| {
            found |= entry.name == base && entry.kind == common::ListEntryKind::Dir;
        })?;
        Ok(found)
    }

    /// What `list ARG` lists: a folder, or the entries of one that match
    /// a glob in the last part (`ls docs/*.txt`).
    fn list_target(&self, arg: &str) -> Result<(String, Option<glob::Pattern>), ClientError> {
        if !crate::command::is_glob(arg) {
            return Ok((self.remote_path(arg)?, None));
        }
        let (dir, pattern) = arg.rsplit_once('/').unwrap_or(("", arg));
        let pattern =
            glob::Pattern::new(pattern).map_err(|e| ClientError::Usage(format!("bad glob '{}': {e}", escape(arg))))?;
        Ok((self.remote_path(if dir.is_empty() && arg.starts_with('/') { "/" } else { dir })?, Some(pattern)))
    }

    /// Takes `nick` as this client's name (`--name`): exactly that name,
    /// never re-read as a command line.
    ///
    /// # Errors
    /// As the server refuses it: taken (`ERR 409`), or not a valid name.
    pub fn take_name(&mut self, nick: &str) -> Result<(), ClientError> {
        self.remote(&Request::Name(nick.to_string()), &mut std::io::sink())
    }

    /// The name this client has now, escaped.
    pub fn name(&self) -> &str {
        &self.greeting.name
    }

    /// How a listing shows sizes: JSON with `--json`; human sizes on a
    /// terminal unless `bytes`; else bytes.
    fn sizes(&self, bytes: bool) -> render::Sizes {
        match (self.settings.json, self.settings.terminal && !bytes) {
            (true, _) => render::Sizes::Json,
            (false, true) => render::Sizes::Human,
            (false, false) => render::Sizes::Bytes,
        }
    }

    /// Text for people (help, local listings): to `out`, or to stderr with
    /// `--json`, where stdout carries JSON objects only.
    fn say(&self, out: &mut dyn Write, text: &str) -> Result<(), ClientError> {
        if self.settings.json {
            eprint!("{text}");
            return Ok(());
        }
        print(out, text)
    }

    /// Entries of a remote folder, from the last `list` of it or fetched now:
    /// for tab completion. Errors give no entries.
    pub fn remote_entries(&mut self, dir: &str) -> Vec<ListEntry> {
        let Ok(dir) = self.remote_path(dir) else { return Vec::new() };
        let dir = dir.as_str();
        if let Some(entries) = self.listings.get(dir) {
            return entries.clone();
        }
        self.list_entries(dir).unwrap_or_default()
    }

    /// Sends `request` and reads a text reply's body.
    pub(crate) fn text_request(&mut self, request: &Request) -> Result<String, ClientError> {
        self.conn.send(request)?;
        self.read_text_reply()
    }

    /// Reads the next reply, a text one, and its body.
    pub(crate) fn read_text_reply(&mut self) -> Result<String, ClientError> {
        match self.conn.read_reply_header()? {
            Header::Ok { len, .. } => self.conn.read_text_body(len),
            other => Err(render::unexpected(&other)),
        }
    }

    pub(crate) fn list_entries(&mut self, dir: &str) -> Result<Vec<ListEntry>, ClientError> {
        let mut entries = Vec::new();
        self.each_entry(dir, &mut |entry| entries.push(entry))?;
        Ok(entries)
    }

    /// Lists `dir`, giving each entry to `each` as its line arrives: the
    /// reply is read in pieces, so its size is not limited, only each
    /// line's. Up to [`CACHED_ENTRIES`] entries are kept for completion.
    pub(crate) fn each_entry(&mut self, dir: &str, each: &mut dyn FnMut(ListEntry)) -> Result<(), ClientError> {
        self.conn.send(&Request::List(dir.to_string()))?;
        match self.conn.read_reply_header()? {
            Header::Ok { .. } => {}
            other => return Err(render::unexpected(&other)),
        }
        let mut cached = Some(Vec::new());
        let mut lines = LineSink::new(MAX_LIST_LINE, |line: &[u8]| {
            let Some(entry) = std::str::from_utf8(line).ok().and_then(ListEntry::parse) else { return };
            if let Some(list) = &mut cached {
                if list.len() < CACHED_ENTRIES {
                    list.push(entry.clone());
                } else {
                    cached = None;
                }
            }
            each(entry);
        });
        self.conn.read_body_into(&mut lines, &mut |_| true).map_err(BodyError::into_client_error)?;
        if lines.overlong {
            return Err(ClientError::Connection(format!("server sent a listing line over {MAX_LIST_LINE} bytes")));
        }
        drop(lines);
        if let Some(entries) = cached {
            self.listings.insert(dir.trim_matches('/').to_string(), entries);
        }
        Ok(())
    }

    /// `status`: asks for the state as data (`info`) and prints it as the
    /// server's table, or as one JSON object.
    fn status(&mut self, out: &mut dyn Write) -> Result<(), ClientError> {
        let body = self.text_request(&Request::Info)?;
        let status = Status::parse(&body)
            .map_err(|e| ClientError::Connection(format!("the server's status cannot be read: {e}")))?;
        if self.settings.json {
            print(out, &render::status_json(&status))
        } else {
            print(out, &escape_multiline(&status.render()))
        }
    }

    /// Starts over on a fresh connection, with the same chosen name: the only
    /// way out of a reply the client will not wait for.
    pub(crate) fn reconnect(&mut self) -> Result<(), ClientError> {
        // Closed first, so the old session is usually gone before the new one
        // arrives and this client is not told of its own departure.
        self.conn.close();
        let previous = self.chosen_name.clone().unwrap_or_else(|| self.greeting.name.clone());
        let (conn, greeting) = (self.opener)(Some(previous))?;
        self.conn = conn;
        self.greeting = greeting;
        self.broken = false;
        if let Some(nick) = self.chosen_name.clone() {
            self.text_request(&Request::Name(nick.clone()))?;
            self.greeting.name = escape(&nick).into_owned();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_remote;

    #[test]
    fn remote_names_are_resolved_against_the_remote_folder() {
        assert_eq!(resolve_remote("", "a.txt").unwrap(), "a.txt");
        assert_eq!(resolve_remote("docs", "a.txt").unwrap(), "docs/a.txt");
        assert_eq!(resolve_remote("docs/x", "../b c.txt").unwrap(), "docs/b c.txt");
        assert_eq!(resolve_remote("docs", "/top.txt").unwrap(), "top.txt");
        assert_eq!(resolve_remote("docs", "..").unwrap(), "");
        assert_eq!(resolve_remote("docs", "./ sp /.").unwrap(), "docs/ sp ");
        assert!(resolve_remote("docs", "../..").is_err());
        assert!(resolve_remote("", "..").is_err());
    }
}
