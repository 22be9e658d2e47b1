//! `file-client` against a server that misbehaves: it floods events, stops
//! reading an upload, or sends events and never answers. The client stays
//! bounded and says what happened; nothing hangs past `--timeout`.

use std::io::Write;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use file_share_e2e::{client_args as args, run_client, FakeServer};

#[test]
fn events_do_not_stand_in_for_a_reply() {
    let fake = FakeServer::start(|_, mut conn| {
        conn.read_line();
        // An event every 100 ms and never a reply, for at most 20 s.
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            conn.send(b"EVT 5\nping\n");
            if conn.stream.peer_addr().is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&fake.addr.to_string(), &["--timeout", "1", "-c", "status"]), None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "connection: the server stopped answering (no reply for 1s)\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ping"), "the events were shown");
}

#[test]
fn a_server_that_stops_reading_an_upload_fails_it_after_the_timeout() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_rx = Mutex::new(done_rx);
    let fake = FakeServer::start(move |_, mut conn| {
        let line = conn.read_line().unwrap_or_default();
        if line.starts_with("put ") {
            conn.send(b"OK 0\n");
            // Reads nothing more, and keeps the connection open until the test ends.
            let _ = done_rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let out =
        run_client(dir.path(), &args(&fake.addr.to_string(), &["--timeout", "2", "-q", "-c", "put big.bin"]), None);
    drop(done_tx);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the server stopped answering (uploading 'big.bin': timed out)"), "{stderr}");
}

#[test]
fn an_event_flood_during_an_upload_is_cut_off_with_a_clear_error() {
    let fake = FakeServer::start(|_, mut conn| {
        let line = conn.read_line().unwrap_or_default();
        if line.starts_with("put ") {
            conn.send(b"OK 0\n");
            // 64 MiB of events while not reading the upload, so the client
            // is busy sending and takes none of them.
            let event = format!("EVT 1024\n{}\n", "x".repeat(1023));
            for _ in 0..(64 << 10) {
                if conn.stream.write_all(event.as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let out = run_client(dir.path(), &args(&fake.addr.to_string(), &["-q", "-c", "put big.bin"]), None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "connection: the server sent more than 4 MiB of events without a reply; disconnecting\n");
}

#[test]
fn a_peer_that_is_not_a_file_server_is_recognised_at_once() {
    // Like an HTTP server: silent until it has a request, then an error page.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let http = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line).unwrap();
        (&stream).write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").unwrap();
        line
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&addr.to_string(), &["-c", "status"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "file-client: connection: {addr} does not speak the file-server protocol \
             (bad reply from server: unknown reply kind in 'HTTP/1.1 400 Bad Request')\n"
        )
    );
    assert_eq!(http.join().unwrap(), "frames on\n", "the probe is the first request anyway");
}
