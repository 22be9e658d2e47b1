//! Why a request on the share failed, and the reply code of each kind.

use std::io;

use common::{Code, RemotePath};

/// Why a request on the share failed; each kind maps to a reply code.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Nothing of that name (or it is hidden).
    #[error("no such file '{0}'")]
    NotFound(String),
    /// The name leads outside the share, e.g. through a symlink.
    #[error("access denied to '{0}'")]
    Forbidden(String),
    /// The name is a folder or a special file where a regular file is needed.
    #[error("'{0}' is not a regular file")]
    NotAFile(String),
    /// `list` was given a file.
    #[error("'{0}' is not a folder")]
    NotADir(String),
    /// An upload's target exists.
    #[error("'{0}' exists already")]
    Exists(String),
    /// The uploaded bytes do not hash to what the client announced.
    #[error("upload of '{0}' does not match its hash; nothing was stored")]
    HashMismatch(String),
    /// `rmdir` of a folder that has something in it.
    #[error("folder '{0}' is not empty (rm -r removes it with everything in it)")]
    NotEmpty(String),
    /// The disk is full (or the user's quota is used up).
    #[error("no space left on the server's disk for '{0}'; nothing was stored")]
    NoSpace(String),
    /// Hashing stopped: the client cancelled the download meanwhile.
    #[error("download of '{0}' cancelled while it was being hashed")]
    Cancelled(String),
    /// Anything else the file system said.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, on which name.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl RepoError {
    /// The reply code for this failure.
    pub fn code(&self) -> Code {
        match self {
            RepoError::NotFound(_) => Code::NotFound,
            RepoError::Forbidden(_) => Code::Forbidden,
            RepoError::NotAFile(_) | RepoError::NotADir(_) | RepoError::HashMismatch(_) => Code::BadRequest,
            RepoError::Exists(_) | RepoError::NotEmpty(_) => Code::Exists,
            RepoError::Cancelled(_) => Code::Cancelled,
            RepoError::Io { .. } => Code::Internal,
            RepoError::NoSpace(_) => Code::InsufficientStorage,
        }
    }

    /// What a failed file system call on `path` means for the client;
    /// `context` says what was being done, for errors it cannot name.
    pub fn from_io(err: io::Error, path: &RemotePath, context: &str) -> RepoError {
        let name = common::text::escape(&path.as_relative()).into_owned();
        // A symlink loop is, to the client, a name that leads nowhere.
        if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            return RepoError::NotFound(name);
        }
        match err.kind() {
            io::ErrorKind::NotFound => RepoError::NotFound(name),
            io::ErrorKind::PermissionDenied => RepoError::Forbidden(name),
            io::ErrorKind::NotADirectory => RepoError::NotFound(name),
            io::ErrorKind::AlreadyExists => RepoError::Exists(name),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => RepoError::NoSpace(name),
            _ => RepoError::Io { context: format!("{context} '{name}'"), source: err },
        }
    }
}
