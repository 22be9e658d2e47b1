//! Uploads: a temporary file in `.uploads/` that appears under its name
//! only once complete and verified, and cut-short uploads kept for `put -c`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;

use cap_std::fs::OpenOptions;
use common::{Digest, RemotePath};

use super::*;

impl Repo {
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
pub(super) fn kept_name(path: &RemotePath, digest: &Digest, size: u64) -> String {
    let key = blake3::hash(format!("{path}\0{digest}\0{size}").as_bytes());
    format!("{UPLOAD_DIR}/kept-{}.part", &key.to_hex()[..32])
}

impl Repo {
    /// A new temporary file in `.uploads/`, locked for as long as it is
    /// open, so another server sweeping the folder leaves it alone. One
    /// that such a sweep removed between its creation and its lock is given
    /// up for a new one.
    pub(super) fn create_temporary(&self) -> Result<(String, File), RepoError> {
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
        // Its hash is known: a download, an ETag, needs no reading of it.
        if let Ok(meta) = self.file.metadata() {
            super::hashes::remember(&mut self.repo.hashes.lock(), super::hashes::FileKey::of(&meta), *expected);
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
