//! Managing the share: mkdir, rm, rmdir, rm -r, mv, put -f, hash, cd and
//! pwd, from file-client and typed by hand; nothing without write rights,
//! nothing outside the share.

use std::fs;
use std::process::Command;

use file_share_e2e::{client_args as args, pseudo_random, run_client, ServerProcess, Share};

#[test]
fn a_session_of_file_management_from_the_client() {
    let share = Share::new();
    share.add("draft.txt", b"draft");
    share.add("docs/guide.txt", b"guide");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("draft.txt"), b"second draft").unwrap();
    let commands = [
        "mkdir photos",
        "mv draft.txt photos",
        "cd photos",
        "pwd",
        "put -f draft.txt",
        "hash draft.txt",
        "cd ..",
        "ls photos/*.txt",
        "rm -r photos",
        "rmdir docs",
    ];
    let mut all = Vec::new();
    for c in commands {
        all.extend(["-c", c]);
    }
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &all), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The last command fails: docs is not empty.
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert_eq!(stderr, "remote: folder 'docs' is not empty (rm -r removes it with everything in it)\n");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "made folder 'photos'");
    assert_eq!(lines[1], "moved 'draft.txt' to 'photos/draft.txt'");
    assert_eq!(lines[2], "/photos");
    assert!(lines[3].starts_with("stored 'photos/draft.txt' (12 bytes)"), "{stdout}");
    assert_eq!(
        lines[4],
        format!("{}  draft.txt", blake3::hash(b"second draft").to_hex()),
        "named from the remote folder"
    );
    assert!(lines[5].ends_with("  draft.txt"), "{stdout}");
    assert_eq!(lines[6], "removed folder 'photos' and the 1 entry in it");
    assert!(!share.path().join("photos").exists() && share.path().join("docs/guide.txt").exists());
    // The server logs who changed what.
    assert!(server.log().contains("moved 'draft.txt' to 'photos/draft.txt'"), "{}", server.log());
}

#[test]
fn put_f_replaces_and_hash_matches_b3sum() {
    let share = Share::new();
    let old = pseudo_random(8 << 20, 1);
    share.add("big.bin", &old);
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    let new = pseudo_random(8 << 20, 2);
    fs::write(dir.path().join("big.bin"), &new).unwrap();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "put big.bin"]), None);
    assert_eq!(out.status.code(), Some(4), "no replacing without -f");
    // A download begun before the replacement gets the old file, whole.
    let mut reader = server.raw();
    reader.send_line("get big.bin");
    let header = reader.read_header();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-q", "-c", "put -f big.bin"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(header.starts_with("OK 8388608 ") && reader.read_exact(8 << 20) == old);
    assert!(reader.request("get big.bin").body == new);
    assert!(fs::read(share.path().join("big.bin")).unwrap() == new);
    // `hash` prints what b3sum -c checks.
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "hash big.bin"]), None);
    fs::write(dir.path().join("sums"), &out.stdout).unwrap();
    let check = Command::new("b3sum")
        .arg("-c")
        .arg("sums")
        .current_dir(dir.path())
        .output()
        .expect("b3sum (.ci/run installs it)");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert_eq!(String::from_utf8_lossy(&check.stdout), "big.bin: OK\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}  big.bin\n", blake3::hash(&new).to_hex()));
}

#[test]
fn changes_typed_by_hand_and_their_refusals() {
    let share = Share::new();
    share.add("a b.txt", b"ab");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let mut c = server.raw();
    assert_eq!(c.request("mkdir new").text(), "made folder 'new'\n");
    assert_eq!(c.request("mv \"a b.txt\" new/c d.txt").text(), "moved 'a b.txt' to 'new/c d.txt'\n");
    assert_eq!(c.request("mv new/x y").header, "ERR 404 no such file 'new/x'");
    assert_eq!(
        c.request("rmdir new").header,
        "ERR 409 folder 'new' is not empty (rm -r removes it with everything in it)"
    );
    assert_eq!(c.request("rm ../etc/passwd").header.split(' ').nth(1), Some("403"));
    assert_eq!(c.request("rmtree .uploads").header.split(' ').nth(1), Some("403"));
    assert_eq!(c.request("rmtree new").text(), "removed folder 'new' and the 1 entry in it\n");

    let read_only = ServerProcess::start(share.path(), &[]);
    let mut r = read_only.raw();
    for change in ["mkdir x", "rm a", "rmdir x", "rmtree x", "mv a b"] {
        let header = r.request(change).header;
        assert!(header.starts_with("ERR 403 uploads are disabled"), "{change}: {header}");
    }
}

#[test]
fn a_folder_removed_while_its_file_is_downloaded_breaks_nothing() {
    let share = Share::new();
    let data = pseudo_random(16 << 20, 3);
    share.add("tree/big.bin", &data);
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let mut downloader = server.raw();
    downloader.send_line("get tree/big.bin");
    assert!(downloader.read_header().starts_with("OK 16777216 "));
    let mut remover = server.raw();
    assert_eq!(remover.request("rmtree tree").text(), "removed folder 'tree' and the 1 entry in it\n");
    // The download goes on from the open file, and both sessions go on.
    assert!(downloader.read_exact(16 << 20) == data);
    assert_eq!(downloader.request("get tree/big.bin").header, "ERR 404 no such file 'tree/big.bin'");
    assert_eq!(remover.request("ping").text(), "ping ACK\n");
}
