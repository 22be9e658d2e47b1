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
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
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

/// A file opened for `get`: its handle, length and content hash.
#[derive(Debug)]
pub struct Download {
    /// Positioned at the start.
    pub file: File,
    /// Bytes to send.
    pub len: u64,
    /// BLAKE3 of those bytes.
    pub digest: Digest,
    /// When the file was last modified.
    pub modified: Option<std::time::SystemTime>,
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
    /// Changes on every write and cannot be set back (unlike the mtime,
    /// which `cp -p` or `touch -d` restore).
    ctime: i64,
    ctime_nsec: i64,
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }
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
    /// what an earlier run left there when it was killed mid-upload. A file
    /// another running server is still writing (two servers may share one
    /// folder) is locked by it, and left alone.
    ///
    /// # Errors
    /// When the folder cannot be created or cleaned (e.g. it is read-only).
    pub fn prepare_uploads(&self) -> io::Result<()> {
        self.root.create_dir_all(UPLOAD_DIR)?;
        let uploads = self.root.open_dir(UPLOAD_DIR)?;
        for entry in uploads.entries()? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let Ok(file) = uploads.open(entry.file_name()) else { continue };
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
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
    /// The open never waits: a FIFO (or one swapped in for the file a moment
    /// before) is opened non-blocking, and what was opened is checked, not
    /// the name, so only a regular file is ever read.
    ///
    /// Hashing a big file takes a while: it stops (with
    /// [`RepoError::Cancelled`]) once `wanted` says the client no longer
    /// wants the file; `wanted` is asked every [`HASH_CHECK`] bytes.
    ///
    /// # Errors
    /// [`RepoError`] when the file does not exist, is not a regular file,
    /// leads out of the share or cannot be read.
    pub fn open_download(&self, path: &RemotePath, wanted: &dyn Fn() -> bool) -> Result<Download, RepoError> {
        let (mut file, meta) = self.open_file(path)?;
        let key = FileKey::of(&meta);
        let cached = self.hashes.lock().get(&key).copied();
        let digest = match cached {
            Some(d) => d,
            None => {
                let mut watched = Watched { inner: &mut file, wanted, unasked: HASH_CHECK, stopped: false };
                let digest = Digest::of_reader(&mut watched).map_err(|e| {
                    if watched.stopped {
                        RepoError::Cancelled(path.to_string())
                    } else {
                        RepoError::from_io(e, path, "cannot read")
                    }
                })?;
                file.seek(SeekFrom::Start(0)).map_err(|e| RepoError::from_io(e, path, "cannot read"))?;
                remember(&mut self.hashes.lock(), key, digest);
                digest
            }
        };
        Ok(Download { file, len: meta.len(), digest, modified: meta.modified().ok() })
    }

    /// Opens a regular file of the share for reading (never a fifo or a
    /// device: opened without waiting, then checked).
    ///
    /// # Errors
    /// As [`Repo::open_download`], without hashing.
    pub fn open_file(&self, path: &RemotePath) -> Result<(File, std::fs::Metadata), RepoError> {
        let mut options = OpenOptions::new();
        options.read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let opened = self.root.open_with(path.as_relative(), &options);
        let file = opened.map_err(|e| RepoError::from_io(e, path, "cannot open"))?.into_std();
        let meta = file.metadata().map_err(|e| RepoError::from_io(e, path, "cannot stat"))?;
        if !meta.is_file() {
            return Err(RepoError::NotAFile(path.to_string()));
        }
        Ok((file, meta))
    }

    /// True when `path` is a symbolic link itself (whatever it leads to).
    pub fn is_link(&self, path: &RemotePath) -> bool {
        self.root.symlink_metadata(path.as_relative()).is_ok_and(|m| m.file_type().is_symlink())
    }

    /// Starts an upload to `path`: checks the folder exists and the name is
    /// free, and creates the temporary file in `.uploads/`.
    ///
    /// # Errors
    /// [`RepoError::Exists`] when the name is taken, [`RepoError::NotFound`]
    /// when its folder does not exist, others as the file system says.
    pub fn begin_upload(&self, path: &RemotePath, plan: UploadPlan) -> Result<Upload<'_>, RepoError> {
        let UploadPlan { replace, resume, size, digest } = plan;
        let parent = path.parent();
        if !parent.is_root() {
            match self.root.metadata(parent.as_relative()) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(RepoError::NotADir(parent.to_string())),
                Err(e) => return Err(RepoError::from_io(e, &parent, "no folder")),
            }
        }
        match self.root.symlink_metadata(path.as_relative()) {
            Ok(meta) if replace && !meta.is_dir() => {}
            Ok(meta) if meta.is_dir() => return Err(RepoError::NotAFile(path.to_string())),
            Ok(_) => return Err(RepoError::Exists(path.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(RepoError::from_io(e, path, "cannot check")),
        }
        let keep_as = kept_name(path, &digest, size);
        if resume {
            for kept in [keep_as.clone(), kept_name(path, &UNKNOWN_CONTENT, size)] {
                if let Some(upload) = self.continue_kept(path, &kept, replace, size)? {
                    return Ok(upload);
                }
            }
        }
        let (temp, file) = self.create_temporary()?;
        Ok(Upload {
            repo: self,
            replace,
            target: path.clone(),
            temp,
            keep_as,
            file,
            hasher: blake3::Hasher::new(),
            written: 0,
            done: false,
            discard: false,
        })
    }

    /// The bytes kept of an earlier upload of the same bytes to the same
    /// name, opened to go on from their end (hashed again, so the hash of
    /// the whole is checked as for any upload); `None` when there are none.
    fn continue_kept(
        &self,
        path: &RemotePath,
        keep_as: &str,
        replace: bool,
        size: u64,
    ) -> Result<Option<Upload<'_>>, RepoError> {
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        let Ok(file) = self.root.open_with(keep_as, &options) else { return Ok(None) };
        let mut file = file.into_std();
        // Another session continuing it now keeps its lock: start afresh then.
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Ok(None);
        }
        let fail = |e: io::Error| RepoError::from_io(e, path, "cannot read the kept upload of");
        let mut hasher = blake3::Hasher::new();
        let written = io::copy(&mut (&mut file).take(size + 1), &mut HashInto(&mut hasher)).map_err(fail)?;
        if written > size {
            drop(file);
            let _ = self.root.remove_file(keep_as);
            return Ok(None);
        }
        Ok(Some(Upload {
            repo: self,
            replace,
            target: path.clone(),
            temp: keep_as.to_string(),
            keep_as: keep_as.to_string(),
            file,
            hasher,
            written,
            done: false,
            discard: false,
        }))
    }
}

/// What an upload is to be: from a `put` line.
#[derive(Debug, Clone, Copy)]
pub struct UploadPlan {
    /// Replace a file of the name (`-f`).
    pub replace: bool,
    /// Go on from what was kept of an earlier attempt (`-c`).
    pub resume: bool,
    /// Bytes announced.
    pub size: u64,
    /// Their BLAKE3.
    pub digest: Digest,
}

/// The key of bytes kept of an upload whose hash was to come after them
/// (`put … -`): no BLAKE3 is all zeros in practice. `put -c` goes on from
/// such bytes when none were kept under its hash; the hash of the whole
/// is checked all the same.
pub const UNKNOWN_CONTENT: Digest = Digest([0; 32]);

/// Where the bytes of a cut-short upload of `digest` (`size` bytes) to
/// `path` are kept, for `put -c`: one name per target and content.
fn kept_name(path: &RemotePath, digest: &Digest, size: u64) -> String {
    let key = blake3::hash(format!("{path}\0{digest}\0{size}").as_bytes());
    format!("{UPLOAD_DIR}/kept-{}.part", &key.to_hex()[..32])
}

/// A hasher as a writer, for `io::copy`.
struct HashInto<'a>(&'a mut blake3::Hasher);

impl Write for HashInto<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Changing the share: folders made and removed, files removed, names moved.
/// Every name is a checked [`RemotePath`] below the root, and every call goes
/// through the `cap-std` handle, so nothing outside the share is touched; a
/// symlink inside it is removed or moved as a link, never followed.
impl Repo {
    /// Makes folder `path`.
    ///
    /// # Errors
    /// [`RepoError::Exists`] when the name is taken, [`RepoError::NotFound`]
    /// when its parent is missing.
    pub fn make_dir(&self, path: &RemotePath) -> Result<(), RepoError> {
        self.root.create_dir(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot make folder"))
    }

    /// Removes file `path` (or a symlink of that name).
    ///
    /// # Errors
    /// [`RepoError::NotAFile`] for a folder, [`RepoError::NotFound`].
    pub fn remove_file(&self, path: &RemotePath) -> Result<(), RepoError> {
        let meta =
            self.root.symlink_metadata(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot remove"))?;
        if meta.is_dir() {
            return Err(RepoError::NotAFile(path.to_string()));
        }
        self.root.remove_file(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot remove"))
    }

    /// Removes folder `path`: only when empty, unless `tree`. Returns how
    /// many entries went with it.
    ///
    /// # Errors
    /// [`RepoError::NotADir`] for a file, [`RepoError::NotEmpty`] for a
    /// folder with something in it (without `tree`).
    pub fn remove_dir(&self, path: &RemotePath, tree: bool) -> Result<u64, RepoError> {
        let meta =
            self.root.symlink_metadata(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot remove"))?;
        if !meta.is_dir() {
            return Err(RepoError::NotADir(path.to_string()));
        }
        if !tree {
            return self.root.remove_dir(path.as_relative()).map(|()| 0).map_err(|e| {
                if e.kind() == io::ErrorKind::DirectoryNotEmpty {
                    RepoError::NotEmpty(path.to_string())
                } else {
                    RepoError::from_io(e, path, "cannot remove")
                }
            });
        }
        let count = self.count_entries(path);
        self.root.remove_dir_all(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot remove"))?;
        Ok(count)
    }

    /// Entries below folder `path`, for a report (unreadable parts count as none).
    fn count_entries(&self, path: &RemotePath) -> u64 {
        let Ok(dir) = self.root.open_dir(path.as_relative()) else { return 0 };
        let mut stack = vec![dir];
        let mut count = 0;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = dir.entries() else { continue };
            for entry in entries.flatten() {
                count += 1;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if let Ok(sub) = entry.open_dir() {
                        stack.push(sub);
                    }
                }
            }
        }
        count
    }

    /// Renames `from` to `to` inside the share. Without `replace`, an
    /// existing `to` is never replaced (`renameat2` with `RENAME_NOREPLACE`,
    /// so no check-then-act race); with it, a file there is replaced
    /// atomically.
    ///
    /// # Errors
    /// [`RepoError::Exists`] when `to` exists (without `replace`),
    /// [`RepoError::NotFound`] when `from` or `to`'s folder is missing.
    pub fn rename(&self, from: &RemotePath, to: &RemotePath, replace: bool) -> Result<(), RepoError> {
        let open_parent = |path: &RemotePath| -> Result<cap_std::fs::Dir, RepoError> {
            let parent = path.parent();
            if parent.is_root() {
                self.root.try_clone().map_err(|e| RepoError::from_io(e, &parent, "cannot open"))
            } else {
                self.root.open_dir(parent.as_relative()).map_err(|e| RepoError::from_io(e, &parent, "no folder"))
            }
        };
        let (from_dir, to_dir) = (open_parent(from)?, open_parent(to)?);
        let (Some(from_name), Some(to_name)) = (from.file_name(), to.file_name()) else {
            return Err(RepoError::NotAFile(from.to_string()));
        };
        // The last components are plain names in folders opened through the
        // sandbox: the rename cannot reach outside it.
        let flags = if replace { rustix::fs::RenameFlags::empty() } else { rustix::fs::RenameFlags::NOREPLACE };
        rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, flags).map_err(|e| {
            let err = io::Error::from(e);
            if err.kind() == io::ErrorKind::NotFound && self.root.symlink_metadata(from.as_relative()).is_ok() {
                RepoError::from_io(err, &to.parent(), "no folder")
            } else if err.kind() == io::ErrorKind::AlreadyExists {
                RepoError::Exists(to.to_string())
            } else {
                RepoError::from_io(err, from, "cannot move")
            }
        })
    }
}

/// Adds a hash to the cache. A full cache forgets the hashes of its smaller
/// half of files: a big file's hash costs the most to make again, so many
/// small downloads never push it out.
fn remember(hashes: &mut HashMap<FileKey, Digest>, key: FileKey, digest: Digest) {
    if hashes.len() >= HASH_CACHE_ENTRIES {
        let mut sizes: Vec<u64> = hashes.keys().map(|k| k.size).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        hashes.retain(|k, _| k.size > median);
    }
    hashes.insert(key, digest);
}

impl Repo {
    /// A new temporary file in `.uploads/`, locked for as long as it is
    /// open, so another server sweeping the folder leaves it alone. One
    /// that such a sweep removed between its creation and its lock is given
    /// up for a new one.
    fn create_temporary(&self) -> Result<(String, File), RepoError> {
        let fail =
            |e: io::Error| RepoError::Io { context: format!("cannot create upload file in {UPLOAD_DIR}"), source: e };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        loop {
            let n = self.next_upload.fetch_add(1, Ordering::Relaxed);
            let temp = format!("{UPLOAD_DIR}/{}-{n}.part", std::process::id());
            let file = self.root.open_with(&temp, &options).map_err(fail)?.into_std();
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| fail(e.into()))?;
            if file.metadata().map_err(fail)?.nlink() > 0 {
                return Ok((temp, file));
            }
        }
    }
}

/// An upload in progress. Written bytes are hashed as they arrive; dropped
/// without [`Upload::commit`], the temporary file is removed.
pub struct Upload<'a> {
    repo: &'a Repo,
    /// Replace a file of the target's name (`put -f`).
    replace: bool,
    target: RemotePath,
    temp: String,
    /// Where the bytes go if the upload is cut short, for `put -c`.
    keep_as: String,
    file: File,
    hasher: blake3::Hasher,
    written: u64,
    done: bool,
    /// The bytes are wrong (the hash did not match): nothing is kept.
    discard: bool,
}

impl Upload<'_> {
    /// Bytes received so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The bytes are not to be kept for `put -c` (the disk filled up:
    /// keeping them would keep it full).
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// The BLAKE3 of the bytes received so far.
    pub fn digest_so_far(&self) -> Digest {
        Digest::from(self.hasher.finalize())
    }

    /// The name the upload will have.
    pub fn target(&self) -> &RemotePath {
        &self.target
    }

    /// Checks the hash, flushes to disk and links the file into place.
    ///
    /// # Errors
    /// [`RepoError::HashMismatch`] when the bytes are not what was announced,
    /// [`RepoError::Exists`] when another upload took the name meanwhile.
    pub fn commit(mut self, expected: &Digest, modified: Option<std::time::SystemTime>) -> Result<u64, RepoError> {
        if Digest::from(self.hasher.finalize()) != *expected {
            self.discard = true;
            return Err(RepoError::HashMismatch(self.target.to_string()));
        }
        if let Some(time) = modified {
            // The client's time for its file, as sftp -p keeps it.
            let _ = self.file.set_modified(time);
        }
        self.file.sync_all().map_err(|e| RepoError::from_io(e, &self.target, "cannot write"))?;
        let root = &self.repo.root;
        let target = self.target.as_relative();
        if self.replace {
            // A rename replaces the old file atomically: a reader sees the
            // old bytes or the new ones, never a mix.
            root.rename(&self.temp, root, &target).map_err(|e| RepoError::from_io(e, &self.target, "cannot store"))?;
            self.done = true;
        } else {
            // A hard link never replaces an existing name, unlike rename.
            root.hard_link(&self.temp, root, &target)
                .map_err(|e| RepoError::from_io(e, &self.target, "cannot store"))?;
            self.done = true;
            let _ = root.remove_file(&self.temp);
        }
        // What an earlier attempt kept is not needed any more.
        if self.temp != self.keep_as {
            let _ = root.remove_file(&self.keep_as);
        }
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
    /// An upload that did not finish: its bytes are kept for `put -c` (under
    /// a name made of the target and the announced hash, replacing what an
    /// earlier attempt kept), unless there are none or they were wrong.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let root = &self.repo.root;
        let keep = !self.discard && self.written > 0;
        if keep && self.temp == self.keep_as {
            return; // the kept file itself, continued: it stays as it is
        }
        if keep && root.rename(&self.temp, root, &self.keep_as).is_ok() {
            self.repo.prune_kept();
        } else {
            let _ = root.remove_file(&self.temp);
        }
    }
}

/// Cut-short uploads kept for `put -c` at most; beyond, the oldest go first.
/// (Each is at most `--max-upload-size`, so the space they take is bounded.)
pub const MAX_KEPT: usize = 16;

impl Repo {
    /// Removes the oldest kept uploads beyond [`MAX_KEPT`], skipping any an
    /// upload is continuing now (it holds its lock).
    fn prune_kept(&self) {
        let Ok(uploads) = self.root.open_dir(UPLOAD_DIR) else { return };
        let Ok(entries) = uploads.entries() else { return };
        let mut kept: Vec<(std::time::SystemTime, std::ffi::OsString)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("kept-"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?.into_std(), e.file_name())))
            .collect();
        if kept.len() <= MAX_KEPT {
            return;
        }
        kept.sort();
        let excess = kept.len() - MAX_KEPT;
        for (_, name) in kept.into_iter().take(excess) {
            let Ok(file) = uploads.open(&name) else { continue };
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = uploads.remove_file(&name);
            }
        }
    }
}

/// Bytes hashed between two questions to a download's `wanted`.
pub const HASH_CHECK: u64 = 32 * 1024 * 1024;

/// A file being hashed for a client who may cancel meanwhile.
struct Watched<'a, R> {
    inner: R,
    wanted: &'a dyn Fn() -> bool,
    /// Bytes until `wanted` is asked again.
    unasked: u64,
    stopped: bool,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.unasked == 0 {
            if !(self.wanted)() {
                self.stopped = true;
                return Err(io::Error::other("the client cancelled"));
            }
            self.unasked = HASH_CHECK;
        }
        let want = buf.len().min(usize::try_from(self.unasked).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.unasked -= n as u64;
        Ok(n)
    }
}

/// RFC 3339 in UTC to the second, as used in listings.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Buffers going round between the reading thread and the writing one.
const RECEIVE_BUFFERS: usize = 4;

/// Size of each: an upload of at most this many bytes is received on the
/// session's thread alone.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// How much [`receive`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Exactly this many bytes; the end of the stream before them is an error.
    Length(u64),
    /// To the end of the stream (an upload of unknown length: TFTP), at most
    /// this many bytes; more is [`io::ErrorKind::FileTooLarge`].
    End(u64),
}

/// The receiving half of every door's transfers: reads `from` into `to`
/// as `until` says, reporting progress (the bytes read so far). Reading the
/// connection and writing the file (for an upload, also hashing it) overlap:
/// the bytes go to `to` on a second thread, [`RECEIVE_BUFFERS`] buffers of
/// 256 KiB going round, so memory stays flat. When writing fails (the disk
/// is full), the rest is still read, so the connection stays in step and
/// the client can be told why: `Ok(Some(error))`.
///
/// # Errors
/// When the connection fails, ends before the length, or (to the end) goes
/// past the limit.
pub fn receive(
    from: &mut impl Read,
    to: &mut (impl Write + Send),
    until: Until,
    mut progress: impl FnMut(u64),
) -> io::Result<Option<io::Error>> {
    if let Until::Length(len) = until {
        if len <= RECEIVE_BUFFER as u64 {
            return receive_small(from, to, len, progress);
        }
    }
    let (filled_tx, filled_rx) = crossbeam_channel::bounded::<(Vec<u8>, usize)>(RECEIVE_BUFFERS);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(RECEIVE_BUFFERS);
    for _ in 0..RECEIVE_BUFFERS {
        let _ = empty_tx.send(vec![0u8; RECEIVE_BUFFER]);
    }
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut failed = None;
            for (buf, n) in filled_rx {
                if failed.is_none() {
                    failed = to.write_all(&buf[..n]).err();
                }
                let _ = empty_tx.send(buf);
            }
            failed
        });
        let mut done = 0;
        let read = loop {
            if until == Until::Length(done) {
                break Ok(());
            }
            let Ok(mut buf) = empty_rx.recv() else { break Ok(()) };
            let want = match until {
                Until::Length(len) => buf.len().min(usize::try_from(len - done).unwrap_or(usize::MAX)),
                Until::End(_) => buf.len(),
            };
            let n = loop {
                match from.read(&mut buf[..want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match (n, until) {
                (Ok(0), Until::End(_)) => break Ok(()),
                (Ok(0), Until::Length(_)) => {
                    break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload"))
                }
                (Ok(n), Until::End(limit)) if done + n as u64 > limit => {
                    break Err(io::Error::new(io::ErrorKind::FileTooLarge, format!("more than {limit} bytes")));
                }
                (Ok(n), _) => {
                    done += n as u64;
                    progress(done);
                    if filled_tx.send((buf, n)).is_err() {
                        break Ok(());
                    }
                }
                (Err(e), _) => break Err(e),
            }
        };
        drop(filled_tx);
        // Every byte read is written before this returns, whatever happened.
        let failed = writer.join().unwrap_or_else(|_| Some(io::Error::other("the upload writer panicked")));
        read.map(|()| failed)
    })
}

/// [`receive`] of one buffer's worth: no second thread, and no more memory than the bytes.
fn receive_small(
    from: &mut impl Read,
    to: &mut impl Write,
    len: u64,
    mut progress: impl FnMut(u64),
) -> io::Result<Option<io::Error>> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(RECEIVE_BUFFER)];
    let mut filled = 0;
    let read = loop {
        if filled == buf.len() {
            break Ok(());
        }
        match from.read(&mut buf[filled..]) {
            Ok(0) => break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    progress(filled as u64);
    // What arrived is written even when the rest did not come (put -c).
    let failed = to.write_all(&buf[..filled]).err();
    read.map(|()| failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::open(dir.path()).unwrap();
        (dir, repo)
    }

    fn digest_of(repo: &Repo, name: &str) -> Digest {
        repo.open_download(&RemotePath::parse(name).unwrap(), &|| true).unwrap().digest
    }

    #[test]
    fn a_file_rewritten_with_its_size_and_mtime_restored_is_hashed_again() {
        let (dir, repo) = share();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"first").unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(digest_of(&repo, "a.txt"), Digest::from(blake3::hash(b"first")));
        // As `cp -p` or an editor that restores the time would leave it.
        std::fs::write(&path, b"other").unwrap();
        File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert_eq!(digest_of(&repo, "a.txt"), Digest::from(blake3::hash(b"other")));
    }

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_blocking() {
        let (dir, repo) = share();
        let fifo = cap_std::fs::Dir::open_ambient_dir(dir.path(), ambient_authority()).unwrap();
        rustix::fs::mknodat(&fifo, "pipe", rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o644), 0)
            .unwrap();
        let err = repo.open_download(&RemotePath::parse("pipe").unwrap(), &|| true).unwrap_err();
        assert!(matches!(err, RepoError::NotAFile(_)), "{err}");
    }

    #[test]
    fn a_symlink_loop_is_not_found() {
        let (dir, repo) = share();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let err = repo.open_download(&RemotePath::parse("a").unwrap(), &|| true).unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err}");
    }

    #[test]
    fn at_most_max_kept_cut_short_uploads_are_kept_the_newest() {
        let (dir, repo) = share();
        repo.prepare_uploads().unwrap();
        for i in 0..MAX_KEPT + 5 {
            let plan = UploadPlan { replace: false, resume: false, size: 100, digest: Digest([i as u8; 32]) };
            let mut upload = repo.begin_upload(&RemotePath::parse(&format!("f{i}")).unwrap(), plan).unwrap();
            upload.write_all(b"part").unwrap();
            // Cut short: kept. Then distinct modification times, oldest first.
            drop(upload);
            let kept =
                dir.path().join(kept_name(&RemotePath::parse(&format!("f{i}")).unwrap(), &Digest([i as u8; 32]), 100));
            let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            std::fs::File::options().write(true).open(&kept).unwrap().set_modified(when).unwrap();
        }
        let left: Vec<String> = std::fs::read_dir(dir.path().join(UPLOAD_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), MAX_KEPT, "{left:?}");
        // The newest is there; the first ones are gone.
        let name = |i: usize| {
            let kept = kept_name(&RemotePath::parse(&format!("f{i}")).unwrap(), &Digest([i as u8; 32]), 100);
            kept.trim_start_matches(&format!("{UPLOAD_DIR}/")).to_string()
        };
        assert!(left.contains(&name(MAX_KEPT + 4)));
        assert!(!left.contains(&name(0)));
    }

    #[test]
    fn a_second_server_on_the_folder_leaves_the_first_ones_uploads_alone() {
        let dir = tempfile::tempdir().unwrap();
        let first = Repo::open(dir.path()).unwrap();
        first.prepare_uploads().unwrap();
        std::fs::write(dir.path().join(UPLOAD_DIR).join("999-1.part"), b"left by a killed server").unwrap();
        let plan = UploadPlan { replace: false, resume: false, size: 9, digest: Digest([0; 32]) };
        let mut upload = first.begin_upload(&RemotePath::parse("new.txt").unwrap(), plan).unwrap();
        upload.write_all(b"in flight").unwrap();

        let second = Repo::open(dir.path()).unwrap();
        second.prepare_uploads().unwrap();
        let left: Vec<_> =
            std::fs::read_dir(dir.path().join(UPLOAD_DIR)).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "the stale one removed, the live one kept: {left:?}");
        assert_eq!(upload.commit(&Digest::from(blake3::hash(b"in flight")), None).unwrap(), 9);
        assert_eq!(std::fs::read(dir.path().join("new.txt")).unwrap(), b"in flight");
    }

    #[test]
    fn a_full_cache_forgets_small_files_first() {
        let (dir, repo) = share();
        std::fs::write(dir.path().join("big.bin"), vec![7u8; 100_000]).unwrap();
        std::fs::write(dir.path().join("small.txt"), b"s").unwrap();
        digest_of(&repo, "big.bin");
        let big = *repo.hashes.lock().keys().next().unwrap();
        let mut key = big;
        for i in 0..HASH_CACHE_ENTRIES as u64 * 2 {
            key.ino = u64::MAX - i;
            key.size = i % 50;
            remember(&mut repo.hashes.lock(), key, Digest([0; 32]));
        }
        let hashes = repo.hashes.lock();
        assert!(hashes.len() <= HASH_CACHE_ENTRIES);
        assert!(hashes.contains_key(&big), "the big file's hash is kept");
    }

    /// Takes `room` bytes, then fails as a full disk does.
    struct Disk {
        room: usize,
        took: Vec<u8>,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.took.len() + buf.len() > self.room {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.took.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn receiving_reads_every_byte_even_when_the_disk_fills() {
        let data = vec![1u8; 1_000_000];
        let mut input = io::Cursor::new(data.clone());
        let mut disk = Disk { room: 300_000, took: Vec::new() };
        let mut seen = 0;
        let failed = receive(&mut input, &mut disk, Until::Length(data.len() as u64), |n| seen = n).unwrap();
        assert_eq!(failed.map(|e| e.kind()), Some(io::ErrorKind::StorageFull));
        assert_eq!((input.position(), seen), (1_000_000, 1_000_000), "the connection stays in step");
        let path = RemotePath::parse("x.bin").unwrap();
        let err = RepoError::from_io(io::Error::from(io::ErrorKind::StorageFull), &path, "cannot write");
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (Code::InsufficientStorage, "no space left on the server's disk for 'x.bin'; nothing was stored")
        );
        let mut short = io::Cursor::new(vec![0u8; 10]);
        assert!(
            receive(&mut short, &mut io::sink(), Until::Length(11), |_| {}).is_err(),
            "a short body is a lost connection"
        );
    }

    #[test]
    fn receiving_to_the_end_stops_there_and_refuses_more_than_the_limit() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut got = Vec::new();
        let failed = receive(&mut io::Cursor::new(data.clone()), &mut got, Until::End(700_000), |_| {}).unwrap();
        assert!(failed.is_none() && got == data, "every byte, to the end");
        let over = receive(&mut io::Cursor::new(data), &mut io::sink(), Until::End(699_999), |_| {});
        assert_eq!(over.err().map(|e| e.kind()), Some(io::ErrorKind::FileTooLarge));
        let mut nothing = Vec::new();
        assert!(
            receive(&mut io::empty(), &mut nothing, Until::End(10), |_| {}).unwrap().is_none() && nothing.is_empty()
        );
    }
}
