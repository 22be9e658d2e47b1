//! `put`: off unless asked, verified before visible, refused when it would
//! overwrite or is too large, and never left half-written.

use file_share_e2e::{blake3_hex, pseudo_random, ServerProcess, Share};

fn uploads_left(share: &Share) -> usize {
    std::fs::read_dir(share.path().join(".uploads")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn uploads_are_refused_unless_the_server_allows_them() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("x.txt"), b"x").unwrap();
    let out = server.client(local.path(), &["put x.txt"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "remote: uploads are disabled on this server (it was started without --allow-uploads)\n"
    );
    assert!(!share.path().join("x.txt").exists());
    let mut c = server.raw();
    assert_eq!(
        c.request(&format!("put 1 {} y", blake3_hex(b"y"))).header.split(' ').take(2).collect::<Vec<_>>(),
        ["ERR", "403"]
    );
    assert_eq!(c.request("ok").text(), "ok ACK\n");
}

#[test]
fn client_uploads_arrive_identical_including_into_subfolders_and_with_spaces() {
    let share = Share::new();
    share.add("docs/readme.txt", b"r");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let local = tempfile::tempdir().unwrap();
    let data = pseudo_random(3 << 20, 8);
    std::fs::write(local.path().join("data.bin"), &data).unwrap();
    std::fs::write(local.path().join("my notes.txt"), b"notes").unwrap();
    std::fs::write(local.path().join("empty"), b"").unwrap();
    let out = server.client(
        local.path(),
        &["put data.bin", "put data.bin docs/data.bin", "put \"my notes.txt\"", "put empty 'docs/empty copy'"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(share.path().join("data.bin")).unwrap() == data);
    assert!(std::fs::read(share.path().join("docs/data.bin")).unwrap() == data);
    assert_eq!(std::fs::read(share.path().join("my notes.txt")).unwrap(), b"notes");
    assert_eq!(std::fs::read(share.path().join("docs/empty copy")).unwrap(), b"");
    assert_eq!(uploads_left(&share), 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stored 'docs/data.bin' (3145728 bytes)"), "{stdout}");
}

#[test]
fn an_existing_name_is_refused_with_409() {
    let share = Share::new();
    share.add("taken.txt", b"original");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("taken.txt"), b"intruder").unwrap();
    let out = server.client(local.path(), &["put taken.txt"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "remote: 'taken.txt' exists already\n");
    assert_eq!(std::fs::read(share.path().join("taken.txt")).unwrap(), b"original");
    let mut c = server.raw();
    assert!(c.request(&format!("put 8 {} taken.txt", blake3_hex(b"intruder"))).header.starts_with("ERR 409 "));
}

#[test]
fn an_upload_over_the_limit_is_refused_before_a_byte_is_stored() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--allow-uploads", "--max-upload-size", "1K"]);
    let mut c = server.raw();
    let big = pseudo_random(1025, 1);
    let reply = c.request(&format!("put 1025 {} big.bin", blake3_hex(&big)));
    assert_eq!(reply.header, "ERR 413 'big.bin' is 1025 bytes; this server accepts uploads of at most 1024 bytes");
    assert_eq!(uploads_left(&share), 0);
    // Exactly the limit is accepted.
    let fits = &big[..1024];
    assert_eq!(c.request(&format!("put 1024 {} fits.bin", blake3_hex(fits))).header, "OK 0");
    c.send_bytes(fits);
    assert_eq!(c.read_reply().text(), "stored 'fits.bin' (1024 bytes)\n");
    assert!(!share.path().join("big.bin").exists());
}

#[test]
fn bytes_that_do_not_match_the_hash_are_discarded() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let mut c = server.raw();
    assert_eq!(c.request(&format!("put 5 {} bad.txt", blake3_hex(b"hello"))).header, "OK 0");
    c.send_bytes(b"jello");
    assert_eq!(c.read_reply().header, "ERR 400 upload of 'bad.txt' does not match its hash; nothing was stored");
    assert!(!share.path().join("bad.txt").exists());
    assert_eq!(uploads_left(&share), 0);
    assert_eq!(c.request("ok").text(), "ok ACK\n");
}

#[test]
fn a_partial_upload_is_never_visible() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let data = pseudo_random(1 << 20, 6);
    let mut uploader = server.raw();
    let mut watcher = server.raw();
    assert_eq!(uploader.request(&format!("put {} {} slow.bin", data.len(), blake3_hex(&data))).header, "OK 0");
    uploader.send_bytes(&data[..1000]);
    // Mid-upload: not listed, not fetchable, not on disk under its name.
    assert!(!watcher.request("list").text().contains("slow.bin"));
    assert_eq!(watcher.request("get slow.bin").header, "ERR 404 no such file 'slow.bin'");
    assert!(!share.path().join("slow.bin").exists());
    uploader.send_bytes(&data[1000..]);
    assert_eq!(uploader.read_reply().text(), "stored 'slow.bin' (1048576 bytes)\n");
    assert!(watcher.request("get slow.bin").body == data);
}

#[test]
fn upload_names_are_checked_like_download_names() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let mut c = server.raw();
    let digest = blake3_hex(b"x");
    let cases = [
        ("../escape.txt", "ERR 403 '..' is not allowed in names: '../escape.txt'"),
        ("/tmp/abs.txt", "ERR 403 absolute paths are not allowed: '/tmp/abs.txt'"),
        (".hidden", "ERR 403 hidden files are not served: '.hidden'"),
        (".uploads/x", "ERR 403 hidden files are not served: '.uploads/x'"),
        ("a\\b", "ERR 400 backslashes are not allowed in names: 'a\\b'"),
        ("nofolder/x.txt", "ERR 404 no such file 'nofolder'"),
    ];
    for (name, expected) in cases {
        assert_eq!(c.request(&format!("put 1 {digest} {name}")).header, expected, "{name}");
    }
    assert_eq!(
        c.request("put 1 nothex x").header,
        "ERR 400 bad put line: usage: put [-f] [-c] [-m <unix secs>] <size> <blake3|-> <name>"
    );
    assert_eq!(uploads_left(&share), 0);
}
