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
