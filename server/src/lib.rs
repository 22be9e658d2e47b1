//! `file-server`: shares one folder over TCP with a small line protocol
//! (see `docs/PROTOCOL.md`), one thread per client, at most `--max-clients`
//! clients at once; the next one is told `ERR 503 Server is full`.
//!
//! The binary (`src/bin/file-server.rs`) parses arguments, binds, and calls
//! [`Server::run`]; tests do the same in-process or run the binary.
//!
//! # Layout
//! - [`server`]: [`Server`], the accept loop (at a lower priority than the
//!   sessions), admission and graceful shutdown; [`Config`]; [`ShutdownHandle`].
//! - [`slots`]: the cap, as RAII slot tokens.
//! - [`pool`]: the fixed set of session threads.
//! - [`session`]: one client's read side: parse a request, act, queue the reply.
//! - [`writer`]: one client's write side: replies and events, files via `sendfile`.
//! - [`connection`]: reading request lines with a hard length limit.
//! - [`registry`]: who is connected and what they do, for `status` and shutdown.
//! - [`repo`]: the shared folder behind a `cap-std` handle: listing, downloads
//!   with cached BLAKE3 hashes, uploads that appear only when complete.

pub mod connection;
pub mod pool;
pub mod registry;
pub mod repo;
pub mod server;
pub mod session;
pub mod slots;
pub mod writer;

pub use repo::Repo;
pub use server::{Config, Server, ShutdownHandle};
