//! TFTP's netascii: a file's LF travels as CR LF and a lone CR as CR NUL
//! ([`encode`]), and back ([`decode`]). Both are byte transducers over a
//! buffered reader (one system call per buffer, not per byte).

use std::io::{self, BufRead, BufReader, Read};

/// What one step gives: up to two bytes.
type Out = ([u8; 2], usize);

/// `inner`'s bytes passed through `step` (`None` once at the end).
pub struct Transcode<R, S> {
    inner: BufReader<R>,
    state: S,
    step: fn(&mut S, Option<u8>) -> Out,
    /// The second byte of a step not yet given out.
    pending: Option<u8>,
    done: bool,
}

/// The file's bytes as netascii.
pub fn encode<R: Read>(inner: R) -> Transcode<R, ()> {
    Transcode { inner: BufReader::new(inner), state: (), step: encode_step, pending: None, done: false }
}

/// Netascii back to the file's bytes.
pub fn decode<R: Read>(inner: R) -> Transcode<R, bool> {
    Transcode { inner: BufReader::new(inner), state: false, step: decode_step, pending: None, done: false }
}

fn encode_step(_: &mut (), byte: Option<u8>) -> Out {
    match byte {
        None => ([0, 0], 0),
        Some(b'\n') => ([b'\r', b'\n'], 2),
        Some(b'\r') => ([b'\r', 0], 2),
        Some(b) => ([b, 0], 1),
    }
}

/// `held_cr`: a CR was read and the byte after it not yet.
fn decode_step(held_cr: &mut bool, byte: Option<u8>) -> Out {
    match (std::mem::take(held_cr), byte) {
        (true, None) => ([b'\r', 0], 1),
        (false, None) => ([0, 0], 0),
        (true, Some(b'\n')) => ([b'\n', 0], 1),
        (true, Some(0)) => ([b'\r', 0], 1),
        (true, Some(b'\r')) => {
            *held_cr = true;
            ([b'\r', 0], 1)
        }
        (true, Some(b)) => ([b'\r', b], 2),
        (false, Some(b'\r')) => {
            *held_cr = true;
            ([0, 0], 0)
        }
        (false, Some(b)) => ([b, 0], 1),
    }
}

impl<R: Read, S> Read for Transcode<R, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if let Some(b) = self.pending.take() {
                buf[n] = b;
                n += 1;
                continue;
            }
            if self.done {
                break;
            }
            let next = match self.inner.fill_buf()? {
                [] => {
                    self.done = true;
                    None
                }
                [b, ..] => Some(*b),
            };
            if next.is_some() {
                self.inner.consume(1);
            }
            let (bytes, len) = (self.step)(&mut self.state, next);
            if len > 0 {
                buf[n] = bytes[0];
                n += 1;
            }
            if len > 1 {
                self.pending = Some(bytes[1]);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_travel_as_cr_lf_and_come_back() {
        let mut out = Vec::new();
        encode(&b"a\nb\rc"[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"a\r\nb\r\0c");
        for original in [&b"a\nb\rc\r\n\r"[..], b"\r\r\n", b"plain", b""] {
            let mut encoded = Vec::new();
            encode(original).read_to_end(&mut encoded).unwrap();
            let mut decoded = Vec::new();
            decode(&encoded[..]).read_to_end(&mut decoded).unwrap();
            assert_eq!(decoded, original);
        }
    }
}
