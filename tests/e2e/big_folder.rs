//! A folder too big for one reply in memory: 70,000 files with long names
//! make a 19 MB listing. `file-client` lists (and globs) it, printing as the
//! entries arrive, and its memory stays small.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use file_share_e2e::{binary, ServerProcess, Share};

const FILES: usize = 70_000;

/// The high-water mark of a process's resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_listing_bigger_than_any_reply_limit_streams_in_small_memory() {
    let share = Share::new();
    let pad = "x".repeat(233);
    for i in 0..FILES {
        std::fs::File::create(share.path().join(format!("{i:06}-{pad}"))).unwrap();
    }
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut client = Command::new(binary("file-client"))
        .args([&server.addr.to_string(), "--timeout", "60"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    // A glob over the whole folder, then the whole listing.
    stdin.write_all(b"get 069999-*\nlist\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("got '069999-"), "{line}");
    let mut listed = 0;
    while listed < FILES {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "listing ended after {listed} entries");
        listed += 1;
    }
    assert!(line.ends_with(&format!("069999-{pad}\n")), "{line}");
    // The client now waits for its next command: its peak is final.
    let peak = peak_rss_kib(client.id());
    eprintln!("file-client peak RSS after a {FILES}-entry listing: {peak} KiB");
    stdin.write_all(b"exit\n").unwrap();
    drop(stdin);
    assert!(client.wait().unwrap().success());
    assert!(peak < 64 * 1024, "file-client peaked at {peak} KiB for a 19 MB listing");
}
