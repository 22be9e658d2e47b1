//! A connected client: the [`Link`] to the server, the local [`Settings`]
//! and the remote folder, and [`Session::execute`], which parses one line
//! the user typed and runs it. Names are resolved against the remote folder
//! and globs expanded here; the transfers run in a narrow
//! [`Transfers`] context: [`crate::download`] (`get`, `cat`),
//! [`crate::upload`] (`put`), [`crate::tree`] (`get -r`, `put -r`);
//! [`crate::local`] has `lls`, `lcd`, `lpwd`; what they print is shaped in
//! [`crate::render`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::text::{escape, escape_multiline};
use common::{Code, ListEntry, ListEntryKind, Request, Status};

use crate::command::{help_text, is_glob, Command};
use crate::connection::{Connection, Greeting};
use crate::download::LocalTarget;
use crate::error::ClientError;
use crate::link::{Link, Opener, Transfers};
use crate::part::local_base_name;
use crate::render::{self, print, TerminalText};
pub use crate::settings::Settings;
use crate::upload::expand_local;

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

/// The name an upload of `local` takes when none is given: its file name.
fn local_file_name(local: &std::path::Path) -> Result<String, ClientError> {
    local.file_name().and_then(|n| n.to_str()).map(str::to_string).ok_or_else(|| {
        ClientError::Usage(format!("put: '{}' has no usable file name; give a remote name", local.display()))
    })
}

/// Whether to go on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// The user said `exit`; the server said goodbye.
    Exit,
}

/// A connected client: the link to the server, the local settings and the
/// remote folder names are relative to.
pub struct Session {
    link: Link,
    settings: Settings,
    /// The remote folder names are relative to (`cd`); empty for the top.
    cwd: String,
}

impl Session {
    /// Wraps an open connection; `opener` reconnects when a cancelled
    /// transfer leaves the connection unusable.
    pub fn new(conn: Connection, greeting: Greeting, settings: Settings, opener: Opener) -> Session {
        Session { link: Link::new(conn, greeting, opener), settings, cwd: String::new() }
    }

    /// Set this (from a Ctrl+C handler) to cancel the transfer in progress.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.link.interrupt_flag()
    }

    /// What a transfer runs with: the link and the settings.
    fn transfers(&mut self) -> Transfers<'_> {
        Transfers { link: &mut self.link, settings: &self.settings }
    }

    /// `Client02@127.0.0.1:12345> `, with the remote folder once `cd` left
    /// the top: `Client02@127.0.0.1:12345:/docs> `.
    pub fn prompt(&self) -> String {
        if self.cwd.is_empty() {
            format!("{}@{}> ", self.link.name(), self.link.peer())
        } else {
            format!("{}@{}:/{}> ", self.link.name(), self.link.peer(), escape(&self.cwd))
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
        self.link.begin_command();
        let command = Command::parse(line)?;
        if command.needs_server() && self.link.needs_reconnect() {
            if matches!(command, Command::Exit) {
                return Ok(Flow::Exit);
            }
            self.link.reconnect()?;
            eprintln!("reconnected to {} as {}", self.link.peer(), self.link.name());
        }
        let result = self.run(command, out);
        // A connection that failed mid-reply is out of step: the next command starts over.
        if result.as_ref().is_err_and(|e| matches!(e, ClientError::Connection(_))) {
            self.link.break_off();
        }
        result
    }

    fn run(&mut self, command: Command, out: &mut dyn Write) -> Result<Flow, ClientError> {
        match command {
            Command::Nothing => {}
            Command::Help(command) => self.say(out, &help_text(command.as_deref())?)?,
            Command::Exit => {
                self.link.conn().expect_close();
                self.link.text_request(&Request::Exit)?;
                return Ok(Flow::Exit);
            }
            Command::Status => self.status(out)?,
            Command::List { dir, bytes } => {
                // Printed as the entries arrive: a huge folder costs no memory.
                let sizes = self.sizes(bytes);
                let (dir, pattern) = self.list_target(&dir)?;
                let mut failed = None;
                self.link.each_entry(&dir, &mut |entry| {
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
            Command::Get { recursive: true, force, mirror, names, .. } => {
                for name in names {
                    let root = self.remote_path(&name)?;
                    self.transfers().get_tree(&name, &root, force, mirror, out)?;
                }
            }
            Command::Get { force, resume, mut names, .. } => {
                let local = self.local_target(&mut names)?;
                let remote = self.expand_remote(&names)?;
                if remote.len() > 1 && local.as_ref().is_some_and(|l| l.base.is_some()) {
                    return Err(ClientError::Usage("get: several files go into a local folder, not one name".into()));
                }
                for name in remote {
                    let report = self.transfers().get(&name, local.as_ref(), force, resume)?;
                    print(out, &report)?;
                }
            }
            Command::Cat(names) => {
                for name in self.expand_remote(&names)? {
                    if self.settings.terminal {
                        let mut safe = TerminalText::new(out);
                        let result = self.transfers().cat(&name, &mut safe);
                        safe.finish().map_err(|e| ClientError::output(&e))?;
                        result?;
                    } else {
                        self.transfers().cat(&name, out)?;
                    }
                }
            }
            Command::Put { recursive: true, force, mirror, locals, remote, .. } => {
                for local in &locals {
                    let (local_root, own_name) = crate::tree::local_folder(local)?;
                    let name = remote.clone().unwrap_or(own_name);
                    if name.is_empty() {
                        return Err(ClientError::Usage("put -r: give the remote folder's name".into()));
                    }
                    let root = self.remote_path(&name)?;
                    self.transfers().put_tree(local, &local_root, &root, force, mirror, out)?;
                }
            }
            Command::Put { force, resume, mut locals, mut remote, .. } => {
                let how = crate::command::PutHow { replace: force, resume };
                // `put a.txt inbox`, `put *.txt inbox/`: into a folder on the server, as scp and cp do.
                let folder = match remote.take() {
                    Some(r) if r.ends_with('/') || self.link.is_remote_dir(&self.remote_path(&r)?)? => Some(r),
                    Some(r) => {
                        remote = Some(r);
                        None
                    }
                    None => self.folder_last(&mut locals)?,
                };
                for file in expand_local(&locals)? {
                    let remote = match (&folder, &remote) {
                        (Some(dir), _) => {
                            self.remote_path(&format!("{}/{}", dir.trim_end_matches('/'), local_file_name(&file)?))?
                        }
                        (None, Some(remote)) => self.remote_path(remote)?,
                        (None, None) => self.remote_path(&local_file_name(&file)?)?,
                    };
                    let report = self.transfers().put(&file, &remote, how)?;
                    print(out, &report)?;
                }
            }
            Command::Mkdir { parents: false, dir } => {
                let dir = self.remote_path(&dir)?;
                self.remote(&Request::Mkdir(dir), out)?;
            }
            Command::Mkdir { parents: true, dir } => {
                // Each folder on the way that is not there yet, as mkdir -p.
                let dir = self.remote_path(&dir)?;
                let mut so_far = String::new();
                for part in dir.split('/') {
                    so_far = if so_far.is_empty() { part.to_string() } else { format!("{so_far}/{part}") };
                    if !self.link.is_remote_dir(&so_far)? {
                        self.remote(&Request::Mkdir(so_far.clone()), out)?;
                    }
                }
            }
            Command::Rm { recursive, names } => {
                for name in self.expand_remote_any(&names, recursive)? {
                    let request = if recursive && self.link.is_remote_dir(&name)? {
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
                if self.link.is_remote_dir(&to)? {
                    let base = from.rsplit('/').next().unwrap_or(&from);
                    to = if to.is_empty() { base.to_string() } else { format!("{to}/{base}") };
                }
                self.remote(&Request::Move { from, to, replace: force }, out)?;
            }
            Command::Hash(names) => {
                for name in self.expand_remote(&names)? {
                    let body = self.link.text_request(&Request::Hash(name.clone()))?;
                    // Named as seen from the remote folder, so `b3sum -c` runs
                    // in a local copy of it.
                    let hex = body.split_whitespace().next().unwrap_or_default();
                    let prefix = format!("{}/", self.cwd);
                    let shown = if self.cwd.is_empty() { &name } else { name.strip_prefix(&prefix).unwrap_or(&name) };
                    if self.settings.json {
                        let hash = serde_json::json!({ "type": "hash", "name": shown, "blake3": hex });
                        print(out, &render::json_line(&hash))?;
                    } else {
                        self.show_reply(&format!("{hex}  {shown}\n"), out)?;
                    }
                }
            }
            Command::Cd(dir) => {
                let target = match dir {
                    Some(dir) => self.remote_path(&dir)?,
                    None => String::new(),
                };
                if !target.is_empty() && !self.link.is_remote_dir(&target)? {
                    return Err(ClientError::Remote {
                        code: common::Code::NotFound,
                        message: format!("no folder '/{}'", escape(&target)),
                    });
                }
                self.cwd = target;
            }
            Command::Pwd if self.settings.json => {
                print(out, &render::json_line(&serde_json::json!({ "type": "pwd", "path": format!("/{}", self.cwd) })))?
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

    /// Remote names with globs expanded (in their last component).
    pub(crate) fn expand_remote(&mut self, words: &[String]) -> Result<Vec<String>, ClientError> {
        // Only names that are safe as local file names are taken from the listing.
        let usable =
            |e: &ListEntry| e.kind == ListEntryKind::File && local_base_name(&e.name).is_ok_and(|base| base == e.name);
        self.expand_remote_with(words, &usable)
    }

    /// Remote names with globs expanded to files, and folders too with
    /// `folders` (`rm -r`).
    pub(crate) fn expand_remote_any(&mut self, words: &[String], folders: bool) -> Result<Vec<String>, ClientError> {
        self.expand_remote_with(words, &|e: &ListEntry| e.kind == ListEntryKind::File || folders)
    }

    /// Remote names relative to the share's top (see
    /// [`Session::remote_path`]), a glob in the last part expanded to the
    /// entries `keep` takes.
    fn expand_remote_with(
        &mut self,
        words: &[String],
        keep: &dyn Fn(&ListEntry) -> bool,
    ) -> Result<Vec<String>, ClientError> {
        let mut names = Vec::new();
        for word in words {
            if !is_glob(word) {
                names.push(self.remote_path(word)?);
                continue;
            }
            let (dir, pattern) = word.rsplit_once('/').unwrap_or(("", word));
            if is_glob(dir) {
                return Err(ClientError::Usage(format!("only the last part of '{}' may be a glob", escape(word))));
            }
            let dir = self.remote_path(if dir.is_empty() && word.starts_with('/') { "/" } else { dir })?;
            let matcher = glob::Pattern::new(pattern)
                .map_err(|e| ClientError::Usage(format!("bad glob '{}': {e}", escape(word))))?;
            let before = names.len();
            // Only matches are kept, so a huge folder costs no memory.
            self.link.each_entry(&dir, &mut |entry| {
                if keep(&entry) && matcher.matches(&entry.name) {
                    names.push(if dir.is_empty() { entry.name } else { format!("{dir}/{}", entry.name) });
                }
            })?;
            if names.len() == before {
                let message = format!("no files match '{}'", escape(word));
                return Err(ClientError::Remote { code: Code::NotFound, message });
            }
        }
        Ok(names)
    }

    /// `get REMOTE LOCAL` (sftp's): with exactly two names, no globs, and
    /// the second not on the server, the second is where the file goes
    /// locally: an existing folder, or a file name (in a folder that
    /// exists). Taken out of `names`.
    fn local_target(&mut self, names: &mut Vec<String>) -> Result<Option<LocalTarget>, ClientError> {
        let [first, second] = names.as_slice() else { return Ok(None) };
        if is_glob(first) || is_glob(second) {
            return Ok(None);
        }
        let remote = self.remote_path(second)?;
        let (parent, base) = remote.rsplit_once('/').unwrap_or(("", &remote));
        let mut on_server = false;
        self.link.each_entry(parent, &mut |entry| on_server |= entry.name == base)?;
        if on_server {
            return Ok(None);
        }
        let local = crate::local::expand_home(second);
        let target = if local.is_dir() || second.ends_with('/') {
            LocalTarget { dir: local, base: None }
        } else {
            let dir =
                local.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), PathBuf::from);
            let base = local.file_name().and_then(|n| n.to_str()).map(str::to_string);
            LocalTarget { dir, base }
        };
        if !target.dir.is_dir() {
            return Err(ClientError::Usage(format!("get: no local folder '{}'", target.dir.display())));
        }
        names.pop();
        Ok(Some(target))
    }

    /// `put A B C DIR`, `put *.txt DIR`: when the last word is no local file
    /// but a folder on the server (or ends with `/`), it is where they go.
    /// Taken out of `locals`.
    fn folder_last(&mut self, locals: &mut Vec<String>) -> Result<Option<String>, ClientError> {
        let Some(last) = locals.last().filter(|_| locals.len() > 1).cloned() else { return Ok(None) };
        if is_glob(&last) || crate::local::expand_home(&last).exists() {
            return Ok(None);
        }
        if last.ends_with('/') || self.link.is_remote_dir(&self.remote_path(&last)?)? {
            locals.pop();
            return Ok(Some(last));
        }
        Ok(None)
    }

    /// A request sent as typed (`name`, `say`, an echo): its reply printed
    /// (with `--json`, its header's fields too: `say`'s `recipients`).
    fn remote(&mut self, request: &Request, out: &mut dyn Write) -> Result<(), ClientError> {
        let (fields, body) = self.link.fields_request(request)?;
        if let Request::Name(nick) = request {
            self.link.named(nick);
        }
        if self.settings.json {
            let mut object = serde_json::Map::new();
            object.insert("type".into(), "reply".into());
            for (key, value) in fields {
                let typed = value.parse::<u64>().map_or_else(|_| value.clone().into(), serde_json::Value::from);
                object.insert(key, typed);
            }
            object.insert("text".into(), body.into());
            return print(out, &render::json_line(&serde_json::Value::Object(object)));
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
        self.link.name()
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
        if let Some(entries) = self.link.cached_listing(dir) {
            return entries.to_vec();
        }
        self.link.list_entries(dir).unwrap_or_default()
    }

    /// `status`: asks for the state as data (`info`) and prints it as the
    /// server's table, or as one JSON object.
    fn status(&mut self, out: &mut dyn Write) -> Result<(), ClientError> {
        let body = self.link.text_request(&Request::Info)?;
        let status = Status::parse(&body)
            .map_err(|e| ClientError::Connection(format!("the server's status cannot be read: {e}")))?;
        if self.settings.json {
            print(out, &render::status_json(&status))
        } else {
            print(out, &escape_multiline(&status.render()))
        }
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
