//! `file-client`: connects to a `file-server`, then runs commands typed at a
//! prompt, given with `-c`, or read from a non-terminal stdin (batch mode,
//! where the first failed command stops the run, like `sftp -b`).
//!
//! Everything the server sends is untrusted: text is printed with control
//! characters escaped, reply sizes are bounded, and downloaded files are named
//! by the client from what the user asked for, written to a `.fc-part` file,
//! checked against the BLAKE3 hash in the reply, then moved into place.
//!
//! # Layout
//! - [`run`] (here): what the binary calls with the parsed [`cli::Args`]:
//!   the prompt on a terminal, the batch runner otherwise.
//! - [`bookmarks`]: named servers in `~/.config/file-client/config.toml`.
//! - [`cli`]: [`cli::Args`], and connecting as they say.
//! - [`repl`]: the prompt (line editing, history, events above the line).
//! - [`batch`]: `-c` commands or piped stdin; the first failure ends the run.
//! - [`complete`]: tab completion of commands, remote names and local paths.
//! - [`command`]: [`Command`], parsing what the user types, and the help table.
//! - [`session`]: [`Session`], running one command line: names resolved
//!   against the remote folder, globs expanded, each command dispatched.
//! - [`link`]: the server as commands see it: the connection, reconnecting,
//!   text requests, listings; [`link::Transfers`], the narrow context the
//!   transfers below run in.
//! - [`settings`]: [`settings::Settings`], a session's local settings.
//! - [`download`]: `get` (to a verified, resumable `.fc-part` file) and `cat`.
//! - [`part`]: the file a download is written to until it is verified.
//! - [`upload`]: `put`, with local globs.
//! - [`tree`]: `get -r` and `put -r`: whole folders, identical files skipped, downloads pipelined.
//! - [`oneshot`]: scp- and ssh-style one-shot use, as commands for the batch runner.
//! - [`local`]: `lls`, `lcd`, `lpwd`.
//! - [`render`]: what is printed: tables, JSON, transfer reports.
//! - [`progress`]: progress bars.
//! - [`connection`]: [`Connection`]: requests out; reply headers, bodies and
//!   events in, with size limits; a reader thread for events; opening one
//!   (greeting, `frames on`, login with a password the CLI asks for).
//! - [`discover`]: servers announced on the LAN (mDNS): `--discover`, picking one, names.
//! - [`transport`]: dialling the server: its address resolved, TCP, TLS
//!   with its identity judged; the stream is `common`'s `Transport`.
//! - [`trust`]: which TLS servers to believe: pinned fingerprints,
//!   `known_servers` (trust on first use), the system's roots.
//! - [`background`]: writing a download to its file on a second thread.
//! - [`error`]: [`ClientError`] and the exit status of each kind.

#![forbid(unsafe_code)]

pub mod background;
pub mod batch;
pub mod bookmarks;
pub mod cli;
pub mod command;
pub mod complete;
pub mod connection;
pub mod discover;
pub mod download;
pub mod error;
pub mod link;
pub mod local;
pub mod oneshot;
pub mod part;
pub mod progress;
pub mod render;
pub mod repl;
pub mod session;
pub mod settings;
pub mod transport;
pub mod tree;
pub mod trust;
pub mod upload;

use std::io::{self, IsTerminal};

pub use command::Command;
pub use connection::{Connection, Greeting};
pub use error::ClientError;
pub use session::{Flow, Session};

/// Runs the client as the arguments say; the process's exit status.
pub fn run(args: &cli::Args) -> u8 {
    let args = match bookmarks::apply(args) {
        Ok(applied) => applied,
        Err(e) => {
            eprintln!("file-client: {e}");
            return e.exit_code();
        }
    };
    let mut args = match oneshot::plan(&args) {
        Ok(planned) => planned,
        Err(e) => {
            eprintln!("file-client: {e}");
            return e.exit_code();
        }
    };
    args.download_dir = local::expand_home(&args.download_dir.to_string_lossy());
    let args = &args;
    if !args.download_dir.is_dir() {
        eprintln!("file-client: download folder '{}' does not exist", args.download_dir.display());
        return error::EXIT_USAGE;
    }
    if args.discover {
        return match cli::list_servers(args.json) {
            Ok(0) => error::EXIT_IO,
            Ok(_) => 0,
            Err(e) => {
                eprintln!("file-client: {e}");
                e.exit_code()
            }
        };
    }
    if args.commands.is_empty() && io::stdin().is_terminal() {
        repl::run(args)
    } else {
        batch::run(args)
    }
}
