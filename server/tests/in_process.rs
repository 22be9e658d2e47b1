//! The library's `Server` run in-process on port 0, stopped through its
//! `ShutdownHandle`, as the binary's signal handler does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use file_server::{Config, Repo, Server};

#[test]
fn run_returns_after_shutdown_and_clients_are_told() {
    let repo_dir = tempfile::tempdir().unwrap();
    std::fs::write(repo_dir.path().join("a.txt"), b"a").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::new(listener, Repo::open(repo_dir.path()).unwrap(), Config::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        server.run();
        let _ = done_tx.send(());
    });

    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "OK 41 proto=1 name=Client01\n");
    let mut welcome = vec![0; 41];
    reader.read_exact(&mut welcome).unwrap();
    (&stream).write_all(b"ping\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "OK 9\n");

    stop.trigger();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "ping ACK\nEVT 63\nserver shutting down; transfers in progress have 10s to finish\n");
    done_rx.recv_timeout(Duration::from_secs(20)).expect("run returned");
    thread.join().unwrap();
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_service_with_every_door_ends_them_all_and_waits_for_a_web_response_under_way() {
    use file_server::http::HttpLimits;
    use file_server::service::{TftpDoor, WebDoor};
    use file_server::Service;
    use std::net::UdpSocket;

    let repo_dir = tempfile::tempdir().unwrap();
    std::fs::write(repo_dir.path().join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let web = WebDoor {
        listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        limits: HttpLimits { max_connections: 4, max_per_ip: 4, hosts: Vec::new(), keep_alive: Duration::from_secs(5) },
    };
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tftp = TftpDoor { socket, max_transfers: 2, max_per_ip: 2, unheard_limit: file_server::tftp::UNHEARD_LIMIT };
    let config = Config { grace: Duration::from_secs(10), ..Config::default() };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = Service::new(listener, Repo::open(repo_dir.path()).unwrap(), config, Some(web), Some(tftp)).unwrap();
    let (line, http, tftp) =
        (service.local_addr().unwrap(), service.web_addr().unwrap().unwrap(), service.tftp_addr().unwrap().unwrap());
    let stop = service.shutdown_handle().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        service.run().unwrap();
        let _ = done_tx.send(());
    });

    // A web download begun, read slowly: it is under way when the stop comes.
    let mut download = TcpStream::connect(http).unwrap();
    download.write_all(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut first = [0u8; 4096];
    download.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));

    stop.trigger();
    // Every door stops taking newcomers...
    assert!(done_rx.recv_timeout(Duration::from_millis(300)).is_err(), "the download still runs");
    let refused = |addr| TcpStream::connect(addr).is_err();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(refused(line) && refused(http)) {
        assert!(std::time::Instant::now() < deadline, "the doors are still open");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...TFTP answers no request...
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    probe.send_to(b"\x00\x01big.bin\x00octet\x00", tftp).unwrap();
    assert!(probe.recv_from(&mut [0u8; 600]).is_err(), "the TFTP door answered after the stop");
    // ...and the download finishes whole; then run returns.
    let mut rest = Vec::new();
    download.read_to_end(&mut rest).unwrap();
    assert_eq!(first.len() + rest.len() - header_len(&first), 64 << 20);
    done_rx.recv_timeout(Duration::from_secs(20)).expect("run returned");
    thread.join().unwrap();
}

/// The length of the response head at the start of `bytes`.
fn header_len(bytes: &[u8]) -> usize {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4
}

/// A cap kept elsewhere (here: a count shared with the test), plugged in
/// through the seam a cap shared by several instances will use.
struct Outside {
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    limit: usize,
}

struct Held(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl file_server::slots::Cap for Outside {
    fn try_acquire(&self, _ip: std::net::IpAddr) -> Result<file_server::slots::Place, file_server::slots::Over> {
        use std::sync::atomic::Ordering;
        let taken = self.held.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.limit).then_some(n + 1));
        match taken {
            Ok(_) => Ok(file_server::slots::Place::new(Held(std::sync::Arc::clone(&self.held)))),
            Err(_) => Err(file_server::slots::Over::Full),
        }
    }

    fn wait_all_free(&self, deadline: std::time::Instant) -> bool {
        while self.held.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

#[test]
fn the_session_cap_can_be_kept_outside_the_server() {
    let repo_dir = tempfile::tempdir().unwrap();
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cap = std::sync::Arc::new(Outside { held: std::sync::Arc::clone(&held), limit: 1 });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server =
        Server::with_session_cap(listener, Repo::open(repo_dir.path()).unwrap(), Config::default(), cap).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle().unwrap();
    let thread = std::thread::spawn(move || server.run());
    let greeting = |stream: &TcpStream| {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    };
    let first = TcpStream::connect(addr).unwrap();
    assert!(greeting(&first).starts_with("OK "));
    assert_eq!(held.load(std::sync::atomic::Ordering::SeqCst), 1, "the place is held outside");
    // The server's own cap (3) has room; the outside one says no.
    assert_eq!(greeting(&TcpStream::connect(addr).unwrap()), "ERR 503 Server is full\n");
    stop.trigger();
    drop(first);
    thread.join().unwrap();
    assert_eq!(held.load(std::sync::atomic::Ordering::SeqCst), 0, "given back when the session ended");
}
