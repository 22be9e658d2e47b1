//! Test data: bytes that do not compress, their hash, a share in a temporary folder.

use std::path::{Path, PathBuf};

/// Deterministic bytes that do not compress (xorshift64*).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// BLAKE3 of `bytes`, as hex.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A share for one test: a temporary folder with a few files.
pub struct Share {
    dir: tempfile::TempDir,
}

impl Share {
    /// An empty share.
    pub fn new() -> Share {
        Share { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn add(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, content).expect("write");
        path
    }

    /// A file's bytes, empty while it is not there.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Share {
    /// A share with traps for the doors that must refuse them: `ok.txt`
    /// (`fine\n`), a hidden `.hidden`, and symbolic links `link` and
    /// `dirlink` to a file and a folder outside (`secret.txt`, returned,
    /// removed with it). Every secret reads `SECRET`.
    pub fn with_traps() -> (Share, tempfile::TempDir) {
        let share = Share::new();
        share.add("ok.txt", b"fine\n");
        share.add(".hidden", b"SECRET");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), b"SECRET").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), share.path().join("link")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), share.path().join("dirlink")).expect("symlink");
        (share, outside)
    }
}

impl Default for Share {
    fn default() -> Share {
        Share::new()
    }
}

/// Every file under `root` (folders walked, not listed), as paths relative to it.
pub fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry")) {
            if entry.file_type().expect("file type").is_dir() {
                dirs.push(entry.path());
            } else {
                found.push(entry.path().strip_prefix(root).expect("below root").to_string_lossy().into_owned());
            }
        }
    }
    found
}
