//! What WebDAV asks of the share beyond `list` and `get`: one entry's
//! description (`stat`), a file's hash when it is known without reading the
//! file, and copies (a file, or a folder with all in it), each file written
//! as an upload is (a temporary file linked into place, never seen half
//! written).

use std::io;

use common::{Digest, ListEntry, ListEntryKind, RemotePath};

use super::hashes::FileKey;
use super::{Repo, RepoError};

impl Repo {
    /// The entry `path` names (its `name` the last part; the top is a
    /// folder named ""), as `list` would show it in its folder.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] and the rest, as for a listing.
    pub fn stat(&self, path: &RemotePath) -> Result<ListEntry, RepoError> {
        let meta = if path.is_root() {
            self.root.dir_metadata().map_err(|e| RepoError::from_io(e, path, "cannot open"))?
        } else {
            self.root.metadata(path.as_relative()).map_err(|e| RepoError::from_io(e, path, "cannot open"))?
        };
        let name = path.file_name().unwrap_or_default().to_string();
        super::entry_of(name, &meta).ok_or_else(|| RepoError::NotAFile(path.to_string()))
    }

    /// The file's BLAKE3 when it is in the hash cache and the file has not
    /// changed since: never reads the file.
    pub fn known_digest(&self, path: &RemotePath) -> Option<Digest> {
        let (_, meta) = self.open_file(path).ok()?;
        self.hashes.lock().get(&FileKey::of(&meta)).copied()
    }

    /// Copies `from` to `to`: a file, or (with `recursive`) a folder and
    /// all in it (hidden names and links to folders left out, so a copy
    /// never loops); without `recursive`, a folder's copy is an empty
    /// folder. An existing `to` is an error unless `replace`, when it goes
    /// first (a folder with all in it). Returns whether `to` existed.
    ///
    /// # Errors
    /// [`RepoError::Exists`] (`to` exists, no `replace`), [`RepoError::NotFound`]
    /// (`from`, or `to`'s folder), and what reading or writing says.
    pub fn copy(&self, from: &RemotePath, to: &RemotePath, recursive: bool, replace: bool) -> Result<bool, RepoError> {
        let source = self.stat(from)?;
        let existed = match self.stat(to) {
            Ok(_) if !replace => return Err(RepoError::Exists(to.to_string())),
            Ok(there) => {
                match there.kind {
                    ListEntryKind::Dir => self.remove_dir(to, true).map(drop)?,
                    ListEntryKind::File => self.remove_file(to)?,
                }
                true
            }
            Err(RepoError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        match source.kind {
            ListEntryKind::File => self.copy_file(from, to)?,
            ListEntryKind::Dir => self.copy_dir(from, to, recursive)?,
        }
        Ok(existed)
    }

    fn copy_dir(&self, from: &RemotePath, to: &RemotePath, recursive: bool) -> Result<(), RepoError> {
        self.make_dir(to)?;
        if !recursive {
            return Ok(());
        }
        for entry in self.list(from)? {
            let (Ok(child_from), Ok(child_to)) = (child(from, &entry.name), child(to, &entry.name)) else { continue };
            // A folder reached through a link is left out: it may hold the copy.
            let linked = self.root.symlink_metadata(child_from.as_relative()).is_ok_and(|m| m.is_symlink());
            match entry.kind {
                ListEntryKind::Dir if linked => {}
                ListEntryKind::Dir => self.copy_dir(&child_from, &child_to, true)?,
                ListEntryKind::File => self.copy_file(&child_from, &child_to)?,
            }
        }
        Ok(())
    }

    fn copy_file(&self, from: &RemotePath, to: &RemotePath) -> Result<(), RepoError> {
        let (mut source, meta) = self.open_file(from)?;
        let (temp, mut file) = self.create_temporary()?;
        let written = io::copy(&mut source, &mut file)
            .and_then(|_| file.set_modified(meta.modified()?))
            .and_then(|()| file.sync_all())
            .map_err(|e| RepoError::from_io(e, to, "cannot write"));
        let linked = written.and_then(|()| {
            self.root
                .hard_link(&temp, &self.root, to.as_relative())
                .map_err(|e| RepoError::from_io(e, to, "cannot store"))
        });
        let _ = self.root.remove_file(&temp);
        linked
    }
}

/// `name` inside folder `dir`.
fn child(dir: &RemotePath, name: &str) -> Result<RemotePath, common::PathError> {
    RemotePath::parse(&if dir.is_root() { name.to_string() } else { format!("{dir}/{name}") })
}
