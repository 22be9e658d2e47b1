//! Hostile peers and a hostile file system: each attack shown failing, each
//! new limit shown being hit.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use file_share_e2e::{eventually, pseudo_random, run_client, RawClient, ServerProcess, Share, SmallDisk};

/// A connection to `server` from the loopback address `from` (127.0.0.2, ...).
fn raw_from(from: &str, server: SocketAddr) -> RawClient {
    RawClient::connect_from(from, server)
}

#[test]
fn a_trickled_request_line_is_cut_at_the_line_timeout_and_frees_its_slot() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "1", "--line-timeout", "1"]);
    let mut slow = server.raw();
    let mut stream = slow.stream.try_clone().unwrap();
    // One byte every 100 ms and never a newline: each byte alone would reset
    // any idle timer. Bounded: at most 20 s of it.
    let trickle = std::thread::spawn(move || {
        for _ in 0..200 {
            if stream.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let reply = slow.read_message();
    assert_eq!(reply.header, "ERR 408 request line not complete within 1s of its first byte; closing");
    assert!(slow.read_to_eof().is_empty(), "then the server closes");
    trickle.join().unwrap();
    assert_eq!(server.raw().greeting, "OK 41 proto=1 name=Client02", "the slot is free again");
}

#[test]
fn one_address_cannot_take_every_slot() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "5", "--max-per-ip", "2"]);
    let first = server.raw();
    let _second = server.raw();
    let refused = server.raw();
    assert_eq!(refused.greeting, "ERR 503 too many connections from 127.0.0.1 (at most 2 per address)");
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &[server.addr.to_string(), "-c".into(), "status".into()], None);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "too many connections from 127.0.0.1 (at most 2 per address)\n");
    // Another address is let in; a share given back is taken again.
    assert!(raw_from("127.0.0.2", server.addr).greeting.starts_with("OK "));
    drop(first);
    eventually("a share given back", || server.raw().greeting.starts_with("OK ").then_some(()));
}

#[test]
fn refusals_are_summarised_in_the_log_not_written_one_by_one() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "1"]);
    let holder = server.raw();
    for _ in 0..30 {
        assert_eq!(server.raw().greeting, "ERR 503 Server is full");
    }
    drop(holder);
    // The next admission writes out what was counted (tries made before the
    // holder's slot is free are refused too, and counted).
    let mut refused = 30;
    eventually("a free slot", || {
        let admitted = server.raw().greeting.starts_with("OK ");
        refused += u64::from(!admitted);
        admitted.then_some(())
    });
    let log = server.log();
    let counts: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split("refused ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), refused, "{log}");
    assert!(counts.len() < 10, "{} lines for {refused} refusals:\n{log}", counts.len());
}

#[test]
fn a_download_nobody_reads_is_dropped_after_the_idle_timeout() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(64 << 20, 5));
    let server = ServerProcess::start(share.path(), &["--idle-timeout", "2"]);
    let mut sleeper = server.raw();
    sleeper.send_line("get big.bin");
    assert!(sleeper.read_header().starts_with("OK 67108864 "));
    // It reads nothing more; another client watches it go.
    let mut watcher = server.raw();
    eventually("the sleeper dropped", || {
        let info = watcher.request("info").text();
        (info.lines().filter(|l| l.starts_with("client ")).count() == 1).then_some(())
    });
    assert!(server.log().contains("the peer took nothing for 2s"), "{}", server.log());
}

#[test]
fn a_say_flood_cannot_fill_the_servers_memory() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "40"]);
    // 30 clients that never read: their outboxes fill.
    let sleepers: Vec<RawClient> = (0..30).map(|_| server.raw()).collect();
    let mut talker = server.raw();
    let line = format!("say {}", "\u{1}".repeat(4000));
    let mut refused = 0;
    for _ in 0..300 {
        let header = talker.request(&line).header;
        if header.starts_with("ERR 429 ") {
            refused += 1;
        } else {
            assert_eq!(header, "OK 0 recipients=30");
        }
    }
    assert!(refused > 250, "only {refused} of 300 refused");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    // Each outbox holds at most 256 KiB: 30 of them are under 8 MiB.
    assert!(rss_kib < 48 * 1024, "server RSS {rss_kib} KiB");
    drop(sleepers);
}

#[test]
fn a_fifo_a_symlink_loop_and_overlong_names_get_clear_refusals() {
    let share = Share::new();
    let status = Command::new("mkfifo").arg(share.path().join("pipe")).status().expect("mkfifo");
    assert!(status.success());
    std::os::unix::fs::symlink("loop-b", share.path().join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", share.path().join("loop-b")).unwrap();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    assert_eq!(c.request("get pipe").header, "ERR 400 'pipe' is not a regular file");
    assert_eq!(c.request("get loop-a").header, "ERR 404 no such file 'loop-a'");
    let long = "n".repeat(256);
    assert_eq!(
        c.request(&format!("get {long}")).header,
        format!("ERR 400 a part of the name is longer than 255 bytes: '{long}'")
    );
    let hash = "0".repeat(64);
    assert_eq!(
        c.request(&format!("put +5 {hash} x")).header,
        "ERR 400 bad put line: usage: put [-f] [-c] [-m <unix secs>] <size> <blake3|-> <name>"
    );
    assert_eq!(c.request("ping").text(), "ping ACK\n", "the session goes on");
}

#[test]
fn a_full_disk_during_put_is_reported_and_the_session_goes_on() {
    let disk = SmallDisk::mount("1m");
    let server = ServerProcess::start(disk.dir.path(), &["--allow-uploads"]);
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("big.bin"), pseudo_random(3 << 20, 8)).unwrap();
    std::fs::write(local.path().join("small.txt"), b"fits\n").unwrap();
    let out = run_client(
        local.path(),
        &[server.addr.to_string(), "-c".into(), "put big.bin".into(), "-c".into(), "never".into()],
        None,
    );
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "remote: no space left on the server's disk for 'big.bin'; nothing was stored\n"
    );
    let names: Vec<_> = std::fs::read_dir(disk.dir.path().join(".uploads")).unwrap().collect();
    assert!(names.is_empty(), "the partial upload is removed");
    assert!(!disk.dir.path().join("big.bin").exists());
    let out = run_client(local.path(), &[server.addr.to_string(), "-c".into(), "put small.txt".into()], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(server);
}

/// How many threads the process `pid` has.
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads").count()
}

#[test]
fn session_threads_start_as_sessions_arrive() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "1000"]);
    let before = threads_of(server.pid());
    assert!(before < 10, "{before} threads before any client, with a cap of 1000");
    let mut clients: Vec<RawClient> = (0..5).map(|_| server.raw()).collect();
    for c in &mut clients {
        assert_eq!(c.request("ping").text(), "ping ACK\n");
    }
    let after = threads_of(server.pid());
    assert!(after >= before + 10, "a session and a writer thread for each of 5: {before} -> {after}");
}
