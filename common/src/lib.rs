//! The wire protocol spoken between `file-server` and `file-client`, and the
//! error types both sides branch on. Pure code, no sockets or threads, so
//! every rule here is unit-tested on bytes alone; the exceptions are
//! [`sendfile`], the zero-copy file sending both sides use, [`tls`], the
//! TLS stream both sides share between their reading and writing threads,
//! and [`transport`], the connection over either.
//!
//! A session is a sequence of request lines from the client, each answered by
//! exactly one reply; the server may also send events between replies. The
//! whole format is written down in `docs/PROTOCOL.md`.
//!
//! # Layout
//! - [`request`]: [`Request`], one line from the client, with `parse`/`encode`.
//! - [`reply`]: [`Header`], the first line of everything the server sends, the
//!   [`Code`] of an error, [`Event`], a notice with its fields, and
//!   [`ListEntry`], one line of a `list` body.
//! - [`status`]: [`Status`], the server's state as data (`info`) and as text (`status`).
//! - [`pace`]: [`pace::Pace`], a transfer's rate limit (`--limit-rate`, `--max-rate-per-client`).
//! - [`path`]: [`RemotePath`], a name a client asked for, checked so it can
//!   only ever name something inside the shared folder.
//! - [`digest`]: [`Digest`], the BLAKE3 hash carried in `get` and `put`.
//! - [`nick`]: the rules for display names chosen with `name`.
//! - [`text`]: escaping server text for a terminal, parsing sizes such as `10M`,
//!   durations for people, percent-encoded field values.
//! - [`sendfile`]: a file's bytes to a socket without a copy (`get`, `put`).
//! - [`tls`]: [`tls::TlsStream`], a TLS connection one reading and one writing
//!   thread share, and certificate fingerprints as `openssl` prints them.
//! - [`transport`]: [`transport::Transport`], the byte stream (plain TCP or
//!   TLS) a session runs over on either side, and [`transport::is_timeout`].

#![forbid(unsafe_code)]

pub mod digest;
pub mod nick;
pub mod pace;
pub mod path;
pub mod reply;
pub mod request;
pub mod sendfile;
pub mod status;
pub mod text;
pub mod tls;
pub mod transport;

pub use digest::Digest;
pub use nick::{validate_nick, NickError};
pub use path::{PathError, RemotePath};
pub use reply::{Code, Event, Header, HeaderError, ListEntry, ListEntryKind};
pub use request::{Request, RequestError};
pub use status::Status;

/// Version announced in the greeting (`proto=1`); bumped on incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the server accepts, in bytes, without its line ending.
pub const MAX_LINE_LEN: usize = 4096;

/// Longest header line a client accepts from a server, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;

/// The port both programs use when none is given.
pub const DEFAULT_PORT: u16 = 12345;
