//! The UDP door (`--tftp PORT`): the share over TFTP for devices (routers,
//! phones, PXE boot) and every OS's `tftp`. Reads, and writes where the
//! server takes uploads: RFC 1350 (octet and netascii), option negotiation (RFC 2347) with `blksize`
//! (2348), `timeout` and `tsize` (2349) and `windowsize` (7440). Block
//! numbers roll over past 65,535.
//!
//! The codec and the transfer loop are ours: the `tftpd` crate serves a
//! directory by path, with no way to go through the share's sandbox (hidden
//! names, links out, rights) that every other door uses. Each transfer runs
//! on its own thread and its own socket, at most `--tftp-max-transfers` at
//! once and `--tftp-max-per-ip` for one address (the next request gets
//! "server busy"). A request's source can be forged, so a transfer that has
//! heard nothing from its peer sends one block per timeout, backs off, and
//! gives up within [`UNHEARD_LIMIT`] whatever `timeout` it asked for. Each opens its file through the
//! command layer ([`cmd::apply`] with [`Op::ReadPlain`] and [`Op::Upload`]), and shows in `status` under
//! `web` as `tftp` with its peer and progress.
//!
//! # Layout
//! - this file: [`TftpServer`], the request port, a read transfer and a write transfer.
//! - [`packet`]: the packets, parsed and encoded.
//! - [`netascii`]: line ends as netascii carries them, both ways.

pub mod netascii;
pub mod packet;

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::status::Activity;
use common::Code;

use crate::cmd::{self, files, Caller, Op, Outcome, PlainFile, Refusal};
use crate::config::Shared;
use crate::slots::{Cap, Caps, Over, Place};
use packet::{ErrorCode, Packet, MAX_BLKSIZE};

/// Seconds to wait for an acknowledgement before sending again, unless the
/// client asks for another `timeout`.
const DEFAULT_TIMEOUT: u64 = 1;

/// Times a window is sent again before the transfer gives up.
const MAX_RETRIES: u32 = 5;

/// How long a transfer whose peer has not answered at all may live, unless
/// the server is told otherwise (`--tftp-give-up`): its request may have
/// come from a forged address.
pub const UNHEARD_LIMIT: Duration = Duration::from_secs(10);

/// The largest factor a wait grows to by backing off (one doubling per resend).
const MAX_BACKOFF: u32 = 8;

/// Largest window granted (RFC 7440 allows 65,535; the window's blocks are
/// kept in memory until acknowledged).
const MAX_WINDOW: u64 = 64;

/// The TFTP request port and what its transfers share.
pub struct TftpServer {
    socket: UdpSocket,
    shared: Arc<Shared>,
    places: Arc<Caps>,
    unheard_limit: Duration,
}

/// A read or write request as it came.
struct Asked {
    write: bool,
    name: String,
    mode: String,
    options: Vec<(String, String)>,
}

impl TftpServer {
    /// Serves `shared`'s share on `socket`, at most `max_transfers` at once
    /// and `max_per_ip` for one address.
    pub fn new(socket: UdpSocket, shared: Arc<Shared>, max_transfers: usize, max_per_ip: usize) -> TftpServer {
        let places = Arc::new(Caps::new(max_transfers, max_per_ip));
        TftpServer { socket, shared, places, unheard_limit: UNHEARD_LIMIT }
    }

    /// The same server, giving up on a peer that never answers after
    /// `limit` rather than [`UNHEARD_LIMIT`].
    pub fn with_unheard_limit(mut self, limit: Duration) -> TftpServer {
        self.unheard_limit = limit;
        self
    }

    /// The address bound.
    ///
    /// # Errors
    /// As `UdpSocket::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The transfers under way, for the shutdown to wait on.
    pub fn places(&self) -> Arc<Caps> {
        Arc::clone(&self.places)
    }

    /// Answers requests until the server stops (a packet wakes it then);
    /// each transfer on its own thread, which may finish after this returns.
    pub fn run(self) {
        let mut buf = vec![0u8; MAX_BLKSIZE + 4];
        loop {
            let received = self.socket.recv_from(&mut buf);
            if self.shared.stopping.is_set() {
                return;
            }
            let Ok((n, peer)) = received else { continue };
            match Packet::parse(&buf[..n]) {
                Ok(Packet::Request { write, name, mode, options }) => {
                    self.start(peer, Asked { write, name, mode, options });
                }
                // Anything else is a stray packet of no transfer here.
                Ok(_) => send(&self.socket, peer, &error(ErrorCode::UnknownTransfer, "no such transfer")),
                Err(e) => send(&self.socket, peer, &error(ErrorCode::IllegalOperation, &e.to_string())),
            }
        }
    }

    fn start(&self, peer: SocketAddr, asked: Asked) {
        let place = match self.places.try_acquire(peer.ip()) {
            Ok(place) => place,
            Err(Over::Full) => {
                return send(&self.socket, peer, &error(ErrorCode::Undefined, "server busy; try again shortly"))
            }
            Err(Over::PerAddress(limit)) => {
                let why = format!("too many transfers from your address (at most {limit})");
                return send(&self.socket, peer, &error(ErrorCode::Undefined, &why));
            }
            Err(over @ Over::Unavailable) => {
                return send(&self.socket, peer, &error(ErrorCode::Undefined, &over.message(peer)));
            }
        };
        let local = self.socket.local_addr().map(|a| SocketAddr::new(a.ip(), 0));
        let (shared, unheard_limit) = (Arc::clone(&self.shared), self.unheard_limit);
        let spawned = std::thread::Builder::new().name("tftp".into()).spawn(move || {
            // The place is given back however the transfer ends, a panic included.
            match local.and_then(UdpSocket::bind) {
                Ok(socket) => serve_transfer(&socket, peer, &shared, place, &asked, unheard_limit),
                Err(e) => tracing::warn!(%peer, "cannot open a socket for a TFTP transfer: {e}"),
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(%peer, "cannot start a thread for a TFTP transfer: {e}");
        }
    }
}

fn send(socket: &UdpSocket, to: SocketAddr, packet: &Packet) {
    let _ = socket.send_to(&packet.encode(), to);
}

fn error(code: ErrorCode, message: &str) -> Packet {
    Packet::Error { code, message: message.to_string() }
}

/// The TFTP error for a refused command.
fn error_for(refusal: &Refusal) -> Packet {
    let code = match refusal.code {
        Code::NotFound => ErrorCode::NotFound,
        Code::Forbidden | Code::Unauthorized | Code::BadRequest => ErrorCode::AccessViolation,
        Code::InsufficientStorage | Code::TooLarge => ErrorCode::DiskFull,
        Code::Exists => ErrorCode::FileExists,
        _ => ErrorCode::Undefined,
    };
    error(code, &refusal.message)
}

/// What the client asked for and the server grants.
struct Agreed {
    blksize: usize,
    timeout: Duration,
    window: u64,
    /// The options to acknowledge (none: no OACK, plain RFC 1350).
    acked: Vec<(String, String)>,
}

/// Takes the options the server can honour, ignoring the others (atftp
/// sends `tsize enable`, say); `size` answers `tsize` when known.
fn negotiate(options: &[(String, String)], size: Option<u64>) -> Agreed {
    let mut agreed =
        Agreed { blksize: 512, timeout: Duration::from_secs(DEFAULT_TIMEOUT), window: 1, acked: Vec::new() };
    for (name, value) in options {
        let number = value.parse::<u64>().ok();
        match (name.as_str(), number) {
            ("blksize", Some(n)) if n >= 8 => {
                agreed.blksize = n.min(MAX_BLKSIZE as u64) as usize;
                agreed.acked.push((name.clone(), agreed.blksize.to_string()));
            }
            ("timeout", Some(n)) if (1..=255).contains(&n) => {
                agreed.timeout = Duration::from_secs(n);
                agreed.acked.push((name.clone(), n.to_string()));
            }
            ("tsize", _) => {
                if let Some(size) = size {
                    agreed.acked.push((name.clone(), size.to_string()));
                }
            }
            ("windowsize", Some(n)) if n >= 1 => {
                agreed.window = n.min(MAX_WINDOW);
                agreed.acked.push((name.clone(), agreed.window.to_string()));
            }
            _ => {}
        }
    }
    agreed
}

/// Up to `len` bytes of `from`: fewer only at its end.
fn read_block(from: &mut (impl Read + ?Sized), len: usize) -> io::Result<Vec<u8>> {
    let mut block = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match from.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    block.truncate(filled);
    Ok(block)
}

/// Why a transfer ended before its last block.
#[derive(Debug, thiserror::Error)]
enum Ended {
    /// The peer never sent anything (its request may have been forged).
    #[error("no answer from the peer within {}s", .0.as_secs())]
    Unheard(Duration),
    /// A reply the peer should have acknowledged was sent [`MAX_RETRIES`] more times.
    #[error("no answer after {MAX_RETRIES} retries")]
    NoAnswer,
    /// A block was sent [`MAX_RETRIES`] more times and never acknowledged.
    #[error("no acknowledgement after {MAX_RETRIES} retries")]
    NoAcknowledgement,
    /// The peer sent an ERROR packet.
    #[error("the client gave up: {0}")]
    GaveUp(String),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    File(io::Error),
    /// The transfer's socket failed.
    #[error("{0}")]
    Socket(io::Error),
}

impl Ended {
    /// As the error of a byte stream (a write transfer's blocks), a time-out
    /// for the peer's silences.
    fn into_io(self) -> io::Error {
        match self {
            Ended::File(e) | Ended::Socket(e) => e,
            Ended::Unheard(_) | Ended::NoAnswer | Ended::NoAcknowledgement => {
                io::Error::new(io::ErrorKind::TimedOut, self.to_string())
            }
            Ended::GaveUp(_) => io::Error::other(self.to_string()),
        }
    }
}

/// One request, on the transfer's own socket: what read and write transfers share.
struct Transfer<'a> {
    socket: &'a UdpSocket,
    peer: SocketAddr,
    /// Its session (shown in `status` as `tftp`) and the command layer's view of it.
    caller: Caller<'a, 'a>,
    /// The share path (a leading `/` is the share's top).
    path: &'a str,
    /// `netascii` rather than `octet`.
    ascii: bool,
    options: &'a [(String, String)],
    /// When to give up on a peer that never answers.
    unheard_limit: Duration,
    /// Its place among the transfers, given back before a refusal is sent,
    /// so a client that hears it can ask again at once.
    place: std::cell::RefCell<Option<Place>>,
}

impl Transfer<'_> {
    fn send(&self, packet: &Packet) {
        send(self.socket, self.peer, packet);
    }

    /// A refused command, logged and told as its TFTP error.
    fn refuse(&self, what: &str, refusal: &Refusal) {
        tracing::debug!(peer = %self.peer, "tftp {what} of '{}' refused: {}", common::text::escape(self.path), refusal.message);
        self.free_place();
        self.send(&error_for(refusal));
    }

    /// Gives the transfer's place back (its end is decided).
    fn free_place(&self) {
        drop(self.place.borrow_mut().take());
    }

    fn link(&self, timeout: Duration) -> Link<'_> {
        let (socket, peer, unheard_limit) = (self.socket, self.peer, self.unheard_limit);
        Link { socket, peer, timeout, buf: Vec::new(), started: Instant::now(), heard: false, unheard_limit }
    }
}

/// Runs one request (RRQ or WRQ) from `peer` on `socket`, its transfer ID.
fn serve_transfer(
    socket: &UdpSocket,
    peer: SocketAddr,
    shared: &Shared,
    place: Place,
    asked: &Asked,
    unheard_limit: Duration,
) {
    let Asked { write, name, mode, options } = asked;
    if mode != "octet" && mode != "netascii" {
        let why = format!("mode '{mode}' is not served; use octet");
        drop(place);
        return send(socket, peer, &error(ErrorCode::IllegalOperation, &why));
    }
    let visit = shared.presence.visit(peer, "tftp");
    let caller = Caller { shared, session: &visit, wanted: &|| true };
    let path = name.trim_start_matches('/');
    let place = std::cell::RefCell::new(Some(place));
    let transfer = Transfer { socket, peer, caller, path, ascii: mode == "netascii", options, unheard_limit, place };
    if *write {
        write_transfer(&transfer);
    } else {
        read_transfer(&transfer);
    }
}

/// One read transfer (RRQ).
fn read_transfer(t: &Transfer<'_>) {
    let (caller, path, peer) = (t.caller, t.path, t.peer);
    let visit = caller.session;
    let (file, len) = match cmd::apply(Op::ReadPlain(path.to_string()), caller) {
        Outcome::Plain(PlainFile { file, len, .. }) => (file, len),
        Outcome::Refused(refusal) => return t.refuse("read", &refusal),
        _ => return t.send(&error(ErrorCode::Undefined, "unexpected reply")),
    };
    let agreed = negotiate(t.options, (!t.ascii).then_some(len));
    let mut source: Box<dyn Read> = if t.ascii { Box::new(netascii::encode(file)) } else { Box::new(file) };
    let doing = visit.clock.doing(Activity::Get { file: path.to_string(), size: len, done: 0 });
    let started = Instant::now();
    let mut link = t.link(agreed.timeout);
    let outcome = (|| {
        if !agreed.acked.is_empty() {
            link.exchange(&Packet::OptionAck(agreed.acked.clone()), |p| matches!(p, Packet::Ack(0)))?;
        }
        send_blocks(&mut link, &mut source, &agreed, |acked| visit.clock.set_transferred(acked))
    })();
    drop(doing);
    match outcome {
        Ok(bytes) => {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(%peer, "sent '{path}' over TFTP: {bytes} bytes in {secs:.3}s");
        }
        Err(why) => tracing::info!(%peer, "TFTP read of '{path}' ended: {why}"),
    }
}

/// One write transfer (WRQ) from `peer`, through `put`'s path: writes
/// allowed, the size limit (a `tsize` over it refused before any data), a
/// temporary file that appears under its name only once complete, never
/// replacing a file (ERROR 6).
fn write_transfer(t: &Transfer<'_>) {
    let (caller, path, peer) = (t.caller, t.path, t.peer);
    let tsize = t.options.iter().find(|(k, _)| k == "tsize").and_then(|(_, v)| v.parse::<u64>().ok());
    let limit = caller.shared.config.max_upload_size;
    let announced = files::Announced {
        size: tsize.unwrap_or(limit),
        check: files::Check::Unchecked,
        replace: false,
        modified: None,
        resume: false,
    };
    let mut incoming = match cmd::apply(Op::Upload { announced, name: path.to_string() }, caller) {
        Outcome::Receive(incoming) => incoming,
        Outcome::Refused(refusal) => return t.refuse("write", &refusal),
        _ => return t.send(&error(ErrorCode::Undefined, "unexpected reply")),
    };
    let agreed = negotiate(t.options, tsize);
    let started = Instant::now();
    let mut receiver = Blocks {
        link: t.link(agreed.timeout),
        blksize: agreed.blksize,
        window: agreed.window,
        expected: 1,
        unacked: 0,
        block: Vec::new(),
        at: 0,
        ended: false,
        first: if agreed.acked.is_empty() { Packet::Ack(0) } else { Packet::OptionAck(agreed.acked.clone()) },
    };
    let received = if t.ascii {
        incoming.receive_to_end(&mut netascii::decode(&mut receiver))
    } else {
        incoming.receive_to_end(&mut receiver)
    };
    let bytes = incoming.offset();
    match received {
        Ok(()) => match incoming.finish(None) {
            Outcome::Ok { .. } => {
                receiver.ack();
                // Dally one timeout: the last block sent again means the
                // client lost our ACK; answer it, or it would report a
                // failure for a file that is stored. The transfer is done:
                // its place is free for the client's next one meanwhile.
                t.free_place();
                let deadline = Instant::now() + agreed.timeout;
                while let Ok(Some(Packet::Data { .. })) = receiver.link.receive(deadline) {
                    receiver.ack();
                }
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(%peer, "received '{path}' over TFTP: {bytes} bytes in {secs:.3}s");
            }
            Outcome::Refused(refusal) => t.send(&error_for(&refusal)),
            _ => {}
        },
        Err(e) => {
            if e.kind() == io::ErrorKind::FileTooLarge {
                t.send(&error(ErrorCode::DiskFull, &format!("larger than this server takes: {e}")));
            }
            incoming.abandon(&e);
        }
    }
}

/// A write transfer's blocks as a byte stream: each DATA in order is
/// acknowledged (at the end of each window, or on a gap or a timeout, with
/// the last block in order), and a block shorter than `blksize` ends the
/// stream; its ACK is the caller's, once the file is stored.
struct Blocks<'a> {
    link: Link<'a>,
    blksize: usize,
    window: u64,
    /// The next block wanted (not wrapped).
    expected: u64,
    /// Blocks taken since the last ACK.
    unacked: u64,
    block: Vec<u8>,
    at: usize,
    ended: bool,
    /// What answers the request (ACK 0 or the OACK): sent again until DATA 1 comes.
    first: Packet,
}

impl Blocks<'_> {
    fn ack(&self) {
        send(self.link.socket, self.link.peer, &Packet::Ack((self.expected - 1) as u16));
    }
}

impl Read for Blocks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.block.len() {
            if self.ended {
                return Ok(0);
            }
            self.next_block()?;
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Blocks<'_> {
    fn next_block(&mut self) -> io::Result<()> {
        if self.expected == 1 && self.unacked == 0 {
            send(self.link.socket, self.link.peer, &self.first);
        }
        let mut tries = 0;
        loop {
            let wait = self.link.wait(tries).map_err(Ended::into_io)?;
            match self.link.receive(Instant::now() + wait).map_err(Ended::into_io)? {
                Some(Packet::Data { block, bytes }) if block == self.expected as u16 => {
                    if bytes.len() > self.blksize {
                        return Err(io::Error::other("a block larger than agreed"));
                    }
                    self.ended = bytes.len() < self.blksize;
                    self.expected += 1;
                    self.unacked += 1;
                    // The last block's ACK waits until the file is stored: a
                    // client told "done" must find it there.
                    if !self.ended && self.unacked >= self.window {
                        self.ack();
                        self.unacked = 0;
                    }
                    (self.block, self.at) = (bytes, 0);
                    return Ok(());
                }
                // Out of order or a repeat: say where we are.
                Some(Packet::Data { .. }) => {
                    self.ack();
                    self.unacked = 0;
                }
                Some(_) => {}
                None => {
                    tries += 1;
                    self.link.wait(tries).map_err(Ended::into_io)?;
                    if tries > MAX_RETRIES {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no data after {MAX_RETRIES} retries"),
                        ));
                    }
                    if self.expected == 1 {
                        send(self.link.socket, self.link.peer, &self.first);
                    } else {
                        self.ack();
                    }
                    self.unacked = 0;
                }
            }
        }
    }
}

/// A transfer's socket and peer.
struct Link<'a> {
    socket: &'a UdpSocket,
    peer: SocketAddr,
    timeout: Duration,
    /// Where packets are received (one per transfer, not one per packet:
    /// a lock-step transfer waits once per block).
    buf: Vec<u8>,
    /// When the transfer began.
    started: Instant,
    /// The peer has sent a packet of this transfer: it is no forged address.
    heard: bool,
    /// How long the peer may say nothing at all.
    unheard_limit: Duration,
}

impl Link<'_> {
    /// How long to wait for an answer after the `tries`th resend (0: the
    /// first send): the timeout once the peer has answered; before, while
    /// its address may be forged, the timeout doubled with each resend (up
    /// to [`MAX_BACKOFF`] times), and never past the unheard limit from the start.
    ///
    /// # Errors
    /// When the peer has said nothing for the unheard limit.
    fn wait(&self, tries: u32) -> Result<Duration, Ended> {
        if self.heard {
            return Ok(self.timeout);
        }
        let wait = self.timeout * 2u32.pow(tries.min(MAX_BACKOFF.ilog2()));
        match self.unheard_limit.checked_sub(self.started.elapsed()).filter(|left| !left.is_zero()) {
            Some(left) => Ok(wait.min(left)),
            None => Err(Ended::Unheard(self.unheard_limit)),
        }
    }

    /// The next packet from the peer within the timeout; a packet from
    /// anyone else is answered with error 5 and does not count.
    fn receive(&mut self, deadline: Instant) -> Result<Option<Packet>, Ended> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; MAX_BLKSIZE + 4];
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket.set_read_timeout(Some(left)).map_err(Ended::Socket)?;
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) if from == self.peer => match Packet::parse(&self.buf[..n]) {
                    Ok(Packet::Error { message, .. }) => return Err(Ended::GaveUp(message)),
                    Ok(packet) => {
                        self.heard = true;
                        return Ok(Some(packet));
                    }
                    Err(_) => {}
                },
                Ok((_, from)) => send(self.socket, from, &error(ErrorCode::UnknownTransfer, "not your transfer")),
                Err(e) if common::transport::is_timeout(&e) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Ended::Socket(e)),
            }
        }
    }

    /// Sends `packet` until the peer answers with one that `wanted` accepts.
    fn exchange(&mut self, packet: &Packet, wanted: impl Fn(&Packet) -> bool) -> Result<(), Ended> {
        for tries in 0..=MAX_RETRIES {
            let wait = self.wait(tries)?;
            send(self.socket, self.peer, packet);
            let deadline = Instant::now() + wait;
            while let Some(answer) = self.receive(deadline)? {
                if wanted(&answer) {
                    return Ok(());
                }
            }
        }
        Err(Ended::NoAnswer)
    }
}

/// Sends block number `block` (wrapped to 16 bits on the wire) without copying it into a packet first.
fn send_data(link: &Link<'_>, block: u64, bytes: &[u8]) {
    let mut head = [0u8, 3, 0, 0];
    head[2..].copy_from_slice(&(block as u16).to_be_bytes());
    let _ = rustix::net::sendmsg_addr(
        link.socket,
        &rustix::net::SocketAddrAny::from(link.peer),
        &[io::IoSlice::new(&head), io::IoSlice::new(bytes)],
        &mut Default::default(),
        rustix::net::SendFlags::empty(),
    );
}

/// Sends the file in windows of blocks; on a timeout (never on a duplicate
/// acknowledgement) the first unacknowledged block goes again, and the rest
/// follow the peer's next acknowledgement; the bytes sent. Until the peer
/// has acknowledged a block, the window is one block: a forged request
/// brings no flood to its victim.
fn send_blocks(
    link: &mut Link<'_>,
    source: &mut dyn Read,
    agreed: &Agreed,
    progress: impl Fn(u64),
) -> Result<u64, Ended> {
    // Blocks base..read, read and not yet acknowledged; base..sent have gone out.
    let mut window: VecDeque<Vec<u8>> = VecDeque::new();
    // Block numbers counted without wrapping; on the wire they are mod 65,536.
    let (mut base, mut sent, mut last) = (1u64, 1u64, None::<u64>);
    let (mut acked_bytes, mut retries) = (0u64, 0u32);
    loop {
        let window_size = if base > 1 { agreed.window } else { 1 };
        while sent < base + window_size && last.is_none_or(|l| sent <= l) {
            let offset = usize::try_from(sent - base).unwrap_or(usize::MAX);
            if offset == window.len() {
                let block = read_block(source, agreed.blksize).map_err(Ended::File)?;
                if block.len() < agreed.blksize {
                    last = Some(sent);
                }
                window.push_back(block);
            }
            if let Some(block) = window.get(offset) {
                send_data(link, sent, block);
            }
            sent += 1;
        }
        let deadline = Instant::now() + link.wait(retries)?;
        let mut moved = false;
        while let Some(packet) = link.receive(deadline)? {
            let Packet::Ack(n) = packet else { continue };
            // The acknowledged block among those in flight (or the one before).
            let Some(acked) = (base - 1..sent).rev().find(|k| *k as u16 == n) else { continue };
            if acked < base {
                continue; // a duplicate: the window is not sent again for it
            }
            for _ in base..=acked {
                acked_bytes += window.pop_front().map_or(0, |b| b.len() as u64);
            }
            base = acked + 1;
            progress(acked_bytes);
            if last.is_some_and(|l| acked >= l) {
                return Ok(acked_bytes);
            }
            moved = true;
            break;
        }
        if moved {
            retries = 0;
            continue;
        }
        retries += 1;
        if retries > MAX_RETRIES {
            return Err(Ended::NoAcknowledgement);
        }
        // Only the first block the peer lacks goes again; the rest of the
        // window follows its next acknowledgement. A silent peer gets one
        // block per wait, not a window, and none once it has had its time.
        link.wait(retries)?;
        if let Some(block) = window.front() {
            send_data(link, base, block);
        }
        sent = base + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_granted_within_bounds_and_unknown_ones_ignored() {
        let asked =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let agreed =
            negotiate(&asked(&[("blksize", "1468"), ("tsize", "0"), ("windowsize", "16"), ("foo", "1")]), Some(99));
        assert_eq!((agreed.blksize, agreed.window), (1468, 16));
        assert_eq!(agreed.acked, asked(&[("blksize", "1468"), ("tsize", "99"), ("windowsize", "16")]));
        let agreed = negotiate(
            &asked(&[("blksize", "100000"), ("windowsize", "1000"), ("timeout", "0"), ("tsize", "enable")]),
            None,
        );
        assert_eq!((agreed.blksize, agreed.window, agreed.timeout), (MAX_BLKSIZE, MAX_WINDOW, Duration::from_secs(1)));
        assert_eq!(agreed.acked.len(), 2, "timeout 0 and an unknown tsize are not acknowledged");
    }
}
