//! `--tftp`: reads over TFTP with clients nobody here wrote (curl's
//! tftp://, tftp-hpa's `tftp`, `atftp`), and the protocol's edges typed as
//! raw packets.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use file_share_e2e::{eventually, pseudo_random, ServerProcess, Share};

fn tftp_addr(server: &ServerProcess) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.tftp_port.expect("tftp on line")))
}

#[test]
fn curl_tftp_hpa_and_atftp_read_files_byte_identical() {
    let share = Share::new();
    let data = pseudo_random(3_000_000, 4);
    share.add("fw/image.bin", &data);
    share.add("config.txt", b"hostname router\n");
    let server = ServerProcess::start(share.path(), &["--tftp", "0"]);
    let port = server.tftp_port.unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let got = |name: &str| std::fs::read(dir.path().join(name)).unwrap();

    let url = format!("tftp://127.0.0.1:{port}/fw/image.bin");
    let out = Command::new("curl").args(["-s", "-o", "default.bin", &url]).current_dir(dir.path()).status().unwrap();
    assert!(out.success());
    assert!(got("default.bin") == data, "curl, default options (512-byte blocks)");
    let out = Command::new("curl")
        .args(["-s", "--tftp-blksize", "1468", "-o", "big.bin", &url])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(out.success());
    assert!(got("big.bin") == data, "curl --tftp-blksize 1468");

    // tftp-hpa: plain RFC 1350, no options.
    let out = Command::new("tftp")
        .args(["127.0.0.1", &port, "-m", "binary", "-c", "get", "config.txt", "hpa.txt"])
        .current_dir(dir.path())
        .output()
        .expect("tftp (apt-get install tftp-hpa)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(got("hpa.txt"), b"hostname router\n");
    // netascii: sent as CR LF, written back by tftp-hpa as it was.
    let out = Command::new("tftp")
        .args(["127.0.0.1", &port, "-m", "ascii", "-c", "get", "config.txt", "ascii.txt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(got("ascii.txt"), b"hostname router\n");

    // atftp with every option this server grants.
    let out = Command::new("atftp")
        .args(["--option", "blksize 1468", "--option", "windowsize 16", "--option", "tsize 0"])
        .args(["-g", "-r", "fw/image.bin", "-l", "atftp.bin", "127.0.0.1", &port])
        .current_dir(dir.path())
        .output()
        .expect("atftp (apt-get install atftp)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(got("atftp.bin") == data, "atftp, windowed");
    assert!(server.log().contains("over TFTP: 3000000 bytes"), "{}", server.log());
}

#[test]
fn block_numbers_roll_over_in_a_40_mib_file_at_512_bytes() {
    let share = Share::new();
    let data = pseudo_random(40 << 20, 5); // 81,920 blocks
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &["--tftp", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("tftp://127.0.0.1:{}/big.bin", server.tftp_port.unwrap());
    assert!(Command::new("curl")
        .args(["-s", "-o", "big.bin", &url])
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success());
    assert!(std::fs::read(dir.path().join("big.bin")).unwrap() == data);
}

/// A raw TFTP client socket.
fn raw() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    socket
}

fn rrq(name: &str) -> Vec<u8> {
    [&[0u8, 1][..], name.as_bytes(), b"\0octet\0"].concat()
}

/// The next packet: its opcode, its number, the rest, and who sent it.
fn next(socket: &UdpSocket) -> (u16, u16, Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 70_000];
    let (n, from) = socket.recv_from(&mut buf).expect("a packet");
    (u16::from_be_bytes([buf[0], buf[1]]), u16::from_be_bytes([buf[2], buf[3]]), buf[4..n].to_vec(), from)
}

#[test]
fn names_the_share_refuses_get_the_right_error_codes() {
    let (share, outside) = Share::with_traps();
    let server = ServerProcess::start(share.path(), &["--tftp", "0"]);
    let absolute = outside.path().join("secret.txt").display().to_string();
    // Every refusal arrives as one ERROR packet with the code a device expects.
    for (name, code) in [
        ("../secret.txt", 2),
        ("docs/../../secret.txt", 2),
        (absolute.as_str(), 2),
        (".hidden", 2),
        ("link", 2),
        ("nope.txt", 1),
    ] {
        let socket = raw();
        socket.send_to(&rrq(name), tftp_addr(&server)).unwrap();
        let (opcode, number, rest, _) = next(&socket);
        assert_eq!((opcode, number), (5, code), "{name}: {}", String::from_utf8_lossy(&rest));
    }
    // A write: access violation (no TFTP writes on this server).
    let socket = raw();
    socket.send_to(&[&[0u8, 2][..], b"new.txt\0octet\0"].concat(), tftp_addr(&server)).unwrap();
    let (opcode, code, _, _) = next(&socket);
    assert_eq!((opcode, code), (5, 2));
    assert!(!share.path().join("new.txt").exists());
}

#[test]
fn strangers_get_error_5_a_vanished_client_frees_its_place_and_beyond_the_cap_is_busy() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(100_000, 7));
    let server = ServerProcess::start(share.path(), &["--tftp", "0", "--tftp-max-transfers", "1"]);
    let client = raw();
    client.send_to(&rrq("big.bin"), tftp_addr(&server)).unwrap();
    let (opcode, block, _, transfer) = next(&client);
    assert_eq!((opcode, block), (3, 1));

    // Someone else acknowledging: told it is not their transfer...
    let stranger = raw();
    stranger.send_to(&[0, 4, 0, 1], transfer).unwrap();
    let (opcode, code, _, _) = next(&stranger);
    assert_eq!((opcode, code), (5, 5));
    // ...and the transfer goes on for its client.
    client.send_to(&[0, 4, 0, 1], transfer).unwrap();
    assert_eq!(next(&client).1, 2);

    // status shows the transfer with its peer and progress.
    let status = server.client(tempfile::tempdir().unwrap().path(), &["status"]);
    let said = String::from_utf8_lossy(&status.stdout).into_owned();
    let peer = client.local_addr().unwrap().to_string();
    assert!(said.lines().any(|l| l.contains("tftp") && l.contains(&peer) && l.contains("get big.bin")), "{said}");

    // The only place is taken: a second request is told the server is busy.
    let second = raw();
    second.send_to(&rrq("big.bin"), tftp_addr(&server)).unwrap();
    let (opcode, _, message, _) = next(&second);
    assert_eq!(opcode, 5);
    assert!(String::from_utf8_lossy(&message).contains("busy"));

    // The client vanishes: after its retries the place is free again.
    drop(client);
    eventually("the vanished client's place frees", || {
        let again = raw();
        again.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        again.send_to(&rrq("big.bin"), tftp_addr(&server)).unwrap();
        let mut buf = [0u8; 1024];
        let (n, _) = again.recv_from(&mut buf).ok()?;
        (n > 4 && buf[1] == 3).then_some(())
    });
    assert!(server.log().contains("ended: no acknowledgement"), "{}", server.log());
}

#[test]
fn writes_go_through_puts_path_with_every_client() {
    let share = Share::new();
    share.add("taken.bin", b"already here");
    let server = ServerProcess::start(share.path(), &["--tftp", "0", "--allow-uploads", "--max-upload-size", "4M"]);
    let port = server.tftp_port.unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(3_000_000, 9);
    std::fs::write(dir.path().join("up.bin"), &data).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"line one\nline two\r\nbare\rcr\n").unwrap();
    let stored = |name: &str| std::fs::read(share.path().join(name)).unwrap();
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };

    run("curl", &["-s", "-T", "up.bin", &format!("tftp://127.0.0.1:{port}/curl.bin")]);
    assert!(stored("curl.bin") == data);
    run("tftp", &["127.0.0.1", &port, "-m", "binary", "-c", "put", "up.bin", "hpa.bin"]);
    assert!(stored("hpa.bin") == data);
    // netascii: line ends travel as CR LF and arrive as they were.
    run("tftp", &["127.0.0.1", &port, "-m", "ascii", "-c", "put", "notes.txt", "notes.txt"]);
    assert_eq!(stored("notes.txt"), b"line one\nline two\r\nbare\rcr\n");
    run(
        "atftp",
        &[
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 16",
            "-p",
            "-l",
            "up.bin",
            "-r",
            "atftp.bin",
            "127.0.0.1",
            &port,
        ],
    );
    assert!(stored("atftp.bin") == data);

    // Refusals, each before any data: a name taken (6), over the limit by
    // tsize (3), hidden or outside (2). Nothing half-written is left.
    for (request, code) in [
        (&b"\0\x02taken.bin\0octet\0"[..], 6),
        (b"\0\x02huge.bin\0octet\0tsize\x0099999999\0", 3),
        (b"\0\x02.profile\0octet\0", 2),
        (b"\0\x02../x.bin\0octet\0", 2),
    ] {
        let socket = raw();
        socket.send_to(request, tftp_addr(&server)).unwrap();
        let (opcode, number, rest, _) = next(&socket);
        assert_eq!((opcode, number), (5, code), "{}", String::from_utf8_lossy(&rest));
    }
    assert_eq!(stored("taken.bin"), b"already here");
    assert_eq!(std::fs::read_dir(share.path().join(".uploads")).unwrap().count(), 0);
}

/// A UDP relay in front of the TFTP port that drops every 10th packet each
/// way. Returns where clients send, a flag that stops it, and its thread
/// (which also stops by itself after `lifetime`), giving the drops each way.
fn lossy_relay(
    server: SocketAddr,
    lifetime: Duration,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<(u64, u64)>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap();
    front.set_nonblocking(true).unwrap();
    back.set_nonblocking(true).unwrap();
    let relay = std::thread::spawn(move || {
        let (mut client, mut transfer) = (None::<SocketAddr>, None::<SocketAddr>);
        let (mut up, mut down, mut dropped_up, mut dropped_down) = (0u64, 0u64, 0u64, 0u64);
        let mut buf = [0u8; 70_000];
        let until = std::time::Instant::now() + lifetime;
        while std::time::Instant::now() < until && !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let mut moved = false;
            if let Ok((n, from)) = front.recv_from(&mut buf) {
                moved = true;
                client = Some(from);
                up += 1;
                if up % 10 == 0 {
                    dropped_up += 1;
                } else {
                    let _ = back.send_to(&buf[..n], transfer.unwrap_or(server));
                }
            }
            if let Ok((n, from)) = back.recv_from(&mut buf) {
                moved = true;
                if from != server {
                    transfer = Some(from);
                }
                down += 1;
                if down % 10 == 0 {
                    dropped_down += 1;
                } else if let Some(c) = client {
                    let _ = front.send_to(&buf[..n], c);
                }
            }
            if !moved {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (dropped_up, dropped_down)
    });
    (addr, stop, relay)
}

#[test]
fn a_transfer_survives_losing_every_tenth_packet_both_ways() {
    let share = Share::new();
    let data = pseudo_random(12_000, 3); // 24 blocks of 512
    share.add("cfg.bin", &data);
    let server = ServerProcess::start(share.path(), &["--tftp", "0"]);
    let (relay, stop, thread) = lossy_relay(tftp_addr(&server), Duration::from_secs(25));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-o", "cfg.bin", &format!("tftp://{relay}/cfg.bin")])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "curl through the lossy relay: {:?}", out.status);
    assert!(std::fs::read(dir.path().join("cfg.bin")).unwrap() == data, "byte-identical despite the losses");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (dropped_up, dropped_down) = thread.join().unwrap();
    assert!(dropped_up >= 1 && dropped_down >= 2, "the relay did drop packets: {dropped_up} up, {dropped_down} down");
}

#[test]
fn a_write_whose_last_ack_was_lost_is_acknowledged_again() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--tftp", "0", "--allow-uploads"]);
    let data = pseudo_random(700, 11);
    let client = raw();
    client.send_to(&[&[0u8, 2][..], b"dally.bin\0octet\0"].concat(), tftp_addr(&server)).unwrap();
    let (opcode, block, _, transfer) = next(&client);
    assert_eq!((opcode, block), (4, 0));
    client.send_to(&[&[0u8, 3, 0, 1][..], &data[..512]].concat(), transfer).unwrap();
    let (opcode, block, _, _) = next(&client);
    assert_eq!((opcode, block), (4, 1));
    // The last block (short) is acknowledged and the file stored...
    let last = [&[0u8, 3, 0, 2][..], &data[512..]].concat();
    client.send_to(&last, transfer).unwrap();
    let (opcode, block, _, _) = next(&client);
    assert_eq!((opcode, block), (4, 2));
    eventually("the file stored", || (std::fs::read(share.path().join("dally.bin")).ok()? == data).then_some(()));
    // ...and when that ACK is lost, the client sends the block again: the
    // transfer is still there to acknowledge it once more, and stores nothing twice.
    client.send_to(&last, transfer).unwrap();
    let (opcode, block, _, from) = next(&client);
    assert_eq!((opcode, block, from), (4, 2, transfer));
    assert_eq!(std::fs::read(share.path().join("dally.bin")).unwrap(), data);
    assert_eq!(server.log().matches("stored 'dally.bin'").count(), 1, "{}", server.log());
}

#[test]
fn forged_requests_hold_two_places_briefly_and_bring_the_victim_no_flood() {
    let share = Share::new();
    let data = pseudo_random(4 << 20, 11);
    share.add("fw.bin", &data);
    // Forged transfers are given up after 3 s (10 by default).
    let server = ServerProcess::start(share.path(), &["--tftp", "0", "--tftp-give-up", "3"]);
    // 16 requests "from" 127.0.0.3 (a forged source: it never answers),
    // asking for the longest timeout and the largest window.
    let victim = UdpSocket::bind("127.0.0.3:0").unwrap();
    victim.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let options = ["fw.bin", "octet", "timeout", "255", "blksize", "65464", "windowsize", "64"].join("\0") + "\0";
    let options = options.as_bytes();
    for _ in 0..16 {
        victim.send_to(&[&[0u8, 1][..], options].concat(), tftp_addr(&server)).unwrap();
    }
    // Meanwhile a device on 127.0.0.2 is served at once.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("curl")
        .args(["-s", "--interface", "127.0.0.2", "-o", "got.bin"])
        .arg(format!("tftp://{}/fw.bin", tftp_addr(&server)))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(dir.path().join("got.bin")).unwrap() == data);

    // What the victim receives: two transfers' first packets (each an
    // option acknowledgement, never sent again within their 3 s), and
    // "too many transfers" for the rest.
    let (mut bytes, mut busy, mut oacks) = (0usize, 0, 0);
    let mut buf = [0u8; 70_000];
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let Ok((n, _)) = victim.recv_from(&mut buf) else { continue };
        bytes += n;
        match buf[1] {
            6 => oacks += 1,
            5 if String::from_utf8_lossy(&buf[4..n]).contains("too many transfers from your address") => busy += 1,
            _ => {}
        }
    }
    assert_eq!((oacks, busy), (2, 14), "{bytes} bytes in all");
    assert!(bytes < 4096, "{bytes} bytes reached the victim");
    eventually("the forged transfers give their places up", || {
        let log = server.log();
        (log.matches("no answer from the peer within 3s").count() == 2).then_some(())
    });
    // Its places are free again.
    victim.send_to(&rrq("fw.bin"), tftp_addr(&server)).unwrap();
    victim.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, _) = victim.recv_from(&mut buf).unwrap();
    assert_eq!((n, buf[1], buf[3]), (516, 3, 1), "DATA 1 of a new transfer");
}
