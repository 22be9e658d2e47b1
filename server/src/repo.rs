//! The shared folder, held as a capability handle (`cap_std::fs::Dir`).
//!
//! Every open goes through the handle, so no name, however it is spelled and
//! whatever symlinks it crosses, can reach outside the folder: [`RemotePath`]
//! refuses the obvious tricks with a clear message, and cap-std refuses the
//! rest. Uploads are written to `.uploads/` inside the share and hard-linked
//! into place only once complete and verified, so a partial file is never
//! visible under its real name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use chrono::{DateTime, SecondsFormat, Utc};
use common::{Code, Digest, ListEntry, ListEntryKind, RemotePath};
use parking_lot::Mutex;

/// Hidden folder inside the share where uploads are written until complete.
pub const UPLOAD_DIR: &str = ".uploads";

/// How many file hashes are remembered before the cache starts over.
const HASH_CACHE_ENTRIES: usize = 4096;

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
            RepoError::Exists(_) => Code::Exists,
            RepoError::Io { .. } => Code::Internal,
        }
    }

    fn from_io(err: io::Error, path: &RemotePath, context: &str) -> RepoError {
        let name = common::text::escape(&path.as_relative()).into_owned();
        match err.kind() {
            io::ErrorKind::NotFound => RepoError::NotFound(name),
            io::ErrorKind::PermissionDenied => RepoError::Forbidden(name),
            io::ErrorKind::NotADirectory => RepoError::NotFound(name),
            io::ErrorKind::AlreadyExists => RepoError::Exists(name),
            _ => RepoError::Io { context: format!("{context} '{name}'"), source: err },
        }
    }
}

/// A file opened for `get`: its handle, length and content hash.
#[derive(Debug)]
pub struct Download {
    /// Positioned at the start.
    pub file: File,
    /// Bytes to send.
    pub len: u64,
    /// BLAKE3 of those bytes.
    pub digest: Digest,
}

/// The identity of a file's content as far as the file system tells:
/// the same key means the cached hash still holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

/// The shared folder.
pub struct Repo {
    root: Dir,
    path: PathBuf,
    hashes: Mutex<HashMap<FileKey, Digest>>,
    next_upload: AtomicU64,
}

impl Repo {
    /// Opens the folder to share.
    ///
    /// # Errors
    /// When `path` does not exist or is not a folder.
    pub fn open(path: &Path) -> io::Result<Repo> {
        let root = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Repo { root, path: path.to_path_buf(), hashes: Mutex::new(HashMap::new()), next_upload: AtomicU64::new(0) })
    }

    /// The folder as given on the command line, for logs.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the folder ready for uploads: creates `.uploads/` and removes
    /// whatever an earlier run left there when it was killed mid-upload.
    ///
    /// # Errors
    /// When the folder cannot be created or cleaned (e.g. it is read-only).
    pub fn prepare_uploads(&self) -> io::Result<()> {
        self.root.create_dir_all(UPLOAD_DIR)?;
        let uploads = self.root.open_dir(UPLOAD_DIR)?;
        for entry in uploads.entries()? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                uploads.remove_file(entry.file_name())?;
            }
        }
        Ok(())
    }

    /// Lists a folder of the share: visible entries sorted by name.
    ///
    /// # Errors
    /// [`RepoError`] when the folder does not exist, is a file, or leads out.
    pub fn list(&self, path: &RemotePath) -> Result<Vec<ListEntry>, RepoError> {
        let dir = if path.is_root() {
            self.root.try_clone().map_err(|e| RepoError::from_io(e, path, "cannot open"))?
        } else {
            match self.root.metadata(path.as_relative()) {
                Ok(meta) if !meta.is_dir() => return Err(RepoError::NotADir(path.to_string())),
                Ok(_) => {}
                Err(e) => return Err(RepoError::from_io(e, path, "cannot open folder")),
            }
            self.root.open_dir(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot open folder"))?
        };
        let entries = dir.entries().map_err(|e| RepoError::from_io(e, path, "cannot list"))?;
        let mut listed = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || name.chars().any(char::is_control) || name.contains('\\') {
                continue;
            }
            // Follows symlinks inside the share; one that leads out fails and is left out.
            let Ok(meta) = dir.metadata(&name) else {
                continue;
            };
            let kind = if meta.is_dir() {
                ListEntryKind::Dir
            } else if meta.is_file() {
                ListEntryKind::File
            } else {
                continue;
            };
            let modified = meta.modified().map(|t| rfc3339(t.into_std())).unwrap_or_default();
            let size = if kind == ListEntryKind::File { meta.len() } else { 0 };
            listed.push(ListEntry { kind, size, modified, name });
        }
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    /// Opens a file for `get` and hashes it (from the cache when the file is
    /// unchanged since it was last hashed).
    ///
    /// # Errors
    /// [`RepoError`] when the file does not exist, is not a regular file,
    /// leads out of the share or cannot be read.
    pub fn open_download(&self, path: &RemotePath) -> Result<Download, RepoError> {
        let rel = path.as_relative();
        // Checked before opening so a FIFO or device never blocks the session.
        let meta = self.root.metadata(&rel).map_err(|e| RepoError::from_io(e, path, "cannot open"))?;
        if !meta.is_file() {
            return Err(RepoError::NotAFile(path.to_string()));
        }
        let mut file = self.root.open(&rel).map_err(|e| RepoError::from_io(e, path, "cannot open"))?.into_std();
        let meta = file.metadata().map_err(|e| RepoError::from_io(e, path, "cannot stat"))?;
        if !meta.is_file() {
            return Err(RepoError::NotAFile(path.to_string()));
        }
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        };
        let cached = self.hashes.lock().get(&key).copied();
        let digest = match cached {
            Some(d) => d,
            None => {
                let digest = Digest::of_reader(&mut file).map_err(|e| RepoError::from_io(e, path, "cannot read"))?;
                file.seek(SeekFrom::Start(0)).map_err(|e| RepoError::from_io(e, path, "cannot read"))?;
                let mut hashes = self.hashes.lock();
                if hashes.len() >= HASH_CACHE_ENTRIES {
                    hashes.clear();
                }
                hashes.insert(key, digest);
                digest
            }
        };
        Ok(Download { file, len: meta.len(), digest })
    }

    /// Starts an upload to `path`: checks the folder exists and the name is
    /// free, and creates the temporary file in `.uploads/`.
    ///
    /// # Errors
    /// [`RepoError::Exists`] when the name is taken, [`RepoError::NotFound`]
    /// when its folder does not exist, others as the file system says.
    pub fn begin_upload(&self, path: &RemotePath) -> Result<Upload<'_>, RepoError> {
        let parent = path.parent();
        if !parent.is_root() {
            match self.root.metadata(parent.as_relative()) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(RepoError::NotADir(parent.to_string())),
                Err(e) => return Err(RepoError::from_io(e, &parent, "no folder")),
            }
        }
        match self.root.symlink_metadata(path.as_relative()) {
            Ok(_) => return Err(RepoError::Exists(path.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(RepoError::from_io(e, path, "cannot check")),
        }
        let temp =
            format!("{UPLOAD_DIR}/{}-{}.part", std::process::id(), self.next_upload.fetch_add(1, Ordering::Relaxed));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let file = self
            .root
            .open_with(&temp, &options)
            .map_err(|e| RepoError::Io { context: format!("cannot create upload file in {UPLOAD_DIR}"), source: e })?
            .into_std();
        Ok(Upload {
            repo: self,
            target: path.clone(),
            temp,
            file,
            hasher: blake3::Hasher::new(),
            written: 0,
            done: false,
        })
    }
}

/// An upload in progress. Written bytes are hashed as they arrive; dropped
/// without [`Upload::commit`], the temporary file is removed.
pub struct Upload<'a> {
    repo: &'a Repo,
    target: RemotePath,
    temp: String,
    file: File,
    hasher: blake3::Hasher,
    written: u64,
    done: bool,
}

impl Upload<'_> {
    /// Bytes received so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks the hash, flushes to disk and links the file into place.
    ///
    /// # Errors
    /// [`RepoError::HashMismatch`] when the bytes are not what was announced,
    /// [`RepoError::Exists`] when another upload took the name meanwhile.
    pub fn commit(mut self, expected: &Digest) -> Result<u64, RepoError> {
        if Digest::from(self.hasher.finalize()) != *expected {
            return Err(RepoError::HashMismatch(self.target.to_string()));
        }
        self.file.sync_all().map_err(|e| RepoError::from_io(e, &self.target, "cannot write"))?;
        // A hard link never replaces an existing name, unlike rename.
        self.repo
            .root
            .hard_link(&self.temp, &self.repo.root, self.target.as_relative())
            .map_err(|e| RepoError::from_io(e, &self.target, "cannot store"))?;
        self.done = true;
        let _ = self.repo.root.remove_file(&self.temp);
        Ok(self.written)
    }
}

impl Write for Upload<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.repo.root.remove_file(&self.temp);
        }
    }
}

/// RFC 3339 in UTC to the second, as used in listings.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads exactly `len` bytes from `from` into `upload`, reporting progress.
///
/// # Errors
/// When the connection fails or ends before `len` bytes, or the disk fails.
pub fn receive(
    from: &mut impl Read,
    upload: &mut Upload<'_>,
    len: u64,
    mut progress: impl FnMut(u64),
) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        upload.write_all(&buf[..n])?;
        left -= n as u64;
        progress(upload.written());
    }
    Ok(())
}
