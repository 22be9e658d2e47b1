//! The shared folder, held as a capability handle (`cap_std::fs::Dir`).
//!
//! Every open goes through the handle, so no name, however it is spelled and
//! whatever symlinks it crosses, can reach outside the folder: [`RemotePath`]
//! refuses the obvious tricks with a clear message, and cap-std refuses the
//! rest. Uploads are written to `.uploads/` inside the share and hard-linked
//! into place only once complete and verified, so a partial file is never
//! visible under its real name.
//!
//! # Layout
//! - this file: [`Repo`], opening the share, listing ([`Entries`], a
//!   folder read one entry at a time), opening files for downloads (with
//!   their cached hash).
//! - [`error`]: [`RepoError`], each kind with its reply code.
//! - [`hashes`]: the hash cache and cancellable hashing.
//! - `copies`: one entry's description, a hash known without reading, copies (WebDAV's).
//! - [`uploads`]: [`Upload`], temporary files, kept cut-short uploads.
//! - [`changes`]: folders made and removed, files removed, names moved.
//! - [`receive`](mod@receive): [`receive()`], the receiving half of every door's transfers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use chrono::{DateTime, SecondsFormat, Utc};
use common::{Digest, ListEntry, ListEntryKind, RemotePath};
use parking_lot::Mutex;

mod changes;
mod copies;
mod error;
mod hashes;
mod receive;
mod uploads;

pub use error::RepoError;
pub use hashes::HASH_CHECK;
use hashes::{remember, FileKey, HashInto, Watched};
pub use receive::{receive, Until};
pub use uploads::{Upload, UploadPlan, MAX_KEPT, UNKNOWN_CONTENT};

/// Hidden folder inside the share where uploads are written until complete.
pub const UPLOAD_DIR: &str = ".uploads";

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

/// The shared folder.
pub struct Repo {
    root: Dir,
    path: PathBuf,
    hashes: Hashes,
    next_upload: AtomicU64,
}

/// One entry of the share, with its BLAKE3 when that is known without
/// reading the file.
#[derive(Debug)]
pub struct Described {
    /// Its name, kind, size and time.
    pub entry: ListEntry,
    /// The hash cache's, for a file unchanged since it was hashed.
    pub digest: Option<Digest>,
}

/// A folder's visible entries, read as they are asked for ([`Repo::entries`]):
/// hidden names, names a client could not show, links out of the share and
/// what is neither a file nor a folder are left out, as in every listing.
pub struct Entries {
    dir: Dir,
    read: cap_std::fs::ReadDir,
    hashes: Option<Hashes>,
}

impl Entries {
    /// Each file with its hash when the hash cache knows it.
    #[must_use]
    pub fn with_digests(mut self, repo: &Repo) -> Entries {
        self.hashes = Some(Arc::clone(&repo.hashes));
        self
    }
}

impl Iterator for Entries {
    type Item = Described;

    fn next(&mut self) -> Option<Described> {
        for entry in self.read.by_ref().flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || name.chars().any(char::is_control) || name.contains('\\') {
                continue;
            }
            // Follows symlinks inside the share; one that leads out fails and is left out.
            let Ok(meta) = self.dir.metadata(&name) else {
                continue;
            };
            let Some(entry) = entry_of(name, &meta) else {
                continue;
            };
            let digest = match (&self.hashes, entry.kind) {
                (Some(hashes), ListEntryKind::File) => hashes.lock().get(&FileKey::of_entry(&meta)).copied(),
                _ => None,
            };
            return Some(Described { entry, digest });
        }
        None
    }
}

/// `name` as a listing shows it, from what the file system says of it;
/// `None` for what is neither a file nor a folder (a FIFO, a device).
fn entry_of(name: String, meta: &cap_std::fs::Metadata) -> Option<ListEntry> {
    let kind = if meta.is_dir() {
        ListEntryKind::Dir
    } else if meta.is_file() {
        ListEntryKind::File
    } else {
        return None;
    };
    let modified = meta.modified().map(|t| rfc3339(t.into_std())).unwrap_or_default();
    let size = if kind == ListEntryKind::File { meta.len() } else { 0 };
    Some(ListEntry { kind, size, modified, name })
}

/// The hash cache: files' BLAKE3 by what identifies their content.
type Hashes = Arc<Mutex<HashMap<FileKey, Digest>>>;

impl Repo {
    /// Opens the folder to share.
    ///
    /// # Errors
    /// When `path` does not exist or is not a folder.
    pub fn open(path: &Path) -> io::Result<Repo> {
        let root = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Repo {
            root,
            path: path.to_path_buf(),
            hashes: Arc::new(Mutex::new(HashMap::new())),
            next_upload: AtomicU64::new(0),
        })
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
        let mut listed: Vec<ListEntry> = self.entries(path)?.map(|described| described.entry).collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    /// A folder's visible entries as they are read from the disk, unsorted
    /// and one at a time: what [`Repo::list`] sorts, and what a `PROPFIND`
    /// streams without holding them.
    ///
    /// # Errors
    /// As [`Repo::list`].
    pub fn entries(&self, path: &RemotePath) -> Result<Entries, RepoError> {
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
        let read = dir.entries().map_err(|e| RepoError::from_io(e, path, "cannot list"))?;
        Ok(Entries { dir, read, hashes: None })
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
}

/// RFC 3339 in UTC to the second, as used in listings.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::hashes::HASH_CACHE_ENTRIES;
    use super::uploads::kept_name;
    use super::*;
    use common::Code;
    use std::io::Write;

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
