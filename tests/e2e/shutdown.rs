//! Ctrl+C and SIGTERM: stop accepting, tell every client, let transfers in
//! flight finish within the grace period, then exit 0; a second signal quits.

use std::net::TcpStream;
use std::time::Duration;

use file_share_e2e::{pseudo_random, ServerProcess, Share, TEST_TIMEOUT};

const SHUTDOWN_NOTICE: &str = "server shutting down; transfers in progress have 10s to finish\n";

#[test]
fn sigint_lets_a_download_in_flight_finish_and_exits_0() {
    let share = Share::new();
    let data = pseudo_random(64 << 20, 12);
    share.add("big.bin", &data);
    let mut server = ServerProcess::start(share.path(), &["--grace", "10"]);
    let mut downloader = server.raw();
    let mut idle = server.raw();
    downloader.send_line("get big.bin");
    assert!(downloader.read_header().starts_with("OK 67108864 "));
    let mut got = downloader.read_exact(1 << 20);

    server.signal("INT");
    // The idle client is told, then disconnected.
    assert_eq!(idle.expect_event(SHUTDOWN_NOTICE).header, "EVT 63");
    assert!(idle.read_to_eof().is_empty());
    // The download completes, byte for byte, and the notice follows it.
    got.extend(downloader.read_exact(data.len() - got.len()));
    assert!(got == data);
    downloader.expect_event(SHUTDOWN_NOTICE);
    assert_eq!(downloader.events_until_eof(), ["Client02 left (1 online)\n"]);

    let status = server.wait_exit(TEST_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert!(TcpStream::connect(server.addr).is_err(), "no longer accepting");
}

#[test]
fn sigterm_with_idle_clients_exits_0_promptly() {
    let share = Share::new();
    let mut server = ServerProcess::start(share.path(), &["--grace", "30"]);
    let mut clients: Vec<_> = (0..3).map(|_| server.raw()).collect();
    server.signal("TERM");
    for c in &mut clients {
        c.expect_event(&SHUTDOWN_NOTICE.replace("10s", "30s"));
        // Others may be seen leaving before this one is closed; nothing else comes.
        for event in c.events_until_eof() {
            assert!(event.contains(" left ("), "{event}");
        }
    }
    // Well inside the 30 s grace: idle sessions do not hold shutdown up.
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn a_stalled_transfer_is_cut_when_the_grace_period_ends() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(64 << 20, 13));
    let mut server = ServerProcess::start(share.path(), &["--grace", "1"]);
    let mut stalled = server.raw();
    stalled.send_line("get big.bin");
    assert!(stalled.read_header().starts_with("OK 67108864 "));
    server.signal("INT");
    // The client never reads on; after the grace second the server closes it and exits.
    assert_eq!(server.wait_exit(TEST_TIMEOUT).code(), Some(0));
    let rest = stalled.read_to_eof();
    assert!(rest.len() < 64 << 20, "the transfer was cut short");
}

#[test]
fn a_second_signal_quits_at_once() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(64 << 20, 14));
    let mut server = ServerProcess::start(share.path(), &["--grace", "10"]);
    let mut stalled = server.raw();
    stalled.send_line("get big.bin");
    assert!(stalled.read_header().starts_with("OK 67108864 "));
    let mut watcher = server.raw();
    server.signal("INT");
    // The watcher's notice shows the shutdown has begun; then signal again.
    watcher.expect_event(SHUTDOWN_NOTICE);
    server.signal("INT");
    // Far sooner than the 10 s grace.
    assert_eq!(server.wait_exit(Duration::from_secs(5)).code(), Some(130));
}

#[test]
fn an_upload_in_flight_finishes_during_the_grace_period() {
    let share = Share::new();
    let mut server = ServerProcess::start(share.path(), &["--grace", "10", "--allow-uploads"]);
    let data = pseudo_random(2 << 20, 15);
    let mut uploader = server.raw();
    let digest = file_share_e2e::blake3_hex(&data);
    assert_eq!(uploader.request(&format!("put {} {digest} late.bin", data.len())).header, "OK 0");
    uploader.send_bytes(&data[..1 << 20]);
    server.signal("INT");
    uploader.expect_event(SHUTDOWN_NOTICE);
    uploader.send_bytes(&data[1 << 20..]);
    assert_eq!(uploader.read_reply().text(), "stored 'late.bin' (2097152 bytes)\n");
    assert!(uploader.read_to_eof().is_empty());
    assert_eq!(server.wait_exit(TEST_TIMEOUT).code(), Some(0));
    assert!(std::fs::read(share.path().join("late.bin")).unwrap() == data);
}

#[test]
fn sigterm_still_shuts_down_once_the_terminal_is_gone() {
    // Started from a terminal that was then closed: stderr is a broken pipe,
    // so every log line and the signal handler's message fail to write.
    let share = Share::new();
    let mut server = ServerProcess::start_with_stderr_closed(share.path());
    // Sessions still work (their log lines go nowhere).
    let mut client = server.raw();
    assert_eq!(client.request("ping").text(), "ping ACK\n");
    drop(client);
    server.signal("TERM");
    assert_eq!(server.wait_exit(TEST_TIMEOUT).code(), Some(0), "SIGTERM once stderr was gone");
}
