//! Ctrl+C during a transfer keeps the session: same connection, same slot,
//! same name, and nobody else sees anything (`frames on`, `cancel`, `END
//! cancelled`; see docs/PROTOCOL.md).

use std::fs;

use file_share_e2e::{
    blake3_hex, eventually, pseudo_random, pty_client, ready, RawClient, ServerProcess, Share, SlowRelay,
};

/// The observer's view: `status` with the events that came before it.
fn status(observer: &mut RawClient) -> (Vec<String>, String) {
    observer.send_line("status");
    let (events, reply) = observer.events_then_reply();
    (events, reply.text())
}

#[test]
fn ctrl_c_during_get_and_put_keeps_the_session_on_a_full_server() {
    let share = Share::new();
    let data = pseudo_random(24 << 20, 61);
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &["--max-clients", "2", "--allow-uploads"]);
    let mut observer = server.raw();
    // 8 MiB/s each way: a transfer takes seconds, long enough to cancel.
    let relay = SlowRelay::start(server.addr, 8 << 20);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&relay.addr.to_string(), dir.path(), dir.path());
    let prompt = format!("Client02@{}> ", relay.addr);
    ready(&mut pty, &prompt);
    observer.expect_event("Client02 joined (2 online)\n");

    pty.send_line("get big.bin").unwrap();
    let part = dir.path().join("big.bin.fc-part");
    eventually("a partial download", || fs::metadata(&part).ok().filter(|m| m.len() > 1 << 20));
    pty.send_control('c').unwrap();
    pty.exp_string("cancelled: partial download kept as ./big.bin.fc-part; get -c big.bin resumes").unwrap();
    ready(&mut pty, &prompt);
    let kept = fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < data.len() as u64, "{kept}");
    // Still full: the cancel took no new connection and left no ghost.
    assert_eq!(server.raw().greeting, "ERR 503 Server is full");
    let (events, text) = status(&mut observer);
    assert!(events.is_empty(), "others saw {events:?}");
    assert!(text.contains("clients 2/2") && text.contains("Client02 "), "{text}");

    pty.send_line("get -c big.bin").unwrap();
    pty.exp_string(&format!("got 'big.bin' (25165824 bytes, resumed at {kept}")).unwrap();
    ready(&mut pty, &prompt);
    assert!(fs::read(dir.path().join("big.bin")).unwrap() == data);

    pty.send_line("put big.bin up.bin").unwrap();
    // Under way, with some of it at the server (at least 4%, 1 MiB), so there is something to keep.
    eventually("the upload under way", || {
        let text = status(&mut observer).1;
        let percent = text.split("put up.bin ").nth(1)?.split('%').next()?.trim().parse::<u32>().ok()?;
        (percent >= 4).then_some(())
    });
    pty.send_control('c').unwrap();
    pty.exp_string("cancelled: upload of 'up.bin' cancelled").unwrap();
    ready(&mut pty, &prompt);
    let (events, text) = status(&mut observer);
    assert!(events.is_empty(), "others saw {events:?}");
    assert!(text.contains("clients 2/2"), "{text}");
    let listing = observer.request("list").text();
    assert!(!listing.contains("up.bin"), "nothing stored: {listing}");
    // put -c goes on from what the server kept.
    pty.send_line("put -c big.bin up.bin").unwrap();
    pty.exp_string("stored 'up.bin' (25165824 bytes) (").unwrap();
    pty.exp_string(", resumed at ").unwrap();
    ready(&mut pty, &prompt);
    assert!(std::fs::read(share.path().join("up.bin")).unwrap() == data);

    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn ctrl_c_while_the_server_hashes_a_big_file_stops_the_hashing() {
    let share = Share::new();
    // Sparse: hashing it takes seconds, storing it takes nothing.
    let huge = fs::File::create(share.path().join("huge.bin")).unwrap();
    huge.set_len(16 << 30).unwrap();
    let server = ServerProcess::start(share.path(), &[]);
    let mut observer = server.raw();
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    let prompt = format!("Client02@{}> ", server.addr);
    ready(&mut pty, &prompt);

    pty.send_line("get huge.bin").unwrap();
    eventually("the server hashing", || status(&mut observer).1.contains("get huge.bin").then_some(()));
    pty.send_control('c').unwrap();
    // Answered at once (ERR 499), on the same connection: had the server
    // hashed on, the client would have given up on it after 3 s of silence
    // and come back under a new name.
    pty.exp_string("cancelled: before the server answered").unwrap();
    ready(&mut pty, &prompt);
    assert!(!dir.path().join("huge.bin.fc-part").exists(), "no empty part file is left");
    let (_, text) = status(&mut observer);
    assert!(text.contains("clients 2/3") && text.contains("Client02 "), "{text}");
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

/// Reads frames up to `END`: the bytes, and the `END` line.
fn read_frames(c: &mut RawClient) -> (Vec<u8>, String) {
    let mut bytes = Vec::new();
    loop {
        let line = c.read_header();
        match line.strip_prefix("DATA ") {
            Some(len) => bytes.extend(c.read_exact(len.parse().expect("frame length"))),
            None => return (bytes, line),
        }
    }
}

#[test]
fn frames_and_cancel_typed_by_hand() {
    let share = Share::new();
    let data = pseudo_random(5 << 20, 62);
    share.add("small.bin", &data);
    fs::File::create(share.path().join("big.bin")).unwrap().set_len(256 << 20).unwrap();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let mut c = server.raw();
    assert_eq!(c.request("frames on").header, "OK 0 frames=on");

    c.send_line("get small.bin");
    let header = c.read_header();
    assert!(header.starts_with(&format!("OK 0 blake3={} modified=", blake3_hex(&data))), "{header}");
    assert!(header.ends_with(&format!(" bytes={}", data.len())), "{header}");
    let (bytes, end) = read_frames(&mut c);
    assert!(bytes == data);
    assert_eq!(end, "END ok");

    // Cancelled while the server hashes the file (it looks for a waiting
    // `cancel` as it goes); `cancel` gets its own reply after it.
    c.send_bytes(b"get big.bin\ncancel\n");
    assert_eq!(c.read_header(), "ERR 499 download of 'big.bin' cancelled while it was being hashed");
    assert_eq!(c.read_header(), "OK 0");
    // Cancelled mid-way: the download stops at a frame's end.
    c.send_line("get big.bin");
    assert!(c.read_header().ends_with(" bytes=268435456"));
    let first = c.read_header();
    assert_eq!(first, "DATA 4194304");
    c.read_exact(4 << 20);
    c.send_line("cancel");
    let (bytes, end) = read_frames(&mut c);
    assert_eq!(end, "END cancelled");
    assert!(bytes.len() < 252 << 20 && bytes.iter().all(|&b| b == 0), "{} bytes", bytes.len());
    assert_eq!(c.read_header(), "OK 0");
    assert!(c.request("status").text().contains("clients 1/3"), "the session goes on");

    // Uploads: `END cancelled` stores nothing; `END ok` before the announced
    // size stores nothing either; the session goes on after both.
    let hash = blake3_hex(b"abc");
    assert_eq!(c.request(&format!("put 3 {hash} up.txt")).header, "OK 0");
    c.send_bytes(b"DATA 2\nabEND cancelled\n");
    assert_eq!(c.read_header(), "ERR 499 upload cancelled; nothing was stored (put -c goes on from what arrived)");
    // The two bytes that arrived were kept: put -c asks only for the rest.
    assert_eq!(c.request(&format!("put -c 3 {hash} up.txt")).header, "OK 0 offset=2");
    c.send_bytes(b"END cancelled\n");
    assert!(c.read_header().starts_with("ERR 499 "));
    assert_eq!(c.request(&format!("put 3 {hash} up.txt")).header, "OK 0");
    c.send_bytes(b"DATA 2\nabEND ok\n");
    assert_eq!(c.read_header(), "ERR 400 the upload ended before its 3 bytes; nothing was stored");
    assert!(!c.request("list").text().contains("up.txt"));
    assert_eq!(c.request(&format!("put 3 {hash} up.txt")).header, "OK 0");
    c.send_bytes(b"DATA 1\naDATA 2\nbcEND ok\n");
    assert_eq!(c.read_reply().text(), "stored 'up.txt' (3 bytes)\n");

    // The hash may follow the bytes instead (`-`), in END; it is checked.
    assert_eq!(c.request("put 3 - late.txt").header, "OK 0");
    c.send_bytes(format!("DATA 3\nabdEND ok blake3={hash}\n").as_bytes());
    assert_eq!(c.read_header(), "ERR 400 upload of 'late.txt' does not match its hash; nothing was stored");
    assert_eq!(c.request("put 3 - late.txt").header, "OK 0");
    c.send_bytes(b"DATA 3\nabcEND ok\n");
    assert!(c.read_header().starts_with("ERR 400 'late.txt' was announced with '-': END ok must carry blake3="));
    assert_eq!(c.request("put 3 - late.txt").header, "OK 0");
    c.send_bytes(format!("DATA 3\nabcEND ok blake3={hash}\n").as_bytes());
    assert_eq!(c.read_reply().text(), "stored 'late.txt' (3 bytes)\n");

    // Without frames, as with nc: the raw bytes.
    assert_eq!(c.request("frames off").header, "OK 0 frames=off");
    let reply = c.request("get up.txt");
    assert!(reply.header.starts_with(&format!("OK 3 blake3={hash} modified=")), "{}", reply.header);
    assert_eq!(reply.body, b"abc");
    // A hash after the bytes needs END, so frames.
    let refused = c.request("put 3 - raw.txt").header;
    assert!(refused.starts_with("ERR 400 a put with '-' for its hash needs frames on"), "{refused}");

    // A frame line that is not one ends the session: the bytes after it
    // cannot be told from requests.
    c.request("frames on");
    assert_eq!(c.request(&format!("put 3 {hash} other.txt")).header, "OK 0");
    c.send_bytes(b"hello\n");
    assert_eq!(c.read_header(), "ERR 400 expected DATA <len> or END ok [blake3=<hex>]|cancelled; closing");
    assert!(c.read_to_eof().is_empty());
}
