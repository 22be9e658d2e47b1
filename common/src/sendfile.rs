//! Sending a file's bytes to a socket with `sendfile(2)`, for `get` on the
//! server and `put` on the client: the bytes go from the page cache to the
//! socket without being copied through the process. (`std::io::copy` from a
//! `File` to a `TcpStream` was seen falling back to 8 KiB `read`/`send`
//! pairs, 79,664 `sendto` calls for 1 GiB, at half the speed.)

use std::fs::File;
use std::io::{self, Read};
use std::net::TcpStream;

use rustix::io::Errno;

/// Sends up to `count` bytes of `file`, from its current position (which
/// moves on), to `socket`. Returns how many were sent, 0 once the file has
/// ended; fewer than `count` is not an error, call again.
///
/// # Errors
/// As the socket's writes; a socket write timeout that passes with nothing
/// sent is [`io::ErrorKind::TimedOut`]. A file system that cannot feed
/// `sendfile` gets a buffered copy instead.
pub fn send_file(socket: &TcpStream, file: &mut File, count: u64) -> io::Result<u64> {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    loop {
        return match rustix::fs::sendfile(socket, &*file, None, count) {
            Ok(n) => Ok(n as u64),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading")),
            Err(Errno::INVAL | Errno::NOSYS) => io::copy(&mut file.take(count as u64), &mut &*socket),
            Err(e) => Err(e.into()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::net::TcpListener;

    #[test]
    fn sends_the_asked_range_from_the_current_position() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        file.write_all(&data).unwrap();
        file.seek(SeekFrom::Start(1000)).unwrap();

        let mut sent = 0;
        while sent < 50_000 {
            sent += send_file(&sender, &mut file, 50_000 - sent).unwrap();
        }
        assert_eq!(file.stream_position().unwrap(), 51_000);
        let mut rest = 0;
        loop {
            match send_file(&sender, &mut file, 1 << 20).unwrap() {
                0 => break,
                n => rest += n,
            }
        }
        assert_eq!(rest, 49_000, "then everything after it, and 0 at the end");
        drop(sender);
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).unwrap();
        assert!(got == data[1000..], "{} bytes", got.len());
    }
}
