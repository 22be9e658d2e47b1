//! The content hashes of the share's files: the cache keyed by what the
//! file system says of a file, and hashing a client may cancel.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;

use common::Digest;

/// How many file hashes are remembered before the cache starts over.
pub(super) const HASH_CACHE_ENTRIES: usize = 4096;

/// The identity of a file's content as far as the file system tells:
/// the same key means the cached hash still holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct FileKey {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime: i64,
    pub(super) mtime_nsec: i64,
    /// Changes on every write and cannot be set back (unlike the mtime,
    /// which `cp -p` or `touch -d` restore).
    pub(super) ctime: i64,
    pub(super) ctime_nsec: i64,
}

/// A [`FileKey`] from metadata that has the Unix fields: std's and
/// cap-std's each name them in a trait of their own.
macro_rules! file_key {
    ($meta:expr) => {
        FileKey {
            dev: $meta.dev(),
            ino: $meta.ino(),
            size: $meta.size(),
            mtime: $meta.mtime(),
            mtime_nsec: $meta.mtime_nsec(),
            ctime: $meta.ctime(),
            ctime_nsec: $meta.ctime_nsec(),
        }
    };
}

impl FileKey {
    pub(super) fn of(meta: &std::fs::Metadata) -> FileKey {
        file_key!(meta)
    }

    /// Of an entry as a folder's listing sees it.
    pub(super) fn of_entry(meta: &cap_std::fs::Metadata) -> FileKey {
        use cap_std::fs::MetadataExt;
        file_key!(meta)
    }
}

/// A hasher as a writer, for `io::copy`.
pub(super) struct HashInto<'a>(pub(super) &'a mut blake3::Hasher);

impl Write for HashInto<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Adds a hash to the cache. A full cache forgets the hashes of its smaller
/// half of files: a big file's hash costs the most to make again, so many
/// small downloads never push it out.
pub(super) fn remember(hashes: &mut HashMap<FileKey, Digest>, key: FileKey, digest: Digest) {
    if hashes.len() >= HASH_CACHE_ENTRIES {
        let mut sizes: Vec<u64> = hashes.keys().map(|k| k.size).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        hashes.retain(|k, _| k.size > median);
    }
    hashes.insert(key, digest);
}

/// Bytes hashed between two questions to a download's `wanted`.
pub const HASH_CHECK: u64 = 32 * 1024 * 1024;

/// A file being hashed for a client who may cancel meanwhile.
pub(super) struct Watched<'a, R> {
    pub(super) inner: R,
    pub(super) wanted: &'a dyn Fn() -> bool,
    /// Bytes until `wanted` is asked again.
    pub(super) unasked: u64,
    pub(super) stopped: bool,
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
