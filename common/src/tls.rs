//! A TLS connection (rustls) over a TCP socket that a reading thread and a
//! writing thread use at once, as both sides of this protocol do: the reader
//! waits for requests (or replies) while the writer sends replies (or an
//! upload), and a `cancel` must get through while a download is sent.
//!
//! One `rustls::Connection` holds the state of both directions, so every
//! handle shares it behind a mutex. Nobody ever waits while holding that
//! lock: the socket is only read and written with `MSG_DONTWAIT` under it,
//! and waiting for the socket (`poll`, with the handle's timeout) happens
//! outside it. A writer stuck on a peer that does not read therefore never
//! stops the reader from seeing what that peer sent.
//!
//! Timeouts behave like a socket's: a read that waits longer than the read
//! timeout fails with [`io::ErrorKind::TimedOut`]; so does a write whose
//! bytes the peer takes nothing of for the write timeout. A write that times
//! out after its bytes were taken into the TLS stream cannot be retried (the
//! stream would repeat them): it fails with [`io::ErrorKind::BrokenPipe`],
//! and the connection has to end.
//!
//! Also here: [`fingerprint`], the SHA-256 of a certificate the way
//! `openssl x509 -noout -fingerprint -sha256` prints it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use rustls::Connection;

/// Bytes taken off the socket at once before rustls sees them (a TLS record
/// is at most ~16 KiB; one `recv` takes several).
const INBOUND: usize = 64 * 1024;

/// Bytes of a file read and encrypted at once by [`TlsStream::send_file`].
const FILE_CHUNK: usize = 256 * 1024;

/// Encrypted bytes rustls may hold ready to send; one [`FILE_CHUNK`] fits.
const SEND_BUFFER: usize = FILE_CHUNK + 64 * 1024;

/// A TLS connection, or another handle on it (see [`TlsStream::try_clone`]).
#[derive(Debug)]
pub struct TlsStream {
    shared: Arc<Shared>,
    /// This handle's buffer for [`TlsStream::send_file`], allocated on first use.
    scratch: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    socket: TcpStream,
    state: Mutex<State>,
    /// Read and write timeouts; `None` waits for ever.
    timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
}

#[derive(Debug)]
struct State {
    conn: Connection,
    /// Bytes received and not yet given to rustls: `inbound[start..end]`.
    inbound: Vec<u8>,
    start: usize,
    end: usize,
    /// Plaintext taken out of rustls by [`TlsStream::peek`], read first.
    peeked: Vec<u8>,
    /// The peer closed its side of the socket.
    eof: bool,
}

impl TlsStream {
    /// Runs `conn` (a client or server connection not yet handshaken) over `socket`.
    pub fn new(socket: TcpStream, conn: impl Into<Connection>) -> TlsStream {
        let mut conn = conn.into();
        conn.set_buffer_limit(Some(SEND_BUFFER));
        let state = State { conn, inbound: Vec::new(), start: 0, end: 0, peeked: Vec::new(), eof: false };
        let shared = Shared { socket, state: Mutex::new(state), timeouts: Mutex::new((None, None)) };
        TlsStream { shared: Arc::new(shared), scratch: Vec::new() }
    }

    /// Another handle on the same connection (no new descriptor).
    pub fn try_clone(&self) -> TlsStream {
        TlsStream { shared: Arc::clone(&self.shared), scratch: Vec::new() }
    }

    /// The TCP socket underneath, for its options and addresses.
    pub fn socket(&self) -> &TcpStream {
        &self.shared.socket
    }

    /// Completes the handshake, giving up at `deadline`.
    ///
    /// # Errors
    /// [`io::ErrorKind::TimedOut`] at the deadline, `UnexpectedEof` when the
    /// peer leaves, `InvalidData` (with rustls' reason) when the handshake fails.
    pub fn handshake(&self, deadline: Instant) -> io::Result<()> {
        loop {
            let interest = {
                let mut state = self.lock();
                state.push(&self.shared.socket)?;
                if !state.conn.is_handshaking() && !state.conn.wants_write() {
                    return Ok(());
                }
                if state.conn.is_handshaking() && state.conn.wants_read() {
                    if state.eof {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during the TLS handshake"));
                    }
                    if state.pull(&self.shared.socket)? {
                        continue;
                    }
                }
                if state.conn.wants_write() {
                    PollFlags::OUT
                } else {
                    PollFlags::IN
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake took too long"));
            }
            wait(&self.shared.socket, interest, Some(left))?;
        }
    }

    /// Runs `f` on the connection's state: the peer's certificates, the
    /// negotiated suite.
    pub fn inspect<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.lock().conn)
    }

    /// How long a read may wait (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.timeouts().0 = timeout;
    }

    /// How long a write may wait for the peer to take something (`None`: for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.timeouts().1 = timeout;
    }

    /// Copies into `buf` plaintext that has arrived and not been read,
    /// without waiting; a later read still returns it. 0 when none has.
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let mut state = self.lock();
        if state.peeked.len() < buf.len() {
            let _ = state.pull(&self.shared.socket);
            let mut more = vec![0; buf.len() - state.peeked.len()];
            if let Ok(n) = state.conn.reader().read(&mut more) {
                state.peeked.extend_from_slice(&more[..n]);
            }
        }
        let n = state.peeked.len().min(buf.len());
        buf[..n].copy_from_slice(&state.peeked[..n]);
        n
    }

    /// Writes `bytes` without waiting for the peer, as far as the socket
    /// takes them now: for a short refusal on a fresh connection.
    pub fn send_now(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if state.conn.writer().write_all(bytes).is_ok() {
            let _ = state.push(&self.shared.socket);
        }
    }

    /// Ends reading, writing or both, for every handle; ending the writing
    /// side first sends TLS's `close_notify` if the socket takes it now.
    pub fn shutdown(&self, how: Shutdown) {
        if how != Shutdown::Read {
            let mut state = self.lock();
            state.conn.send_close_notify();
            let _ = state.push(&self.shared.socket);
        }
        let _ = self.shared.socket.shutdown(how);
    }

    /// Reads up to `count` bytes of `file` from its position and sends them;
    /// 0 once the file has ended.
    ///
    /// # Errors
    /// As [`Write::write_all`] on this stream, and the file's reads.
    pub fn send_file(&mut self, file: &mut File, count: u64) -> io::Result<u64> {
        let want = usize::try_from(count).unwrap_or(usize::MAX).min(FILE_CHUNK);
        if self.scratch.len() < want {
            self.scratch.resize(want, 0);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let read = loop {
            match file.read(&mut scratch[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let sent = read.and_then(|n| self.write_all(&scratch[..n]).map(|()| n as u64));
        self.scratch = scratch;
        sent
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn timeouts(&self) -> MutexGuard<'_, (Option<Duration>, Option<Duration>)> {
        self.shared.timeouts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends what rustls holds ready, waiting for the socket as needed; fails
    /// once the peer takes nothing for the write timeout.
    fn flush_all(&self) -> io::Result<()> {
        let timeout = self.timeouts().1;
        loop {
            if !self.lock().push(&self.shared.socket)? {
                return Ok(());
            }
            wait(&self.shared.socket, PollFlags::OUT, timeout)?;
        }
    }
}

impl State {
    /// Sends what rustls holds ready as far as the socket takes it now.
    /// True while some is left.
    fn push(&mut self, socket: &TcpStream) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut NoWait(socket)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Gives rustls bytes that have arrived, without waiting, and processes
    /// them. True when something happened (bytes, or the peer's close).
    fn pull(&mut self, socket: &TcpStream) -> io::Result<bool> {
        if self.start == self.end {
            if self.eof {
                return Ok(false);
            }
            if self.inbound.is_empty() {
                self.inbound = vec![0; INBOUND];
            }
            match rustix::net::recv(socket, &mut self.inbound[..], RecvFlags::DONTWAIT) {
                Ok((0, _)) => self.eof = true,
                Ok((n, _)) => (self.start, self.end) = (0, n),
                Err(Errno::AGAIN | Errno::INTR) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        let mut arrived = &self.inbound[self.start..self.end];
        let n = self.conn.read_tls(&mut arrived)?;
        self.start += n;
        if let Err(e) = self.conn.process_new_packets() {
            // rustls has queued an alert saying why; send it if it goes now.
            let _ = self.push(socket);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // A handshake message or a key update may want an answer.
        self.push(socket)?;
        Ok(true)
    }

    /// Plaintext for `buf`: `None` while none has arrived, `Some(0)` at the end.
    fn plaintext(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.peeked.is_empty() {
            let n = self.peeked.len().min(buf.len());
            buf[..n].copy_from_slice(&self.peeked[..n]);
            self.peeked.drain(..n);
            return Ok(Some(n));
        }
        match self.conn.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // The peer closed the socket without `close_notify`: for this
            // protocol, whose messages carry their lengths, that is an end
            // like any other (a cut-off message is noticed above).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let timeout = self.timeouts().0;
        loop {
            {
                let mut state = self.lock();
                if let Some(n) = state.plaintext(buf)? {
                    return Ok(n);
                }
                if state.pull(&self.shared.socket)? {
                    continue;
                }
            }
            wait(&self.shared.socket, PollFlags::IN, timeout)?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // What is still queued goes first; while it waits, nothing new is
        // taken, so a timeout here can be retried.
        self.flush_all()?;
        let taken = self.lock().conn.writer().write(&buf[..buf.len().min(FILE_CHUNK)])?;
        self.flush_all().map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut {
                io::Error::new(io::ErrorKind::BrokenPipe, format!("{e}; the TLS stream cannot go on"))
            } else {
                e
            }
        })?;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_all()
    }
}

/// The socket, read and written without waiting.
struct NoWait<'a>(&'a TcpStream);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::net::send(self.0, buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until `socket` is ready for `interest` (or has failed or closed),
/// at most `timeout`.
fn wait(socket: &TcpStream, interest: PollFlags, timeout: Option<Duration>) -> io::Result<()> {
    let limit = timeout.map(|t| Timespec::try_from(t).unwrap_or(Timespec { tv_sec: i64::MAX, tv_nsec: 0 }));
    let started = Instant::now();
    loop {
        let mut fds = [PollFd::new(socket, interest)];
        match poll(&mut fds, limit.as_ref()) {
            Ok(0) => {
                let waited = started.elapsed().as_secs();
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("nothing moved for {waited}s")));
            }
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A certificate's SHA-256 as `openssl x509 -noout -fingerprint -sha256`
/// prints it after `sha256 Fingerprint=`: upper-case hex pairs joined by colons.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = String::with_capacity(95);
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// `text` as a fingerprint if it is one (any case, colons optional), in
/// [`fingerprint`]'s form.
pub fn parse_fingerprint(text: &str) -> Option<String> {
    let hex: String = text.trim().chars().filter(|&c| c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32).map(|i| &upper[2 * i..2 * i + 2]).collect();
    Some(pairs.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_like_openssl_and_parse_back() {
        let printed = fingerprint(b"certificate bytes");
        assert_eq!(printed.len(), 95);
        assert!(printed.split(':').all(|pair| pair.len() == 2 && pair.chars().all(|c| c.is_ascii_hexdigit())));
        assert_eq!(printed, printed.to_ascii_uppercase());
        assert_eq!(parse_fingerprint(&printed.to_lowercase()).as_deref(), Some(printed.as_str()));
        assert_eq!(parse_fingerprint(&printed.replace(':', "")).as_deref(), Some(printed.as_str()));
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
