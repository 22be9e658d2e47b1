//! Hostile and broken input: every rule answers with an error and the
//! session (or at least the server) goes on, with nothing read or written
//! outside the share.

use file_share_e2e::{blake3_hex, eventually, pseudo_random, RawClient, ServerProcess, Share};

fn share_with_outside_secret() -> (Share, tempfile::TempDir) {
    let share = Share::new();
    share.add("ok.txt", b"fine\n");
    share.add("docs/a.txt", b"a\n");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), b"root:x:0:0\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("passwd"), share.path().join("leak")).unwrap();
    std::os::unix::fs::symlink(outside.path(), share.path().join("outdir")).unwrap();
    std::os::unix::fs::symlink("ok.txt", share.path().join("alias")).unwrap();
    (share, outside)
}

#[test]
fn names_reaching_outside_are_refused_and_the_session_goes_on() {
    let (share, _outside) = share_with_outside_secret();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    let cases = [
        ("get ../../etc/passwd", "ERR 403 '..' is not allowed in names: '../../etc/passwd'"),
        ("get docs/../../x", "ERR 403 '..' is not allowed in names: 'docs/../../x'"),
        ("get /etc/passwd", "ERR 403 absolute paths are not allowed: '/etc/passwd'"),
        ("get leak", "ERR 403 access denied to 'leak'"),
        ("get outdir/passwd", "ERR 403 access denied to 'outdir/passwd'"),
        ("list outdir", "ERR 403 access denied to 'outdir'"),
        ("list ..", "ERR 403 '..' is not allowed in names: '..'"),
        ("get ..\\ok.txt", "ERR 400 backslashes are not allowed in names: '..\\ok.txt'"),
        ("get .secret", "ERR 403 hidden files are not served: '.secret'"),
        ("get ok\x01.txt", "ERR 400 control characters are not allowed in names: 'ok\\x01.txt'"),
        ("get docs", "ERR 400 'docs' is not a regular file"),
        ("get missing.txt", "ERR 404 no such file 'missing.txt'"),
        ("get", "ERR 400 missing argument: usage: get <name>"),
        ("status please", "ERR 400 'status' takes no argument"),
    ];
    for (request, expected) in cases {
        assert_eq!(c.request(request).header, expected, "{request:?}");
    }
    // A NUL byte inside the line.
    c.send_bytes(b"get ok\0.txt\n");
    assert_eq!(c.read_reply().header, "ERR 400 control characters are not allowed in names: 'ok\\x00.txt'");
    // A symlink that stays inside the share is followed.
    assert_eq!(c.request("get alias").text(), "fine\n");
    // Links leading out are not even listed.
    let listing = c.request("list").text();
    assert!(!listing.contains("leak") && !listing.contains("outdir"), "{listing}");
    assert_eq!(c.request("still here?").text(), "still here? ACK\n");
}

#[test]
fn invalid_utf8_is_refused_and_the_session_goes_on() {
    let (share, _outside) = share_with_outside_secret();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    c.send_bytes(b"get \xff\xfe\n");
    assert_eq!(c.read_reply().header, "ERR 400 request is not valid UTF-8");
    assert_eq!(c.request("ok").text(), "ok ACK\n");
}

#[test]
fn an_overlong_line_is_refused_and_the_connection_closed() {
    let (share, _outside) = share_with_outside_secret();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    // Exactly at the limit is fine.
    let at_limit = "x".repeat(4096);
    assert_eq!(c.request(&at_limit).text(), format!("{at_limit} ACK\n"));
    // One byte over is not, and the connection ends.
    c.send_line(&"y".repeat(4097));
    assert_eq!(c.read_reply().header, "ERR 400 request line longer than 4096 bytes; closing");
    assert!(c.read_to_eof().is_empty());

    // A megabyte with no line end at all: cut off early, server unharmed.
    let mut flood = server.raw();
    let garbage = pseudo_random(1 << 20, 5).into_iter().map(|b| if b == b'\n' { b'x' } else { b }).collect::<Vec<_>>();
    // The server may close before reading it all; a failed write is expected then.
    let _ = std::io::Write::write_all(&mut flood.stream, &garbage);
    assert_eq!(flood.read_reply().header, "ERR 400 request line longer than 4096 bytes; closing");
    assert_eq!(server.raw().request("alive").text(), "alive ACK\n");
}

#[test]
fn a_client_that_vanishes_mid_get_frees_its_slot() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(64 << 20, 1));
    let server = ServerProcess::start(share.path(), &["--max-clients", "1"]);
    let mut c = server.raw();
    c.send_line("get big.bin");
    assert!(c.read_header().starts_with("OK 67108864 blake3="));
    c.read_exact(1000);
    drop(c);
    // The slot comes back as soon as the server notices the peer is gone.
    let admitted = eventually("the slot to be freed", || {
        let c = server.raw();
        c.greeting.starts_with("OK").then_some(c)
    });
    assert_eq!(admitted.greeting, "OK 41 proto=1 name=Client02");
}

#[test]
fn a_client_that_vanishes_mid_put_leaves_nothing_visible_and_put_c_finishes_it() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "1", "--allow-uploads"]);
    let data = pseudo_random(4 << 20, 2);
    let mut c = server.raw();
    c.send_line(&format!("put {} {} half.bin", data.len(), blake3_hex(&data)));
    assert_eq!(c.read_reply().header, "OK 0");
    c.send_bytes(&data[..data.len() / 2]);
    drop(c);
    let admitted = eventually("the slot to be freed", || {
        let c = server.raw();
        c.greeting.starts_with("OK").then_some(c)
    });
    assert!(!share.path().join("half.bin").exists());
    // What arrived was kept (hidden, in .uploads/): put -c asks for the rest.
    let mut c = admitted;
    let header = c.request(&format!("put -c {} {} half.bin", data.len(), blake3_hex(&data))).header;
    let offset: usize = header.strip_prefix("OK 0 offset=").and_then(|n| n.parse().ok()).expect(&header);
    assert!(offset > 0 && offset <= data.len() / 2, "{offset}");
    c.send_bytes(&data[offset..]);
    assert_eq!(c.read_reply().text(), "stored 'half.bin' (4194304 bytes)\n");
    assert!(std::fs::read(share.path().join("half.bin")).unwrap() == data);
    let leftovers = std::fs::read_dir(share.path().join(".uploads")).unwrap().count();
    assert_eq!(leftovers, 0, "nothing is left behind once stored");
}

#[test]
fn a_silent_client_is_told_and_disconnected() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--idle-timeout", "1"]);
    let mut c = server.raw();
    let notice = c.read_message();
    assert_eq!(notice.header, "EVT 27");
    assert_eq!(notice.text(), "idle for 1s; disconnecting\n");
    assert!(c.read_to_eof().is_empty());
    // The slot is free again.
    assert!(server.raw().greeting.starts_with("OK"));
}

#[test]
fn a_long_download_is_not_cut_by_the_idle_timeout() {
    // The client sends nothing while it downloads; the transfer keeps it alive.
    let share = Share::new();
    let data = pseudo_random(32 << 20, 9);
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &["--idle-timeout", "1"]);
    let mut c = server.raw();
    c.send_line("get big.bin");
    c.read_header();
    let mut got = Vec::new();
    // Read slowly: 32 chunks, each after a pause, about 1.6 s in all.
    for _ in 0..32 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        got.extend(c.read_exact(1 << 20));
    }
    assert!(got == data);
}

#[test]
fn nothing_a_client_sends_brings_the_server_down() {
    let (share, _outside) = share_with_outside_secret();
    let server = ServerProcess::start(share.path(), &["--max-clients", "2"]);
    for seed in 0..20u64 {
        let mut c = RawClient::connect(server.addr);
        let mut junk = pseudo_random(2000, seed);
        junk.push(b'\n');
        let _ = std::io::Write::write_all(&mut c.stream, &junk);
        drop(c);
    }
    // Once the junk sessions have ended, the server serves as before.
    let mut c = eventually("a free slot", || {
        let c = server.raw();
        c.greeting.starts_with("OK").then_some(c)
    });
    assert_eq!(c.request("still alive").text(), "still alive ACK\n");
}
