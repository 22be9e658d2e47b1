//! The local side of the prompt: `lls`, `lcd`, `lpwd`.

use std::fs;
use std::io;
use std::path::PathBuf;

use common::{ListEntry, ListEntryKind};

use crate::error::ClientError;
use crate::render;

/// `lls`: a local folder as a table.
///
/// # Errors
/// [`ClientError::Local`] when the folder cannot be read.
pub fn listing(dir: &str) -> Result<String, ClientError> {
    let local_err = |e: io::Error| ClientError::Local(format!("lls: '{dir}': {e}"));
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(local_err)? {
        let entry = entry.map_err(local_err)?;
        let Ok(meta) = fs::metadata(entry.path()) else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = if meta.is_dir() { ListEntryKind::Dir } else { ListEntryKind::File };
        let modified = meta.modified().map(render::rfc3339).unwrap_or_default();
        entries.push(ListEntry { kind, size: meta.len(), modified, name });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(render::entries(&entries, false))
}

/// `lcd [dir]`: changes the local folder (home without an argument); the
/// new folder, as a line.
///
/// # Errors
/// [`ClientError::Local`] when the folder cannot be entered.
pub fn change_dir(dir: Option<&str>) -> Result<String, ClientError> {
    let dir = match dir {
        Some(dir) => PathBuf::from(dir),
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
