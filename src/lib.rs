//! Helpers for the end-to-end tests in `tests/e2e/`, which run the real
//! `file-server` and `file-client` binaries the workspace builds
//! (`cargo test --workspace` builds them before any test runs).
//!
//! # Layout
//! - [`ServerProcess`]: a `file-server` on `127.0.0.1:0`, stopped by pid when dropped.
//! - [`RawClient`]: a plain TCP client that speaks the protocol byte by byte.
//! - [`run_client`]: runs `file-client` with arguments and returns its output.
//! - [`pty_client`], [`ready`], [`type_keys`]: `file-client` at a prompt in a pseudo-terminal.
//! - [`FakeServer`]: a hand-driven server for replies the real one never sends.
//! - [`SmallDisk`]: a small tmpfs, for a disk that fills up.
//! - [`SlowRelay`]: a TCP relay at a fixed rate, so a transfer lasts long
//!   enough to be cancelled half-way.
//! - [`pseudo_random`], [`eventually`]: test data and bounded waiting.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of a binary built by this workspace (`file-server`, `file-client`).
pub fn binary(name: &str) -> PathBuf {
    // Test executables live in target/<profile>/deps; the binaries one level up.
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --workspace`", path.display());
    path
}

/// A running `file-server`, killed and reaped when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// With `--tls`: its certificate's SHA-256 fingerprint, as printed.
    pub fingerprint: Option<String>,
    /// With `--http`: the web side's port, from stdout's `http on` line.
    pub http_port: Option<u16>,
    /// With `--tftp`: the TFTP port, from stdout's `tftp on` line.
    pub tftp_port: Option<u16>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `file-server --bind 127.0.0.1 --port 0 --repo REPO EXTRA...` and
    /// waits for its `listening on` line.
    pub fn start(repo: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_on("127.0.0.1", repo, extra)
    }

    /// Like [`ServerProcess::start`] on another loopback address (`::1`).
    pub fn start_on(bind: &str, repo: &Path, extra: &[&str]) -> ServerProcess {
        let log_dir = tempfile::tempdir().expect("tempdir");
        let log = log_dir.path().join("server.log");
        let stderr = Stdio::from(File::create(&log).expect("log file"));
        Self::spawn(bind, repo, extra, stderr, log, log_dir)
    }

    /// Like [`ServerProcess::start`], but its stderr is a pipe closed once it
    /// listens, as after the terminal it was started from went away: every
    /// write to stderr fails. [`ServerProcess::log`] is then empty.
    pub fn start_with_stderr_closed(repo: &Path) -> ServerProcess {
        let log_dir = tempfile::tempdir().expect("tempdir");
        let log = log_dir.path().join("none.log");
        let mut server = Self::spawn("127.0.0.1", repo, &[], Stdio::piped(), log, log_dir);
        drop(server.child.as_mut().and_then(|child| child.stderr.take()));
        server
    }

    fn spawn(
        bind: &str,
        repo: &Path,
        extra: &[&str],
        stderr: Stdio,
        log: PathBuf,
        log_dir: tempfile::TempDir,
    ) -> ServerProcess {
        let mut child = Command::new(binary("file-server"))
            .args(["--bind", bind, "--port", "0", "--repo"])
            .arg(repo)
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start file-server");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read listening line");
        // `listening on ADDR`, and with TLS ` tls sha256 Fingerprint=AB:CD:...`.
        let rest = line.strip_prefix("listening on ");
        let addr = rest.and_then(|r| r.split_whitespace().next()).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            panic!("unexpected first line {line:?}; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        let fingerprint = line.split_once("Fingerprint=").map(|(_, fp)| fp.trim().to_string());
        // Then `http on IP:PORT` and `tftp on IP:PORT`, for the doors asked for.
        let mut port_line = |flag: &str, prefix: &str| {
            extra.contains(&flag).then(|| {
                let mut line = String::new();
                stdout.read_line(&mut line).expect("read a door's line");
                let port = line.strip_prefix(prefix).and_then(|a| a.trim().rsplit(':').next()?.parse().ok());
                port.unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
            })
        };
        let http_port = port_line("--http", "http on ");
        let tftp_port = port_line("--tftp", "tftp on ");
        ServerProcess { child: Some(child), addr, fingerprint, http_port, tftp_port, log, _log_dir: log_dir }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name (`INT`, `TERM`) to the server's pid.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the server to exit on its own, failing the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let (tx, rx) = mpsc::channel();
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(timeout) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
                panic!("file-server did not exit within {timeout:?}; log:\n{}", self.log());
            }
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A raw client connected to this server, greeting read.
    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.addr)
    }

    /// Runs `file-client ADDR -c CMD...` in `dir` (also its download folder).
    pub fn client(&self, dir: &Path, commands: &[&str]) -> Output {
        let mut args = vec![self.addr.to_string()];
        for c in commands {
            args.push("-c".into());
            args.push((*c).to_string());
        }
        run_client(dir, &args, None)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `file-client` with `args` in `dir`, feeding `stdin` if given.
pub fn run_client(dir: &Path, args: &[String], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary("file-client"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start file-client");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("file-client output")
}

/// Runs `file-client` with `args` in `dir`, with `env` set (e.g. its
/// `XDG_DATA_HOME`, where it remembers TLS servers).
pub fn run_client_env(dir: &Path, args: &[String], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(binary("file-client"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("file-client output")
}

/// Waits for `child`'s output; kills it (by pid) if it runs longer than `limit`.
pub fn output_within(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id();
    let (done_tx, done) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("wait");
    drop(done_tx);
    watchdog.join().unwrap();
    out
}

/// `file-server adduser --users FILE NAME [--write]` with `password` on stdin.
pub fn adduser(users: &Path, name: &str, password: &str, write: bool) -> Output {
    let mut command = Command::new(binary("file-server"));
    command.args(["adduser", "--users"]).arg(users).arg(name);
    if write {
        command.arg("--write");
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `file-client`'s arguments: the address, then `rest`.
pub fn client_args(addr: &str, rest: &[&str]) -> Vec<String> {
    std::iter::once(addr.to_string()).chain(rest.iter().map(|s| s.to_string())).collect()
}

/// `file-client ADDR` in a pseudo-terminal, in `dir`, with `home` as its
/// home (where it keeps its history).
pub fn pty_client(addr: &str, dir: &Path, home: &Path) -> rexpect::session::PtySession {
    pty_client_with(addr, dir, home, &[])
}

/// [`pty_client`] with more arguments.
pub fn pty_client_with(addr: &str, dir: &Path, home: &Path, extra: &[&str]) -> rexpect::session::PtySession {
    let mut command = Command::new(binary("file-client"));
    command.arg(addr).args(extra).current_dir(dir).env("HOME", home).env_remove("XDG_DATA_HOME").env("TERM", "xterm");
    rexpect::session::spawn_command(command, Some(TEST_TIMEOUT.as_millis() as u64)).expect("spawn file-client in a pty")
}

/// Waits until `prompt` is drawn and the line editor reads keys: keys sent
/// before that may be dropped as the terminal switches mode.
pub fn ready(pty: &mut rexpect::session::PtySession, prompt: &str) {
    pty.exp_string(prompt).expect("prompt");
    // The end of rustyline's synchronized redraw of the prompt.
    pty.exp_string("\x1b[?2026l").expect("prompt drawn");
}

/// Types `keys` (Tab, arrows, text) without pressing Enter.
pub fn type_keys(pty: &mut rexpect::session::PtySession, keys: &str) {
    pty.send(keys).expect("send keys");
    pty.flush().expect("flush keys");
}

/// One reply as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The header line without its `\n`.
    pub header: String,
    /// The body (empty for `ERR`).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Every message in `transcript` (what some client read off the wire, all
/// of it), events included.
pub fn parse_messages(mut transcript: &[u8]) -> Vec<Reply> {
    let mut messages = Vec::new();
    while let Some(end) = transcript.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&transcript[..end]).trim_end().to_string();
        let len = match header.split(' ').collect::<Vec<_>>().as_slice() {
            ["OK", len, ..] | ["EVT", len, ..] => len.parse::<usize>().expect("length"),
            ["ERR", ..] => 0,
            _ => panic!("bad header {header:?}"),
        };
        let body = transcript[end + 1..end + 1 + len].to_vec();
        transcript = &transcript[end + 1 + len..];
        messages.push(Reply { header, body });
    }
    assert!(transcript.is_empty(), "a cut-off message at the end: {:?}", String::from_utf8_lossy(transcript));
    messages
}

/// A client that speaks the protocol by hand, for exact checks.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    /// The socket, to write raw bytes.
    pub stream: TcpStream,
    /// The greeting's header line.
    pub greeting: String,
}

impl RawClient {
    /// Connects and reads the greeting (which may be `ERR 503 ...`).
    pub fn connect(addr: SocketAddr) -> RawClient {
        RawClient::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects from the loopback address `from` (127.0.0.2, ...) and reads
    /// the greeting: another host, as far as the server can tell.
    pub fn connect_from(from: &str, addr: SocketAddr) -> RawClient {
        RawClient::from_stream(tcp_from(from, addr))
    }

    /// Reads the greeting on a connection made some other way (from another
    /// source address, say).
    pub fn from_stream(stream: TcpStream) -> RawClient {
        stream.set_read_timeout(Some(TEST_TIMEOUT)).expect("timeout");
        let mut client =
            RawClient { reader: BufReader::new(stream.try_clone().expect("clone")), stream, greeting: String::new() };
        let greeting = client.read_message();
        client.greeting = greeting.header;
        client
    }

    /// Sends `line` and a `\n`.
    pub fn send_line(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a request and reads its reply, skipping events.
    pub fn request(&mut self, line: &str) -> Reply {
        self.send_line(line);
        self.read_reply()
    }

    /// Reads the next reply that is not an event.
    pub fn read_reply(&mut self) -> Reply {
        loop {
            let msg = self.read_message();
            if !msg.header.starts_with("EVT ") {
                return msg;
            }
        }
    }

    /// Reads the next message of any kind, event included.
    pub fn read_message(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read header");
        assert!(line.ends_with('\n'), "connection closed; got {line:?}");
        let header = line.trim_end().to_string();
        let len = match header.split(' ').collect::<Vec<_>>().as_slice() {
            ["OK", len, ..] | ["EVT", len, ..] => len.parse::<usize>().expect("length"),
            ["ERR", ..] => 0,
            _ => panic!("bad header {header:?}"),
        };
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("read body");
        Reply { header, body }
    }

    /// Reads only the header line of the next reply, skipping events before it.
    pub fn read_header(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read header");
            let line = line.trim_end().to_string();
            match line.strip_prefix("EVT ") {
                Some(rest) => {
                    let len = rest.split(' ').next().and_then(|n| n.parse().ok()).expect("event length");
                    drop(self.read_exact(len));
                }
                None => return line,
            }
        }
    }

    /// Reads messages until the event with exactly `text` (its line end
    /// included); other events are skipped, a reply fails the test.
    pub fn expect_event(&mut self, text: &str) -> Reply {
        loop {
            let msg = self.read_message();
            assert!(msg.header.starts_with("EVT "), "expected event {text:?}, got reply {msg:?}");
            if msg.text() == text {
                return msg;
            }
        }
    }

    /// The texts of the events that arrive before the next reply, and that reply.
    pub fn events_then_reply(&mut self) -> (Vec<String>, Reply) {
        let mut events = Vec::new();
        loop {
            let msg = self.read_message();
            if msg.header.starts_with("EVT ") {
                events.push(msg.text());
            } else {
                return (events, msg);
            }
        }
    }

    /// Reads exactly `n` body bytes after [`RawClient::read_header`].
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut body = vec![0; n];
        self.reader.read_exact(&mut body).expect("read body");
        body
    }

    /// Reads messages until the server closes the connection; all must be
    /// events, whose texts are returned.
    pub fn events_until_eof(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        loop {
            if self.reader.fill_buf().expect("read").is_empty() {
                return events;
            }
            let msg = self.read_message();
            assert!(msg.header.starts_with("EVT "), "expected only events before the close, got {msg:?}");
            events.push(msg.text());
        }
    }

    /// Reads until the server closes the connection; returns what came before.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).expect("read to end");
        rest
    }
}

/// A TCP connection to `addr` from the loopback address `from` (`127.0.0.3`),
/// for tests of what one address may hold.
pub fn tcp_from(from: &str, addr: SocketAddr) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    bind(&fd, &SocketAddr::new(from.parse().expect("address"), 0)).expect("bind the source address");
    connect(&fd, &addr).expect("connect");
    TcpStream::from(fd)
}

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

/// Retries `check` (with a short pause between tries) until it returns
/// `Some`, failing the test after [`TEST_TIMEOUT`]. For states the server
/// reaches on its own with nothing to wait on, such as noticing a vanished peer.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TEST_TIMEOUT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// A stand-in server speaking the protocol by hand, to test the client
/// against replies the real server never sends: stalls, hostile names,
/// oversized or broken headers. Each accepted connection is greeted and
/// handed to `serve` on its own thread; the listener stops when dropped.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// One connection to a [`FakeServer`].
pub struct FakeConn {
    reader: BufReader<TcpStream>,
    /// The socket, to write replies.
    pub stream: TcpStream,
}

impl FakeConn {
    /// The next request line without its line end; `None` at end of input.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    }

    /// Writes raw bytes; errors (the client left) are ignored.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Writes an `OK` reply with a text body.
    pub fn send_text(&mut self, text: &str) {
        self.send(format!("OK {}\n{text}", text.len()).as_bytes());
    }

    /// Writes a framed download's reply: `OK 0 FIELDS bytes=<len of
    /// data>`, then `data` in one `DATA` frame and `END ok`.
    pub fn send_download(&mut self, fields: &str, data: &[u8]) {
        self.send(format!("OK 0 {fields} bytes={}\nDATA {}\n", data.len(), data.len()).as_bytes());
        self.send(data);
        self.send(b"END ok\n");
    }
}

impl FakeServer {
    /// Listens on `127.0.0.1:0`; `serve` gets each connection after its
    /// greeting (`name=FakeNN`) and the answer to `frames on`, with the
    /// connection's number from 1.
    pub fn start(serve: impl Fn(usize, FakeConn) + Send + Sync + 'static) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let serve = std::sync::Arc::new(serve);
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let n = i + 1;
                let body = format!("welcome Fake{n:02}\n");
                let greeting = format!("OK {} proto=1 name=Fake{n:02}\n{body}", body.len());
                let _ = stream.write_all(greeting.as_bytes());
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                // file-client asks for framed transfers first thing.
                let mut first = String::new();
                if reader.read_line(&mut first).is_ok() && first.trim_end() == "frames on" {
                    let _ = stream.write_all(b"OK 0 frames=on\n");
                }
                let serve = std::sync::Arc::clone(&serve);
                std::thread::spawn(move || serve(n, FakeConn { reader, stream }));
            }
        });
        FakeServer { addr, stop }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A TCP relay on `127.0.0.1:0` to `target` that passes at most `rate`
/// bytes a second each way: a slow network, so a test can act while a
/// transfer is under way. Each connection ends when either side closes.
pub struct SlowRelay {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowRelay {
    /// Relays connections to `target` at `rate` bytes a second each way.
    pub fn start(target: SocketAddr, rate: u64) -> SlowRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else { continue };
                let (client2, server2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                std::thread::spawn(move || pump(client, server, rate));
                std::thread::spawn(move || pump(server2, client2, rate));
            }
        });
        SlowRelay { addr, stop }
    }
}

/// Copies `from` to `to` at `rate` bytes a second, 16 KiB at a time, until
/// either ends; then shuts both down. A direction that was idle gets no
/// credit for it beyond a short burst (an upload after a long download is
/// paced as well as the download was).
fn pump(mut from: TcpStream, mut to: TcpStream, rate: u64) {
    const BURST: Duration = Duration::from_millis(50);
    let mut buf = vec![0u8; 16 * 1024];
    // When the bytes passed so far are due at the rate.
    let mut due = Instant::now();
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        let now = Instant::now();
        due = due.max(now.checked_sub(BURST).unwrap_or(now)) + Duration::from_secs_f64(n as f64 / rate as f64);
        if due > now {
            std::thread::sleep(due - now);
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A small tmpfs, unmounted when dropped.
pub struct SmallDisk {
    /// Where it is mounted.
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`1m`); the test must run as root.
    pub fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "this test mounts a tmpfs: run it as root");
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
