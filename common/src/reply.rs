//! What the server sends: every message starts with one header line.
//!
//! - `OK <len> [key=value ...]` then exactly `<len>` bytes of body;
//! - `ERR <code> <message>`, no body;
//! - `EVT <len> [key=value ...]` then `<len>` bytes: a notice the server
//!   sends on its own, always between replies, never inside one; presence
//!   notices carry fields (`event=left name=alice`) a program can match.

use std::fmt;

use crate::text::escape;
use crate::Digest;

/// The number in an `ERR` line, as in HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400: the request could not be understood.
    BadRequest,
    /// 401: log in first, or the login was refused.
    Unauthorized,
    /// 403: understood but not allowed (outside the share, uploads off).
    Forbidden,
    /// 404: no such file or folder.
    NotFound,
    /// 408: a request line did not arrive in time.
    Timeout,
    /// 409: the name exists already.
    Exists,
    /// 413: larger than the server accepts.
    TooLarge,
    /// 429: too many requests of a kind in a short time.
    TooMany,
    /// 499: the client cancelled the transfer (as nginx logs it).
    Cancelled,
    /// 500: the server failed.
    Internal,
    /// 507: the server's disk is full.
    InsufficientStorage,
    /// 503: the server is full or shutting down.
    Unavailable,
    /// A code this version does not know.
    Other(u16),
}

impl Code {
    /// The number on the wire.
    pub fn number(self) -> u16 {
        match self {
            Code::BadRequest => 400,
            Code::Unauthorized => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::Timeout => 408,
            Code::Exists => 409,
            Code::TooLarge => 413,
            Code::TooMany => 429,
            Code::Cancelled => 499,
            Code::Internal => 500,
            Code::InsufficientStorage => 507,
            Code::Unavailable => 503,
            Code::Other(n) => n,
        }
    }

    /// The code for a number read from the wire.
    pub fn from_number(n: u16) -> Code {
        match n {
            400 => Code::BadRequest,
            401 => Code::Unauthorized,
            403 => Code::Forbidden,
            404 => Code::NotFound,
            408 => Code::Timeout,
            409 => Code::Exists,
            413 => Code::TooLarge,
            429 => Code::TooMany,
            499 => Code::Cancelled,
            500 => Code::Internal,
            507 => Code::InsufficientStorage,
            503 => Code::Unavailable,
            n => Code::Other(n),
        }
    }
}

/// The first line of every message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// Success; `len` bytes of body follow; `fields` carry metadata such as
    /// `blake3=` for a download.
    Ok {
        /// Body length in bytes.
        len: u64,
        /// `key=value` pairs, in order.
        fields: Vec<(String, String)>,
    },
    /// Failure of one request; the session goes on unless the server closes it.
    Err {
        /// What kind of failure.
        code: Code,
        /// One human line, control characters escaped.
        message: String,
    },
    /// An unsolicited notice; `len` bytes of UTF-8 text follow.
    Event {
        /// Body length in bytes.
        len: u64,
        /// `key=value` pairs, in order (see [`Event`]).
        fields: Vec<(String, String)>,
    },
    /// `DATA <len>`: one frame of a framed transfer (after `frames on`);
    /// `len` bytes of the file follow. Sent by the server for a download and
    /// by the client for an upload.
    Data {
        /// Bytes in this frame.
        len: u64,
    },
    /// `END ok [blake3=<hex>]` or `END cancelled`: the last frame of a
    /// framed transfer.
    End {
        /// The sender stopped early (`cancel`, or Ctrl+C on an upload).
        cancelled: bool,
        /// The BLAKE3 of all the bytes, when it comes after them (an upload
        /// announced with `-` for its hash); never with `cancelled`.
        digest: Option<Digest>,
    },
}

/// A header line that is not of the three shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not `OK`, `ERR`, `EVT`, `DATA` or `END`.
    #[error("unknown reply kind in '{0}'")]
    UnknownKind(String),
    /// The length or code is missing or not a number.
    #[error("bad number in reply '{0}'")]
    BadNumber(String),
    /// A field is not `key=value`.
    #[error("bad field '{0}' in reply")]
    BadField(String),
}

impl Header {
    /// An `OK` header with no fields.
    pub fn ok(len: u64) -> Header {
        Header::Ok { len, fields: Vec::new() }
    }

    /// An `ERR` header; the message is escaped to one line.
    pub fn err(code: Code, message: impl AsRef<str>) -> Header {
        Header::Err { code, message: escape(message.as_ref()).into_owned() }
    }

    /// The value of field `key` of an `OK` or `EVT` header.
    pub fn field(&self, key: &str) -> Option<&str> {
        match self {
            Header::Ok { fields, .. } | Header::Event { fields, .. } => find_field(fields, key),
            Header::Err { .. } | Header::Data { .. } | Header::End { .. } => None,
        }
    }

    /// The header line, with its `\n`. Field values must not contain
    /// whitespace; the server only puts numbers, hashes and names it made there.
    pub fn encode(&self) -> String {
        match self {
            Header::Ok { len, fields } => format!("OK {len}{}\n", encode_fields(fields)),
            Header::Err { code, message } => format!("ERR {} {}\n", code.number(), escape(message)),
            Header::Event { len, fields } => format!("EVT {len}{}\n", encode_fields(fields)),
            Header::Data { len } => format!("DATA {len}\n"),
            Header::End { cancelled: true, .. } => "END cancelled\n".to_string(),
            Header::End { cancelled: false, digest: None } => "END ok\n".to_string(),
            Header::End { cancelled: false, digest: Some(digest) } => format!("END ok blake3={digest}\n"),
        }
    }

    /// Reads a header line (without or with its `\n` / `\r\n`).
    ///
    /// # Errors
    /// [`HeaderError`] when the line is none of the three shapes.
    pub fn parse(line: &str) -> Result<Header, HeaderError> {
        let line = line.trim_end_matches(['\n', '\r']);
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        let number = |text: &str| text.parse::<u64>().map_err(|_| HeaderError::BadNumber(escape(line).into_owned()));
        let len_and_fields = || -> Result<(u64, Vec<(String, String)>), HeaderError> {
            let mut words = rest.split(' ');
            let len = number(words.next().unwrap_or(""))?;
            Ok((len, parse_fields(words)?))
        };
        match kind {
            "OK" => len_and_fields().map(|(len, fields)| Header::Ok { len, fields }),
            "ERR" => {
                let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
                let code =
                    u16::try_from(number(code)?).map_err(|_| HeaderError::BadNumber(escape(line).into_owned()))?;
                Ok(Header::Err { code: Code::from_number(code), message: message.to_string() })
            }
            "EVT" => len_and_fields().map(|(len, fields)| Header::Event { len, fields }),
            // Digits only: `u64::from_str` would take `+5`.
            "DATA" if rest.bytes().all(|b| b.is_ascii_digit()) => Ok(Header::Data { len: number(rest)? }),
            "DATA" => Err(HeaderError::BadNumber(escape(line).into_owned())),
            "END" if rest == "ok" => Ok(Header::End { cancelled: false, digest: None }),
            "END" if rest == "cancelled" => Ok(Header::End { cancelled: true, digest: None }),
            "END" => match rest.strip_prefix("ok blake3=").map(str::parse::<Digest>) {
                Some(Ok(digest)) => Ok(Header::End { cancelled: false, digest: Some(digest) }),
                _ => Err(HeaderError::UnknownKind(escape(line).into_owned())),
            },
            _ => Err(HeaderError::UnknownKind(escape(line).into_owned())),
        }
    }
}

fn find_field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn encode_fields(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        debug_assert!(!v.contains(char::is_whitespace), "field {k} has whitespace");
        out.push_str(&format!(" {k}={v}"));
    }
    out
}

fn parse_fields<'a>(words: impl Iterator<Item = &'a str>) -> Result<Vec<(String, String)>, HeaderError> {
    words
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            // Split on spaces only, a word may still hold a tab or a control
            // character: a field never does (found by fuzzing: such a header
            // could not be encoded again, as the client does in an error).
            Some((k, v)) if !k.is_empty() && !w.contains(|c: char| c.is_whitespace() || c.is_control()) => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(HeaderError::BadField(escape(w).into_owned())),
        })
        .collect()
}

/// A notice from the server: its text (one line, with its `\n`) and the
/// fields of its `EVT` header. Chat lines, shutdown and timeout notices have
/// no fields; presence notices have `event=joined|left|renamed`, `name=` (the
/// client's name, the new one for `renamed`), `online=` (joined, left) and
/// `from=` (renamed), so a program never has to read the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The sentence, ending in `\n`.
    pub text: String,
    /// `key=value` pairs of the header.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// A notice without fields; a `\n` is added when missing.
    pub fn notice(text: impl Into<String>) -> Event {
        let mut text = text.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Event { text, fields: Vec::new() }
    }

    /// The same notice with one more field.
    pub fn with(mut self, key: &str, value: impl ToString) -> Event {
        self.fields.push((key.to_string(), value.to_string()));
        self
    }

    /// The value of field `key`.
    pub fn field(&self, key: &str) -> Option<&str> {
        find_field(&self.fields, key)
    }

    /// Header and text, as sent.
    pub fn encode(&self) -> Vec<u8> {
        let header = Header::Event { len: self.text.len() as u64, fields: self.fields.clone() };
        let mut bytes = header.encode().into_bytes();
        bytes.extend_from_slice(self.text.as_bytes());
        bytes
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// Whether a `list` line names a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEntryKind {
    /// A regular file.
    File,
    /// A folder, listed with a trailing `/`.
    Dir,
}

/// One line of a `list` body: `f <size> <modified> <name>` or
/// `d - <modified> <name>/`, the modified time in RFC 3339 (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// File or folder.
    pub kind: ListEntryKind,
    /// Size in bytes; 0 for folders.
    pub size: u64,
    /// Modification time, RFC 3339.
    pub modified: String,
    /// The name within the listed folder, without a trailing `/`.
    pub name: String,
}

impl ListEntry {
    /// The line, with its `\n`.
    pub fn encode(&self) -> String {
        match self.kind {
            ListEntryKind::File => format!("f {} {} {}\n", self.size, self.modified, self.name),
            ListEntryKind::Dir => format!("d - {} {}/\n", self.modified, self.name),
        }
    }

    /// Reads one line of a `list` body.
    pub fn parse(line: &str) -> Option<ListEntry> {
        let mut parts = line.trim_end_matches(['\n', '\r']).splitn(4, ' ');
        let (kind, size, modified, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let (kind, size, name) = match kind {
            "f" => (ListEntryKind::File, size.parse().ok()?, name),
            "d" => (ListEntryKind::Dir, 0, name.strip_suffix('/')?),
            _ => return None,
        };
        Some(ListEntry { kind, size, modified: modified.to_string(), name: name.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let cases = [
            Header::ok(0),
            Header::Ok { len: 1 << 40, fields: vec![("blake3".into(), "ab".repeat(32)), ("size".into(), "9".into())] },
            Header::err(Code::NotFound, "no such file 'x y.txt'"),
            Header::err(Code::Other(418), "teapot"),
            Header::Event { len: 17, fields: Vec::new() },
            Header::Event { len: 9, fields: vec![("event".into(), "left".into()), ("name".into(), "bob".into())] },
            Header::Data { len: 4 << 20 },
            Header::End { cancelled: false, digest: None },
            Header::End { cancelled: false, digest: Some(Digest([7; 32])) },
            Header::End { cancelled: true, digest: None },
        ];
        for h in cases {
            assert_eq!(Header::parse(&h.encode()), Ok(h.clone()), "{h:?}");
        }
    }

    #[test]
    fn err_message_is_one_line() {
        let h = Header::err(Code::BadRequest, "bad\nline\x1b[0m");
        let text = h.encode();
        assert_eq!(text.matches('\n').count(), 1);
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn fields_are_found_by_key() {
        let h = Header::parse("OK 5 proto=1 name=Client01\r\n").unwrap();
        assert_eq!(h.field("name"), Some("Client01"));
        assert_eq!(h.field("nope"), None);
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        assert!(matches!(Header::parse("HELLO"), Err(HeaderError::UnknownKind(_))));
        assert!(matches!(Header::parse("OK"), Err(HeaderError::BadNumber(_))));
        assert!(matches!(Header::parse("OK -1"), Err(HeaderError::BadNumber(_))));
        assert!(matches!(Header::parse("OK 99999999999999999999999"), Err(HeaderError::BadNumber(_))));
        assert!(matches!(Header::parse("ERR x nope"), Err(HeaderError::BadNumber(_))));
        assert!(matches!(Header::parse("ERR 70000 big"), Err(HeaderError::BadNumber(_))));
        assert!(matches!(Header::parse("OK 1 junk"), Err(HeaderError::BadField(_))));
        assert!(matches!(Header::parse("OK 1 a=b\tc"), Err(HeaderError::BadField(_))));
        assert!(matches!(Header::parse("EVT 1 a=\u{1}"), Err(HeaderError::BadField(_))));
        assert!(matches!(Header::parse("OK 1 k\u{85}=v"), Err(HeaderError::BadField(_))));
        assert!(matches!(Header::parse("EVT"), Err(HeaderError::BadNumber(_))));
        for bad in ["DATA", "DATA +5", "DATA 1 2", "DATA x"] {
            assert!(matches!(Header::parse(bad), Err(HeaderError::BadNumber(_))), "{bad}");
        }
        assert!(matches!(Header::parse("END maybe"), Err(HeaderError::UnknownKind(_))));
        assert!(matches!(Header::parse("END"), Err(HeaderError::UnknownKind(_))));
    }

    #[test]
    fn events_encode_their_fields_and_only_presence_ones_have_any() {
        let plain = Event::notice("server shutting down");
        assert_eq!(plain.encode(), b"EVT 21\nserver shutting down\n");
        let left = Event::notice("bob left (1 online)").with("event", "left").with("name", "bob").with("online", 1);
        assert_eq!(left.encode(), b"EVT 20 event=left name=bob online=1\nbob left (1 online)\n");
        let header = Header::parse("EVT 20 event=left name=bob online=1\n").unwrap();
        assert_eq!(header.field("event"), Some("left"));
        assert_eq!(header.field("online"), Some("1"));
    }

    #[test]
    fn list_entries_round_trip() {
        let file = ListEntry {
            kind: ListEntryKind::File,
            size: 42,
            modified: "2026-11-21T09:00:00Z".into(),
            name: "a name with spaces.txt".into(),
        };
        let dir = ListEntry {
            kind: ListEntryKind::Dir,
            size: 0,
            modified: "2026-11-21T09:00:00Z".into(),
            name: "docs".into(),
        };
        for e in [file, dir] {
            assert_eq!(ListEntry::parse(&e.encode()), Some(e.clone()));
        }
        assert_eq!(ListEntry::parse("x 1 2 3"), None);
        assert_eq!(ListEntry::parse("f notanumber t n"), None);
        assert_eq!(ListEntry::parse("f 1"), None);
    }
}
