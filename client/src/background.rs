//! Hashing and writing a download on a thread of its own, so that receiving
//! the next bytes overlaps with the work on the last ones (hashing, then
//! allocating page-cache pages and copying into them, costs more than
//! receiving). The bytes are not copied: the connection receives into a
//! buffer, the buffer goes to the writing thread, and an empty one comes
//! back. Memory stays bounded: [`BUFFERS`] buffers of [`CHUNK_SIZE`] bytes
//! go round.

use std::fs::File;
use std::io::{self, Write};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::connection::{BodySink, CHUNK_SIZE};

/// Buffers going round: one being filled, the rest queued or being written.
const BUFFERS: usize = 4;

/// A [`BodySink`] that hands each filled buffer to a thread that hashes it
/// and writes it to a file. Errors from that thread surface on a later
/// buffer or on [`finish`]. Dropped without `finish`, it still writes what it
/// was given before the file closes (a cancelled download keeps every byte
/// it received).
///
/// [`finish`]: BackgroundWriter::finish
pub struct BackgroundWriter {
    filled: Option<Sender<(Vec<u8>, usize)>>,
    empty: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<(File, blake3::Hasher)>>>,
}

impl BackgroundWriter {
    /// Starts the thread that writes to `file` and goes on with `hasher`
    /// (which has seen the bytes already in the file, if any).
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn new(mut file: File, mut hasher: blake3::Hasher) -> io::Result<BackgroundWriter> {
        let (filled, to_write) = bounded::<(Vec<u8>, usize)>(BUFFERS);
        let (give_back, empty) = bounded(BUFFERS);
        // The connection holds the last one.
        for _ in 1..BUFFERS {
            let _ = give_back.send(vec![0; CHUNK_SIZE]);
        }
        let thread = thread::Builder::new().name("file-writer".into()).spawn(move || {
            for (buf, n) in to_write {
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])?;
                let _ = give_back.send(buf);
            }
            Ok((file, hasher))
        })?;
        Ok(BackgroundWriter { filled: Some(filled), empty, thread: Some(thread) })
    }

    /// Waits until every byte is written; the file and the hash of all it holds.
    ///
    /// # Errors
    /// The first write error.
    pub fn finish(mut self) -> io::Result<(File, blake3::Hasher)> {
        self.filled = None;
        self.join()
    }

    /// The writing thread has stopped early: its error.
    fn stopped(&mut self) -> io::Error {
        self.filled = None;
        match self.join() {
            Ok(_) => io::Error::other("the file writer stopped"),
            Err(e) => e,
        }
    }

    fn join(&mut self) -> io::Result<(File, blake3::Hasher)> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the file writer panicked")),
            None => Err(io::Error::other("the file writer stopped")),
        }
    }
}

impl BodySink for BackgroundWriter {
    fn store(&mut self, buf: Vec<u8>, filled: usize) -> io::Result<Vec<u8>> {
        match &self.filled {
            Some(queue) if queue.send((buf, filled)).is_ok() => {}
            _ => return Err(self.stopped()),
        }
        match self.empty.recv() {
            Ok(next) => Ok(next),
            Err(_) => Err(self.stopped()),
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.filled = None;
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_and_hashes_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let data: Vec<u8> = (0..3 * CHUNK_SIZE + 12345).map(|i| (i % 251) as u8).collect();
        let mut writer = BackgroundWriter::new(File::create(&path).unwrap(), blake3::Hasher::new()).unwrap();
        let mut buf = vec![0; CHUNK_SIZE];
        for piece in data.chunks(100_000) {
            buf[..piece.len()].copy_from_slice(piece);
            buf = writer.store(buf, piece.len()).unwrap();
            assert_eq!(buf.len(), CHUNK_SIZE);
        }
        let (_, hasher) = writer.finish().unwrap();
        let mut written = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut written).unwrap();
        assert!(written == data, "{} bytes written of {}", written.len(), data.len());
        assert_eq!(hasher.finalize(), blake3::hash(&data));
    }

    #[test]
    fn dropped_unfinished_it_still_writes_what_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut writer = BackgroundWriter::new(File::create(&path).unwrap(), blake3::Hasher::new()).unwrap();
        writer.store(vec![7; CHUNK_SIZE], 1000).unwrap();
        drop(writer);
        assert_eq!(std::fs::read(&path).unwrap(), vec![7; 1000]);
    }

    #[test]
    fn a_write_error_surfaces() {
        // A file opened read-only: every write fails on the writing thread.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        File::create(&path).unwrap();
        let mut writer = BackgroundWriter::new(File::open(&path).unwrap(), blake3::Hasher::new()).unwrap();
        let early = (0..BUFFERS + 1).try_for_each(|_| writer.store(vec![1; CHUNK_SIZE], CHUNK_SIZE).map(drop));
        let result = early.and_then(|()| writer.finish().map(drop));
        assert!(result.is_err());
    }
}
