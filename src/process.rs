//! The real binaries as processes: a `file-server` on loopback, `file-client` runs, `adduser`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::RawClient;

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
    // A name it refuses ends it before it reads the password: not the test's failure.
    let _ = child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes());
    child.wait_with_output().unwrap()
}

/// `file-client`'s arguments: the address, then `rest`.
pub fn client_args(addr: &str, rest: &[&str]) -> Vec<String> {
    std::iter::once(addr.to_string()).chain(rest.iter().map(|s| s.to_string())).collect()
}
