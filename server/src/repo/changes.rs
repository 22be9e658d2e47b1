//! Changing the share: folders made and removed, files removed, names moved.

use std::io;

use common::RemotePath;

use super::*;

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
    /// so no check-then-act race; on a file system that refuses the flag,
    /// see [`move_without_replacing`]); with it, a file there is replaced
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
        let moved = match rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, flags) {
            // NFS and GlusterFS refuse the flag: the same without it.
            Err(rustix::io::Errno::INVAL) if !replace => move_without_replacing(&from_dir, from_name, &to_dir, to_name),
            moved => moved,
        };
        moved.map_err(|e| {
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

/// A rename that never replaces `to`, for file systems that refuse
/// `RENAME_NOREPLACE` (NFS, GlusterFS answer `EINVAL`): a file is hard-linked
/// under its new name (which fails if the name exists, atomically, on every
/// file system) and then unlinked under its old one; a folder, which cannot
/// be linked, is renamed if nothing has its new name (a rename onto an empty
/// folder would replace it: the check is as close to the rename as it can be).
///
/// # Errors
/// `EEXIST` when `to` exists; what `linkat`, `unlinkat` or `renameat` say.
pub(crate) fn move_without_replacing(
    from_dir: &cap_std::fs::Dir,
    from: &str,
    to_dir: &cap_std::fs::Dir,
    to: &str,
) -> rustix::io::Result<()> {
    use rustix::fs::{linkat, renameat, statat, unlinkat, AtFlags};
    match linkat(from_dir, from, to_dir, to, AtFlags::empty()) {
        Ok(()) => unlinkat(from_dir, from, AtFlags::empty()),
        // A folder (EPERM on Linux), or links not supported at all.
        Err(rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP) => {
            match statat(to_dir, to, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => Err(rustix::io::Errno::EXIST),
                Err(rustix::io::Errno::NOENT) => renameat(from_dir, from, to_dir, to),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::move_without_replacing;
    use cap_std::ambient_authority;
    use cap_std::fs::Dir;

    #[test]
    fn without_the_flag_files_and_folders_move_and_nothing_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        dir.write("a.txt", b"a").unwrap();
        dir.write("b.txt", b"b").unwrap();
        assert_eq!(move_without_replacing(&dir, "a.txt", &dir, "b.txt"), Err(rustix::io::Errno::EXIST));
        assert_eq!((dir.read("a.txt").unwrap(), dir.read("b.txt").unwrap()), (b"a".to_vec(), b"b".to_vec()));
        move_without_replacing(&dir, "a.txt", &dir, "c.txt").unwrap();
        assert_eq!(dir.read("c.txt").unwrap(), b"a");
        assert!(!dir.exists("a.txt"));

        dir.create_dir("folder").unwrap();
        dir.create_dir("empty").unwrap();
        assert_eq!(move_without_replacing(&dir, "folder", &dir, "empty"), Err(rustix::io::Errno::EXIST));
        move_without_replacing(&dir, "folder", &dir, "moved").unwrap();
        assert!(dir.is_dir("moved") && !dir.exists("folder") && dir.is_dir("empty"));
    }
}
