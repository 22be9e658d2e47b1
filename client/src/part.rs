//! Where a download is written while it arrives: `NAME.fc-part` in the
//! download folder, the download's own (created new, never a file or link
//! that was there; to resume, an existing regular file that is not a link),
//! locked while in use, and moved to `NAME` only once its BLAKE3 matches.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::text::escape;
use common::Digest;

use crate::command::quote_word;
use crate::error::ClientError;

/// Where one download goes: `NAME.fc-part` while it arrives, `NAME` once
/// verified. The part file is this download's own: created new (never a file
/// or link that was there), or, to resume, an existing regular file that is
/// not a link; and locked while in use, so two downloads never share one.
pub(crate) struct PartFile {
    /// The name asked of the server.
    pub(crate) name: String,
    /// The local name: the last part of `name`, a plain file name.
    pub(crate) base: String,
    /// `DIR/NAME.fc-part` (shortened to fit the file system's name limit).
    pub(crate) path: PathBuf,
    /// `DIR/NAME`.
    pub(crate) target: PathBuf,
    /// Replace an existing `NAME` (`get -f`).
    pub(crate) force: bool,
}

impl PartFile {
    /// For remote `name` in `dir`; refuses at once a name that is no plain
    /// file name, or when `NAME` exists and `force` is off.
    pub(crate) fn new(dir: &Path, name: &str, force: bool) -> Result<PartFile, ClientError> {
        PartFile::named(dir, local_base_name(name)?, name, force)
    }

    /// For remote `name`, kept in `dir` as `base` (a name the user gave).
    pub(crate) fn named(dir: &Path, base: &str, name: &str, force: bool) -> Result<PartFile, ClientError> {
        let base = local_base_name(base)?;
        let target = dir.join(base);
        if !force && target.symlink_metadata().is_ok() {
            return Err(exists(base));
        }
        let path = dir.join(part_name(base));
        Ok(PartFile { name: name.to_string(), base: base.to_string(), path, target, force })
    }

    pub(crate) fn error(&self, what: &str, e: io::Error) -> ClientError {
        ClientError::Local(format!("{what} '{}': {e}", self.path.display()))
    }

    /// A failure after some bytes were written: they are kept for `get -c`.
    pub(crate) fn error_kept(&self, what: &str, e: &io::Error) -> ClientError {
        ClientError::Local(format!("{what} '{}': {e}; {}", self.path.display(), self.kept_hint()))
    }

    /// What the user can do with the part file: a command that works.
    pub(crate) fn kept_hint(&self) -> String {
        let force = if self.force { " -f" } else { "" };
        format!("partial download kept as {}; get -c{force} {} resumes", self.path.display(), quote_word(&self.name))
    }

    /// The part file, opened and locked, and where to start: with `resume`,
    /// after the bytes already in it (with their hash); else at 0, in a file
    /// created now.
    pub(crate) fn start(&self, resume: bool) -> Result<(File, u64, blake3::Hasher), ClientError> {
        let mut hasher = blake3::Hasher::new();
        if resume && self.path.symlink_metadata().is_ok() {
            let mut file = self.open_existing()?;
            hasher.update_reader(&mut file).map_err(|e| self.error("cannot read", e))?;
            let len = file.metadata().map_err(|e| self.error("cannot read", e))?.len();
            return Ok((file, len, hasher));
        }
        // `create_new` fails on anything there, a symlink included.
        let file = File::options().write(true).create_new(true).open(&self.path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                ClientError::Local(format!(
                    "'{}' exists: get -c {} resumes it; remove it to start over",
                    self.path.display(),
                    quote_word(&self.name)
                ))
            } else {
                self.error("cannot create", e)
            }
        })?;
        self.lock(&file)?;
        Ok((file, 0, hasher))
    }

    /// An existing part file to append to: a regular file, not a link, not
    /// in use by another download.
    pub(crate) fn open_existing(&self) -> Result<File, ClientError> {
        let not_plain = || ClientError::Local(format!("'{}' is not a regular file; not resuming", self.path.display()));
        let before = self.path.symlink_metadata().map_err(|e| self.error("cannot read", e))?;
        if !before.file_type().is_file() {
            return Err(not_plain());
        }
        let file =
            File::options().read(true).append(true).open(&self.path).map_err(|e| self.error("cannot open", e))?;
        let opened = file.metadata().map_err(|e| self.error("cannot read", e))?;
        // The name was swapped for something else between the look and the open.
        if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
            return Err(not_plain());
        }
        self.lock(&file)?;
        Ok(file)
    }

    pub(crate) fn lock(&self, file: &File) -> Result<(), ClientError> {
        file.try_lock()
            .map_err(|_| ClientError::Local(format!("'{}' is in use by another download", self.path.display())))
    }

    /// The error to give when the download folder has less room than
    /// `needed` more bytes; `None` when it has enough (or cannot tell).
    pub(crate) fn lacks_space_for(&self, needed: u64) -> Option<ClientError> {
        let dir = self.path.parent()?;
        let stats = rustix::fs::statvfs(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }).ok()?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        (needed > free).then(|| {
            let (need, free) = (indicatif::BinaryBytes(needed), indicatif::BinaryBytes(free));
            ClientError::Local(format!(
                "not enough space for '{}' in {}: need {need}, {free} free; nothing more was written",
                escape(&self.base),
                dir.display()
            ))
        })
    }

    /// A download stopped before its first byte leaves no empty part file.
    pub(crate) fn discard_if_empty(&self) {
        if self.path.symlink_metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = fs::remove_file(&self.path);
        }
    }

    /// Checks the whole file's hash, then moves it into place; a mismatch
    /// discards it.
    pub(crate) fn keep(&self, file: File, digest: Digest, expected: Digest, resumed: bool) -> Result<(), ClientError> {
        if digest != expected {
            drop(file);
            let _ = fs::remove_file(&self.path);
            let how = if resumed { "after resuming " } else { "" };
            return Err(ClientError::Local(format!(
                "'{}' did not match its BLAKE3 hash {how}and was discarded",
                escape(&self.name)
            )));
        }
        file.sync_all().map_err(|e| self.error("cannot write", e))?;
        // Moved while still locked, so no other download can take it meanwhile.
        let placed = if self.force {
            fs::rename(&self.path, &self.target).map_err(|e| self.error("cannot rename", e))
        } else {
            // A hard link never replaces a file that appeared meanwhile.
            fs::hard_link(&self.path, &self.target).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    exists(&self.base)
                } else {
                    self.error("cannot link", e)
                }
            })
        };
        placed?;
        if !self.force {
            let _ = fs::remove_file(&self.path);
        }
        drop(file);
        Ok(())
    }
}

/// The part file's name for local file `base`: `NAME.fc-part`, with `NAME`
/// shortened (and told apart by a hash of the whole) when that would pass
/// the 255-byte limit of file names.
fn part_name(base: &str) -> String {
    const LIMIT: usize = 255;
    let whole = format!("{base}.fc-part");
    if whole.len() <= LIMIT {
        return whole;
    }
    let tag = &blake3::hash(base.as_bytes()).to_hex()[..12];
    let mut keep = LIMIT - ".fc-part".len() - tag.len() - 1;
    while !base.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}~{tag}.fc-part", &base[..keep])
}

fn exists(base: &str) -> ClientError {
    ClientError::Local(format!("local file '{}' exists (use get -f to overwrite)", escape(base)))
}

/// The last component of a remote name, checked to be a plain file name that
/// is safe to create in the download folder.
///
/// # Errors
/// [`ClientError::Usage`] for an empty, dot, hidden or control-character name.
pub fn local_base_name(name: &str) -> Result<&str, ClientError> {
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if base.is_empty()
        || base == "."
        || base == ".."
        || base.starts_with('.')
        || base.contains(['\\', '\0'])
        || base.chars().any(char::is_control)
    {
        return Err(ClientError::Usage(format!("get: '{}' does not end in a usable file name", escape(name))));
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_base_names_become_local_files() {
        assert_eq!(local_base_name("docs/a.txt").unwrap(), "a.txt");
        for bad in ["", "..", "a/..", ".bashrc", "x/\u{1b}[2J", "a\\b"] {
            assert!(local_base_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_part_file_is_kept_only_when_its_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let part = PartFile::new(dir.path(), "docs/a.txt", false).unwrap();
        fs::write(&part.path, b"abc").unwrap();
        let (file, offset, hasher) = part.start(true).unwrap();
        assert_eq!(offset, 3);
        let good = Digest::from(hasher.finalize());
        assert_eq!(good, Digest::from(blake3::hash(b"abc")));
        assert!(part.keep(file, good, Digest([0; 32]), true).is_err());
        assert!(!part.path.exists() && !part.target.exists(), "a mismatch is discarded");

        fs::write(&part.path, b"abc").unwrap();
        let (file, _, _) = part.start(true).unwrap();
        part.keep(file, good, good, false).unwrap();
        assert_eq!(fs::read(&part.target).unwrap(), b"abc");
        assert!(!part.path.exists());
        assert!(PartFile::new(dir.path(), "a.txt", false).is_err(), "exists, without -f");
        assert!(PartFile::new(dir.path(), "a.txt", true).is_ok(), "replaced with -f");
    }

    #[test]
    fn a_part_file_is_never_shared_reused_or_followed() {
        let dir = tempfile::tempdir().unwrap();
        let part = PartFile::new(dir.path(), "a.txt", false).unwrap();
        let (_held, _, _) = part.start(false).unwrap();
        let again = PartFile::new(dir.path(), "a.txt", false).unwrap();
        let err = again.start(false).unwrap_err().to_string();
        assert!(err.contains("exists: get -c a.txt resumes it"), "{err}");
        let err = again.start(true).unwrap_err().to_string();
        assert!(err.contains("in use by another download"), "{err}");
        drop(_held);
        assert!(again.start(true).is_ok(), "free once the first download is over");

        // A link planted where the part file goes is neither followed nor written.
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("b.txt.fc-part")).unwrap();
        let planted = PartFile::new(dir.path(), "b.txt", false).unwrap();
        assert!(planted.start(false).is_err());
        assert!(planted.start(true).unwrap_err().to_string().contains("not a regular file"));
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn the_users_own_files_are_never_taken_for_part_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.part"), b"mine").unwrap();
        let part = PartFile::new(dir.path(), "notes", false).unwrap();
        let (file, _, _) = part.start(false).unwrap();
        drop(file);
        assert_eq!(fs::read(dir.path().join("notes.part")).unwrap(), b"mine");
        // Something already where the part file goes is refused, not reused.
        assert!(PartFile::new(dir.path(), "notes", false).unwrap().start(false).is_err());
        assert_eq!(fs::read(&part.path).unwrap(), b"");
    }

    #[test]
    fn part_names_fit_the_file_name_limit() {
        assert_eq!(part_name("a.txt"), "a.txt.fc-part");
        let long = "é".repeat(127); // 254 bytes
        let name = part_name(&long);
        assert!(name.len() <= 255 && name.ends_with(".fc-part"), "{} bytes", name.len());
        assert_ne!(name, part_name(&format!("{}x", "é".repeat(126))), "different names, different part files");
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(&name), b"").unwrap();
    }
}
