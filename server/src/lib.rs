//! `file-server`: shares one folder over TCP (or TLS) with a small line protocol
//! (see `docs/PROTOCOL.md`), one thread per client, at most `--max-clients`
//! clients at once; the next one is told `ERR 503 Server is full`.
//!
//! The binary (`src/bin/file-server.rs`) parses arguments, binds, builds a
//! [`Service`] (every door: the line protocol, the web side, TFTP) and runs
//! it; tests do the same in-process or run the binary.
//!
//! A request travels down this list: [`server`] accepts the connection and
//! wraps it in a [`transport`]; [`session`] reads its request lines
//! ([`connection`]), hands each to [`cmd`], which works on the [`repo`] and
//! [`presence`] and answers with a typed outcome, and the session sends that
//! reply through its [`writer`].
//!
//! # Layout
//! - [`service`]: [`Service`], every door of one server on one share.
//! - [`server`]: [`Server`], the line protocol's door: the accept loop (at a
//!   lower priority than the sessions), admission and the graceful shutdown
//!   of its sessions.
//! - [`config`]: [`Config`], the settings, and [`Shared`], what every session reaches.
//! - [`transport`]: the byte stream a session runs over (plain TCP or TLS),
//!   its `sendfile` fast path, and the [`transport::Closer`] shutdown holds.
//! - [`accounts`]: `--users`: accounts with Argon2 hashes and rights, the
//!   users file `adduser` writes, the penalties on failed logins (per source
//!   and per account) and the threads passwords are checked on.
//! - [`identity`]: the TLS certificate and key (`--tls-cert`, or self-signed
//!   and kept in the state folder) and its fingerprint.
//! - [`announce`]: being found on the LAN (mDNS / DNS-SD), `--name`, `--no-announce`.
//! - [`proxy`]: `--proxy-protocol`: the real client behind a balancer, from
//!   its PROXY header (v1 or v2); forged headers refused.
//! - [`cluster`]: `--cluster`: several instances as one server on Redis,
//!   through the [`slots::Cap`] and [`presence::Bus`] seams.
//! - [`slots`]: the caps every door admits against ([`slots::Caps`]: a
//!   total and a per-address share), as RAII slot tokens.
//! - [`logs`]: log lines a peer could make happen many times a second,
//!   written at most so often and the rest counted.
//! - [`pool`]: the fixed set of session threads.
//! - [`session`]: one client over the line protocol: read a line, apply, send, keep time.
//! - [`connection`]: reading request lines with a hard length limit.
//! - [`frames`]: an upload's bytes in `DATA`/`END` frames (after `frames on`).
//! - [`writer`]: one client's write side: replies and events, whole and in
//!   order; downloads raw or in frames a `cancel` can stop.
//! - [`cmd`]: the commands, as values: an [`cmd::Op`] in, a typed [`cmd::Outcome`] out, no connection.
//! - [`presence`]: who is connected, names, chat and presence notices, recent
//!   departures; the [`presence::Bus`] seam notices and names cross to other
//!   instances by.
//! - [`activity`]: a session's idle clock and what it is doing, for `status`.
//! - [`shutdown`]: whether shutdown has begun, the [`ShutdownHandle`] that
//!   begins it and wakes every door, and whether a reader is mid-command.
//! - [`http`]: the web side (`--http`): the same commands over HTTP/1.1 for
//!   browsers, curl and wget.
//! - [`tftp`]: the UDP door (`--tftp`): reads over TFTP for devices.
//! - [`repo`]: the shared folder behind a `cap-std` handle: listing,
//!   downloads with cached BLAKE3 hashes, uploads that appear only when
//!   complete, changes, and the receiving half of every transfer (a module
//!   per concern; see its map).

#![forbid(unsafe_code)]

pub mod accounts;
pub mod activity;
pub mod announce;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod frames;
pub mod http;
pub mod identity;
pub mod logs;
pub mod pool;
pub mod presence;
pub mod proxy;
pub mod repo;
pub mod server;
pub mod service;
pub mod session;
pub mod shutdown;
pub mod slots;
pub mod tftp;
pub mod transport;
pub mod writer;

pub use config::{Config, Shared};
pub use repo::Repo;
pub use server::Server;
pub use service::Service;
pub use shutdown::ShutdownHandle;
