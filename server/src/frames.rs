//! An upload's bytes in frames (after `frames on`): `DATA <len>` lines each
//! followed by `<len>` bytes, then `END ok` (with `blake3=<hex>` when the
//! hash comes after the bytes) or `END cancelled`. Framing is
//! what lets a client stop an upload half-way and keep its session: the
//! server knows where the bytes end without reading all that was announced.
//! (Downloads are framed by the writer, see [`crate::writer`].)

use std::io::{self, BufRead, Read};

use common::{Digest, Header};

/// Longest frame line read (`END ok blake3=<64 hex digits>` is 79 bytes).
const MAX_FRAME_LINE: u64 = 128;

/// How a framed upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `END ok`, with the hash of the bytes when it comes after them.
    Complete(Option<Digest>),
    /// `END cancelled`: the client stopped; nothing is to be stored.
    Cancelled,
}

/// Reads the file's bytes out of the frames; `read` gives 0 at `END`.
pub struct FramedUpload<'a, R: BufRead> {
    inner: &'a mut R,
    /// Bytes left in the current frame.
    left: u64,
    ended: Option<Ending>,
}

impl<'a, R: BufRead> FramedUpload<'a, R> {
    /// Frames read from `inner`, which is positioned after the go-ahead.
    pub fn new(inner: &'a mut R) -> FramedUpload<'a, R> {
        FramedUpload { inner, left: 0, ended: None }
    }

    /// How the frames ended, once `END` has been read.
    pub fn ended(&self) -> Option<Ending> {
        self.ended
    }

    /// After the announced bytes: reads up to `END`, which must come next.
    ///
    /// # Errors
    /// More bytes than announced, or anything that is not a frame: the
    /// session cannot go on.
    pub fn finish(&mut self) -> io::Result<Ending> {
        let mut byte = [0u8; 1];
        if self.read(&mut byte)? > 0 {
            return Err(bad("the upload is longer than announced"));
        }
        self.ended.ok_or_else(|| bad("the upload ended without END"))
    }

    /// Reads the next frame line: sets `left` or `ended`.
    fn next_frame(&mut self) -> io::Result<()> {
        let mut line = Vec::with_capacity(32);
        (&mut *self.inner).take(MAX_FRAME_LINE).read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Err(if line.is_empty() {
                io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload")
            } else {
                bad("a frame line is too long or cut short")
            });
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("a frame line is not UTF-8"))?;
        match Header::parse(text) {
            Ok(Header::Data { len }) => self.left = len,
            Ok(Header::End { cancelled: true, .. }) => self.ended = Some(Ending::Cancelled),
            Ok(Header::End { cancelled: false, digest }) => self.ended = Some(Ending::Complete(digest)),
            _ => return Err(bad("expected DATA <len> or END ok [blake3=<hex>]|cancelled")),
        }
        Ok(())
    }
}

impl<R: BufRead> Read for FramedUpload<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.left == 0 {
            if self.ended.is_some() || buf.is_empty() {
                return Ok(0);
            }
            self.next_frame()?;
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> (io::Result<Vec<u8>>, Option<Ending>) {
        let mut inner = input;
        let mut frames = FramedUpload::new(&mut inner);
        let mut out = Vec::new();
        let result = frames.read_to_end(&mut out).map(|_| out);
        (result, frames.ended())
    }

    #[test]
    fn frames_give_their_bytes_and_end() {
        let (bytes, ended) = read_all(b"DATA 3\nabcDATA 0\nDATA 3\nde\nEND ok\nnext request\n");
        assert_eq!((bytes.unwrap(), ended), (b"abcde\n".to_vec(), Some(Ending::Complete(None))));
        let (bytes, ended) = read_all(b"DATA 2\nabEND cancelled\n");
        assert_eq!((bytes.unwrap(), ended), (b"ab".to_vec(), Some(Ending::Cancelled)));
        let hash = Digest::from(blake3::hash(b"ab"));
        let (bytes, ended) = read_all(format!("DATA 2\nabEND ok blake3={hash}\n").as_bytes());
        assert_eq!((bytes.unwrap(), ended), (b"ab".to_vec(), Some(Ending::Complete(Some(hash)))));
    }

    #[test]
    fn anything_else_is_an_error() {
        for bad in [
            &b"DATA 5\nab"[..],
            b"DATA x\n",
            b"hello\n",
            b"DATA 1",
            b"END\n",
            b"END ok blake3=12\n",
            b"END cancelled blake3=\n",
            &[b'D'; 200],
        ] {
            let (result, ended) = read_all(bad);
            assert!(result.is_err() && ended.is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn finish_wants_end_right_after_the_announced_bytes() {
        let mut inner = &b"DATA 3\nabcEND ok\n"[..];
        let mut frames = FramedUpload::new(&mut inner);
        let mut buf = [0u8; 3];
        frames.read_exact(&mut buf).unwrap();
        assert_eq!(frames.finish().unwrap(), Ending::Complete(None));

        let mut inner = &b"DATA 4\nabcdEND ok\n"[..];
        let mut frames = FramedUpload::new(&mut inner);
        frames.read_exact(&mut buf).unwrap();
        assert!(frames.finish().is_err(), "one byte too many");
    }
}
