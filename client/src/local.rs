//! The local side of the prompt: `lls`, `lcd`, `lpwd`.

use std::fs;
use std::io;
use std::path::PathBuf;

use common::{ListEntry, ListEntryKind};

use crate::error::ClientError;
use crate::render;

/// A local path as the user typed it, with a leading `~` (alone or before
/// `/`) standing for the home folder, as a shell would read it.
pub fn expand_home(path: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    match path.strip_prefix('~') {
        Some("") => home().unwrap_or_else(|| PathBuf::from(path)),
        Some(rest) if rest.starts_with('/') => match home() {
            Some(home) => home.join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

/// `lls`: a local folder as a table.
///
/// # Errors
/// [`ClientError::Local`] when the folder cannot be read.
pub fn listing(dir: &str, sizes: render::Sizes) -> Result<String, ClientError> {
    let local_err = |e: io::Error| ClientError::Local(format!("lls: '{dir}': {e}"));
    let mut entries = Vec::new();
    for entry in fs::read_dir(expand_home(dir)).map_err(local_err)? {
        let entry = entry.map_err(local_err)?;
        let Ok(meta) = fs::metadata(entry.path()) else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = if meta.is_dir() { ListEntryKind::Dir } else { ListEntryKind::File };
        let modified = meta.modified().map(render::rfc3339).unwrap_or_default();
        entries.push(ListEntry { kind, size: meta.len(), modified, name });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(render::entries(&entries, sizes))
}

/// `lcd [dir]`: changes the local folder (home without an argument), which
/// is also where downloads go from now on; the new folder, as a line.
///
/// # Errors
/// [`ClientError::Local`] when the folder cannot be entered.
pub fn change_dir(dir: Option<&str>) -> Result<String, ClientError> {
    let dir = match dir {
        Some(dir) => expand_home(dir),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/")),
    };
    std::env::set_current_dir(&dir).map_err(|e| ClientError::Local(format!("lcd: '{}': {e}", dir.display())))?;
    current_dir_line()
}

/// `lpwd`: the local folder, as a line.
///
/// # Errors
/// [`ClientError::Local`] when the folder cannot be read (it was removed).
pub fn current_dir_line() -> Result<String, ClientError> {
    let dir = std::env::current_dir().map_err(|e| ClientError::Local(format!("cannot read the local folder: {e}")))?;
    Ok(format!("{}\n", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_home_folder() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~/d/x"), home.join("d/x"));
        for kept in ["~alice/x", "a/~", "./~", "x~"] {
            assert_eq!(expand_home(kept), PathBuf::from(kept));
        }
    }
}
