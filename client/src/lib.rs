//! `file-client`: connects to a `file-server`, then runs commands typed at a
//! prompt, given with `-c`, or read from a non-terminal stdin (batch mode,
//! where the first failed command stops the run, like `sftp -b`).
//!
//! Everything the server sends is untrusted: text is printed with control
//! characters escaped, reply sizes are bounded, and downloaded files are named
//! by the client from what the user asked for, written to a `.part` file,
//! checked against the BLAKE3 hash in the reply, then moved into place.
//!
//! # Layout
//! - [`connection`]: [`Connection`], the socket: requests out, reply headers,
//!   bodies and events in, with size limits.
//! - [`command`]: [`Command`], parsing what the user types.
//! - [`session`]: [`Session`], running a command and printing its result.
//! - [`background`]: writing a download to its file on a second thread.
//! - [`error`]: [`ClientError`] and the exit status of each kind.

pub mod background;
pub mod command;
pub mod complete;
pub mod connection;
pub mod error;
pub mod progress;
pub mod session;

pub use command::Command;
pub use connection::{Connection, Greeting};
pub use error::ClientError;
pub use session::{Flow, Session};
