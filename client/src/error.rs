//! What can go wrong in the client, and the exit status each kind maps to.

use common::Code;

/// Exit status: every command succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status: the connection or a local file failed.
pub const EXIT_IO: u8 = 1;
/// Exit status: a command was typed wrongly.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the server did not admit this client (full, or shutting down).
pub const EXIT_FULL: u8 = 3;
/// Exit status: the server refused or failed a command, or the command is
/// one file-client does not have (`rm`, `cd`).
pub const EXIT_REMOTE: u8 = 4;
/// Exit status: the server's identity (TLS certificate) or this client's
/// login was refused.
pub const EXIT_AUTH: u8 = 5;

/// A failed command or connection, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not reach the server.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address as the user gave it.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server's certificate is not the one pinned or remembered, or the
    /// login was refused: the session does not start.
    #[error("{0}")]
    Identity(String),
    /// A TLS server not seen before, in batch mode or not accepted.
    #[error("the server {server} is not known; its certificate's SHA-256 fingerprint is\n  {fingerprint}\ncompare it with the one the server printed when it started, then connect with --fingerprint {fingerprint} (or --accept-new)")]
    UnknownServer {
        /// `HOST:PORT` as in `known_servers`.
        server: String,
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// The server refused the session in place of its greeting (`ERR 503`):
    /// it is full, or shutting down. Its message, escaped.
    #[error("{0}")]
    NotAdmitted(String),
    /// The connection failed or the server broke the protocol; the session is over.
    #[error("connection: {0}")]
    Connection(String),
    /// The server answered with an error; the session goes on.
    #[error("remote: {message}")]
    Remote {
        /// The reply code.
        code: Code,
        /// The server's message, escaped.
        message: String,
    },
    /// A local file could not be read or written, or would be overwritten.
    #[error("{0}")]
    Local(String),
    /// The command was typed wrongly.
    #[error("usage: {0}")]
    Usage(String),
    /// A command of another tool (`rm`, `cd`, `!ls`) that file-client does
    /// not have: refused rather than echoed, so it never looks like success.
    #[error("{0}")]
    Unsupported(String),
    /// The user pressed Ctrl+C during a transfer.
    #[error("cancelled{0}")]
    Cancelled(String),
    /// Standard output was closed by its reader (`| head`): a normal end,
    /// as for ripgrep and coreutils.
    #[error("output closed")]
    OutputClosed,
}

impl ClientError {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Connect { .. }
            | ClientError::Connection(_)
            | ClientError::Local(_)
            | ClientError::Cancelled(_) => EXIT_IO,
            ClientError::NotAdmitted(_) => EXIT_FULL,
            ClientError::Identity(_) | ClientError::UnknownServer { .. } => EXIT_AUTH,
            ClientError::OutputClosed => EXIT_OK,
            ClientError::Remote { code: Code::Unauthorized, .. } => EXIT_AUTH,
            ClientError::Remote { .. } | ClientError::Unsupported(_) => EXIT_REMOTE,
            ClientError::Usage(_) => EXIT_USAGE,
        }
    }

    /// True when the connection is unusable after this error.
    pub fn ends_session(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::NotAdmitted(_)
                | ClientError::Identity(_)
                | ClientError::UnknownServer { .. }
                | ClientError::Connection(_)
                | ClientError::OutputClosed
        )
    }

    /// Writing to standard output (or wherever output goes) failed: a closed
    /// pipe ends the run normally, anything else is a local error.
    pub fn output(err: &std::io::Error) -> ClientError {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            ClientError::OutputClosed
        } else {
            ClientError::Local(format!("cannot write output: {err}"))
        }
    }

    pub(crate) fn connection(context: &str, err: std::io::Error) -> ClientError {
        match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Connection(format!("the server stopped answering ({context}: timed out)"))
            }
            std::io::ErrorKind::UnexpectedEof => {
                ClientError::Connection(format!("server closed the connection ({context})"))
            }
            _ => ClientError::Connection(format!("{context}: {err}")),
        }
    }
}

impl ClientError {
    /// The error as one JSON object for `--json` (`type` `error`): the
    /// server's code when it refused (`404`), the exit status it leads to,
    /// and the message.
    pub fn json(&self) -> serde_json::Value {
        let code = match self {
            ClientError::Remote { code, .. } => Some(code.number()),
            _ => None,
        };
        serde_json::json!({ "type": "error", "code": code, "exit": self.exit_code(), "message": self.to_string() })
    }
}
