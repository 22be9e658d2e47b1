//! What the client prints: listings as a table or JSON lines, `status` as
//! JSON, transfer reports. Everything from the server is escaped before it
//! reaches a terminal.

use std::io::Write;
use std::time::{Instant, SystemTime};

use common::status::Status;
use common::text::{escape, escape_multiline, is_unsafe_for_terminal};
use common::{Header, ListEntry, ListEntryKind};
use serde_json::json;

use crate::error::ClientError;

/// One JSON line, with the characters a terminal would act on written as
/// `\uXXXX` escapes: JSON allows C1 controls and bidirectional overrides
/// raw in strings, and a script's output often ends up on a terminal.
pub fn json_line(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if is_unsafe_for_terminal(c) {
            // Only inside strings: JSON's own syntax is plain ASCII.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// How a listing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// A table with sizes in bytes (for scripts, and `list -b`).
    Bytes,
    /// A table with sizes for people (`1.00 GiB`): on a terminal.
    Human,
    /// JSON lines, sizes in bytes.
    Json,
}

/// A listing as a table (size, modified, name; folders end in `/`) or JSON lines.
pub fn entries(entries: &[ListEntry], sizes: Sizes) -> String {
    let mut out = String::new();
    for e in entries {
        if sizes == Sizes::Json {
            let kind = if e.kind == ListEntryKind::Dir { "dir" } else { "file" };
            out.push_str(&json_line(&json!({ "name": e.name, "type": kind, "size": e.size, "modified": e.modified })));
        } else {
            let (size, slash) = match e.kind {
                ListEntryKind::File if sizes == Sizes::Human => (indicatif::BinaryBytes(e.size).to_string(), ""),
                ListEntryKind::File => (e.size.to_string(), ""),
                ListEntryKind::Dir => ("-".to_string(), "/"),
            };
            out.push_str(&format!("{size:>12}  {}  {}{slash}\n", escape(&e.modified), escape(&e.name)));
        }
    }
    out
}

/// `status --json`: one object with `type` `status` (see [`Status::to_json`]).
pub fn status_json(status: &Status) -> String {
    let mut value = status.to_json();
    value["type"] = "status".into();
    json_line(&value)
}

/// Bytes on their way to a terminal (`cat` at the prompt): text passes,
/// control characters and bidirectional controls are written escaped
/// (`\x1b`, `\u{202e}`), bytes that are not UTF-8 as `\xNN`. A character
/// split across two writes is held until its rest arrives.
pub struct TerminalText<'a> {
    out: &'a mut dyn Write,
    /// The start of a character whose rest is still to come.
    pending: Vec<u8>,
}

impl<'a> TerminalText<'a> {
    /// Escapes what is written on its way to `out`.
    pub fn new(out: &'a mut dyn Write) -> TerminalText<'a> {
        TerminalText { out, pending: Vec::new() }
    }

    /// Writes a character left incomplete at the end, as bytes.
    ///
    /// # Errors
    /// As `out`.
    pub fn finish(self) -> std::io::Result<()> {
        let rest: String = self.pending.iter().map(|b| format!("\\x{b:02x}")).collect();
        self.out.write_all(rest.as_bytes())?;
        self.out.flush()
    }
}

impl Write for TerminalText<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut shown = String::with_capacity(self.pending.len());
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    shown.push_str(&escape_multiline(text));
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    shown.push_str(&escape_multiline(std::str::from_utf8(good).expect("valid up to here")));
                    match e.error_len() {
                        Some(n) => {
                            bad[..n].iter().for_each(|b| shown.push_str(&format!("\\x{b:02x}")));
                            rest = &bad[n..];
                        }
                        // Cut short: the rest of the character may come next.
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        self.out.write_all(shown.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes `text` and flushes.
///
/// # Errors
/// [`ClientError::OutputClosed`] when the reader of the output went away,
/// [`ClientError::Local`] for any other failure.
pub fn print(out: &mut dyn Write, text: &str) -> Result<(), ClientError> {
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| ClientError::output(&e))
}

/// A reply the client did not expect here ends the session.
pub fn unexpected(header: &Header) -> ClientError {
    ClientError::Connection(format!("unexpected reply {}", escape(header.encode().trim_end())))
}

/// `12.3 MiB/s` for `bytes` moved since `since`, in the units the progress
/// bar uses.
pub fn rate(bytes: u64, since: Instant) -> String {
    let per_sec = bytes as f64 / since.elapsed().as_secs_f64().max(1e-9);
    format!("{}/s", indicatif::BinaryBytes(per_sec as u64))
}

/// RFC 3339 in UTC to the second, as listings show times.
pub fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::status::{Activity, Departure, SessionStatus};

    #[test]
    fn status_json_has_stable_fields() {
        let status = Status {
            uptime_secs: 65,
            clients: 1,
            max_clients: 3,
            sessions: vec![SessionStatus {
                name: "alice".into(),
                you: true,
                addr: "127.0.0.1:5000".into(),
                connected_at: "2026-11-21T09:00:00Z".into(),
                idle_secs: 3723,
                activity: Activity::Get { file: "big file.iso".into(), size: 100, done: 41 },
                instance: None,
            }],
            departed: vec![Departure {
                name: "Client01".into(),
                addr: "127.0.0.1:4999".into(),
                left_at: "2026-11-21T08:59:00Z".into(),
                instance: None,
            }],
            web: Vec::new(),
            tftp: Vec::new(),
        };
        let value: serde_json::Value = serde_json::from_str(&status_json(&status)).unwrap();
        assert_eq!(value["uptime_secs"], 65);
        assert_eq!(value["max_clients"], 3);
        assert_eq!(value["sessions"][0]["name"], "alice");
        assert_eq!(value["sessions"][0]["you"], true);
        assert_eq!(value["sessions"][0]["idle_secs"], 3723);
        assert_eq!(value["sessions"][0]["activity"], "get big file.iso 41%");
        assert_eq!(value["sessions"][0]["doing"]["operation"], "get");
        assert_eq!(value["sessions"][0]["doing"]["file"], "big file.iso");
        assert_eq!(value["recently_left"][0]["left_at"], "2026-11-21T08:59:00Z");
    }

    #[test]
    fn terminal_text_escapes_controls_even_across_writes() {
        let mut out = Vec::new();
        let mut safe = TerminalText::new(&mut out);
        safe.write_all(b"ok \x1b]0;title\x07 caf\xc3").unwrap();
        safe.write_all(b"\xa9 \xff\xe2\x80").unwrap();
        safe.write_all(b"\xaetxt\ttab\n\xc2\x9b31m red\n\xe2").unwrap();
        safe.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok \\x1b]0;title\\x07 café \\xff\\u{202e}txt\ttab\n\\x9b31m red\n\\xe2"
        );
    }

    #[test]
    fn json_lines_escape_what_a_terminal_would_act_on() {
        let line = json_line(&json!({ "name": "evil\u{202e}txt.exe\u{9b}2J" }));
        assert_eq!(line, "{\"name\":\"evil\\u202etxt.exe\\u009b2J\"}\n");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["name"], "evil\u{202e}txt.exe\u{9b}2J");
    }

    #[test]
    fn names_are_escaped_in_tables_but_not_in_json() {
        let entry = ListEntry {
            kind: ListEntryKind::File,
            size: 5,
            modified: "2026-11-21T09:00:00Z".into(),
            name: "evil\u{1b}[2J".into(),
        };
        assert_eq!(
            entries(std::slice::from_ref(&entry), Sizes::Bytes),
            "           5  2026-11-21T09:00:00Z  evil\\x1b[2J\n"
        );
        assert!(entries(std::slice::from_ref(&entry), Sizes::Json).contains("\"name\":\"evil\\u001b[2J\""));
        let big = ListEntry { size: 3 << 30, ..entry };
        assert_eq!(entries(&[big], Sizes::Human), "    3.00 GiB  2026-11-21T09:00:00Z  evil\\x1b[2J\n");
    }
}
