//! The receiving half of every door's transfers.

use std::io::{self, Read, Write};

/// Buffers going round between the reading thread and the writing one.
const RECEIVE_BUFFERS: usize = 4;

/// Size of each: an upload of at most this many bytes is received on the
/// session's thread alone.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// How much [`receive`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Exactly this many bytes; the end of the stream before them is an error.
    Length(u64),
    /// To the end of the stream (an upload of unknown length: TFTP), at most
    /// this many bytes; more is [`io::ErrorKind::FileTooLarge`].
    End(u64),
}

/// The receiving half of every door's transfers: reads `from` into `to`
/// as `until` says, reporting progress (the bytes read so far). Reading the
/// connection and writing the file (for an upload, also hashing it) overlap:
/// the bytes go to `to` on a second thread, [`RECEIVE_BUFFERS`] buffers of
/// 256 KiB going round, so memory stays flat. When writing fails (the disk
/// is full), the rest is still read, so the connection stays in step and
/// the client can be told why: `Ok(Some(error))`.
///
/// # Errors
/// When the connection fails, ends before the length, or (to the end) goes
/// past the limit.
pub fn receive(
    from: &mut impl Read,
    to: &mut (impl Write + Send),
    until: Until,
    mut progress: impl FnMut(u64),
) -> io::Result<Option<io::Error>> {
    if let Until::Length(len) = until {
        if len <= RECEIVE_BUFFER as u64 {
            return receive_small(from, to, len, progress);
        }
    }
    let (filled_tx, filled_rx) = crossbeam_channel::bounded::<(Vec<u8>, usize)>(RECEIVE_BUFFERS);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(RECEIVE_BUFFERS);
    for _ in 0..RECEIVE_BUFFERS {
        let _ = empty_tx.send(vec![0u8; RECEIVE_BUFFER]);
    }
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut failed = None;
            for (buf, n) in filled_rx {
                if failed.is_none() {
                    failed = to.write_all(&buf[..n]).err();
                }
                let _ = empty_tx.send(buf);
            }
            failed
        });
        let mut done = 0;
        let read = loop {
            if until == Until::Length(done) {
                break Ok(());
            }
            let Ok(mut buf) = empty_rx.recv() else { break Ok(()) };
            let want = match until {
                Until::Length(len) => buf.len().min(usize::try_from(len - done).unwrap_or(usize::MAX)),
                Until::End(_) => buf.len(),
            };
            let n = loop {
                match from.read(&mut buf[..want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match (n, until) {
                (Ok(0), Until::End(_)) => break Ok(()),
                (Ok(0), Until::Length(_)) => {
                    break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload"))
                }
                (Ok(n), Until::End(limit)) if done + n as u64 > limit => {
                    break Err(io::Error::new(io::ErrorKind::FileTooLarge, format!("more than {limit} bytes")));
                }
                (Ok(n), _) => {
                    done += n as u64;
                    progress(done);
                    if filled_tx.send((buf, n)).is_err() {
                        break Ok(());
                    }
                }
                (Err(e), _) => break Err(e),
            }
        };
        drop(filled_tx);
        // Every byte read is written before this returns, whatever happened.
        let failed = writer.join().unwrap_or_else(|_| Some(io::Error::other("the upload writer panicked")));
        read.map(|()| failed)
    })
}

/// [`receive`] of one buffer's worth: no second thread, and no more memory than the bytes.
fn receive_small(
    from: &mut impl Read,
    to: &mut impl Write,
    len: u64,
    mut progress: impl FnMut(u64),
) -> io::Result<Option<io::Error>> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(RECEIVE_BUFFER)];
    let mut filled = 0;
    let read = loop {
        if filled == buf.len() {
            break Ok(());
        }
        match from.read(&mut buf[filled..]) {
            Ok(0) => break Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection ended mid-upload")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    progress(filled as u64);
    // What arrived is written even when the rest did not come (put -c).
    let failed = to.write_all(&buf[..filled]).err();
    read.map(|()| failed)
}
