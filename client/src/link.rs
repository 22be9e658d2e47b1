//! The server as a command sees it: the [`Link`] (the connection, and
//! reconnecting with the same name when a cancelled transfer leaves it out
//! of step; text requests; listings, read line by line and kept for
//! completion), and [`Transfers`], the narrow context `get`, `put`, `cat`
//! and the trees run in: the link and the local settings, nothing else.
//! Remote names reach them resolved against the remote folder already.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::text::escape;
use common::{Header, ListEntry, Request};

use crate::connection::{BodyError, BodySink, Connection, Greeting};
use crate::error::ClientError;
use crate::render;
use crate::settings::Settings;

/// Opens a fresh connection, for reconnecting after a cancelled transfer;
/// given the name on the connection being replaced, if any.
pub type Opener = Box<dyn FnMut(Option<String>) -> Result<(Connection, Greeting), ClientError>>;

/// The connection to the server and what keeps it usable.
pub struct Link {
    conn: Connection,
    greeting: Greeting,
    /// The name the user chose, re-taken after a reconnect.
    chosen_name: Option<String>,
    opener: Opener,
    /// The connection failed mid-reply: the next command reconnects.
    broken: bool,
    interrupted: Arc<AtomicBool>,
    listings: HashMap<String, Vec<ListEntry>>,
}

/// What a transfer (`get`, `put`, `cat`, `get -r`, `put -r`) runs with.
pub struct Transfers<'a> {
    /// The server.
    pub link: &'a mut Link,
    /// Where downloads go, progress bars, JSON.
    pub settings: &'a Settings,
}

impl Link {
    /// Wraps an open connection; `opener` opens a new one to reconnect.
    pub fn new(conn: Connection, greeting: Greeting, opener: Opener) -> Link {
        let interrupted = Arc::new(AtomicBool::new(false));
        Link { conn, greeting, chosen_name: None, opener, broken: false, interrupted, listings: HashMap::new() }
    }

    /// The connection, for a transfer's requests and bodies.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The server's address.
    pub fn peer(&self) -> std::net::SocketAddr {
        self.conn.peer()
    }

    /// The name this client has now, escaped.
    pub fn name(&self) -> &str {
        &self.greeting.name
    }

    /// The server took `nick` as this client's name: shown from now on and
    /// taken again after a reconnect.
    pub fn named(&mut self, nick: &str) {
        self.greeting.name = escape(nick).into_owned();
        self.chosen_name = Some(nick.to_string());
    }

    /// A new command begins: Ctrl+C from here on cancels it.
    pub fn begin_command(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }

    /// Whether the connection must be opened again before a request.
    pub fn needs_reconnect(&self) -> bool {
        self.broken || self.conn.has_ended()
    }

    /// The entries of `dir` from its last listing, if kept.
    pub fn cached_listing(&self, dir: &str) -> Option<&[ListEntry]> {
        self.listings.get(dir).map(Vec::as_slice)
    }

    /// The connection failed mid-reply and is out of step: closed, and the
    /// next command starts over.
    pub fn break_off(&mut self) {
        self.broken = true;
        self.conn.close();
    }

    /// Set this (from a Ctrl+C handler) to cancel the transfer in progress.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupted)
    }

    /// True once Ctrl+C was pressed during the current command.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
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

    /// Sends `request` and reads a text reply's body.
    pub(crate) fn text_request(&mut self, request: &Request) -> Result<String, ClientError> {
        self.conn.send(request)?;
        self.read_text_reply()
    }

    /// Sends `request` and reads a text reply: its header's fields and body.
    pub(crate) fn fields_request(&mut self, request: &Request) -> Result<(Vec<(String, String)>, String), ClientError> {
        self.conn.send(request)?;
        match self.conn.read_reply_header()? {
            Header::Ok { len, fields } => Ok((fields, self.conn.read_text_body(len)?)),
            other => Err(render::unexpected(&other)),
        }
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
