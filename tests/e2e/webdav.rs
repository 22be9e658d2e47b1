//! WebDAV on the web side, driven by clients nobody here wrote: the
//! `litmus` test suite, `rclone` with a webdav remote, `cadaver`.

use std::collections::BTreeSet;
use std::process::Command;

use file_share_e2e::{pseudo_random, ServerProcess, Share};

fn base(server: &ServerProcess) -> String {
    format!("http://127.0.0.1:{}", server.http_port.expect("http on line"))
}

/// The dead-property tests (properties are not stored here: `PROPPATCH`
/// answers 403 for each) and the two whose `If:` header litmus itself cuts
/// at 200 bytes (our 64-hex ETags make it longer; the header it sends is
/// malformed and refused with 400).
const EXPECTED_FAILURES: [&str; 5] = ["propset", "propmanyns", "propget", "owner_modify", "complex_cond_put"];

#[test]
fn litmus_passes_every_suite_but_the_dead_properties() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads"]);
    let out = Command::new("litmus")
        .args(["-k", &format!("{}/", base(&server))])
        .output()
        .expect("litmus (apt-get install litmus)");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    // `N. name......... FAIL (why)` (after the same line's progress, ended by
    // a carriage return): the word before the dots before FAIL.
    let failed: BTreeSet<&str> = report
        .split(['\n', '\r'])
        .filter_map(|l| l.split_once(" FAIL").map(|(before, _)| before))
        .filter_map(|before| before.trim_end_matches(['.', ' ']).rsplit(' ').next())
        .collect();
    assert!(failed.contains("propset"), "the dead properties are refused, as documented: {failed:?}\n{report}");
    let allowed: BTreeSet<&str> = EXPECTED_FAILURES.iter().copied().chain(["fail_complex_cond_put"]).collect();
    assert!(
        failed.is_subset(&allowed),
        "unexpected failures {:?}:\n{report}",
        failed.difference(&allowed).collect::<Vec<_>>()
    );
    for suite in ["basic", "copymove", "http"] {
        let summary = report.lines().find(|l| l.contains(&format!("summary for `{suite}'"))).unwrap_or_default();
        assert!(summary.ends_with("0 failed. 100.0%"), "{suite}: {summary}\n{report}");
    }
    let locks = report.lines().find(|l| l.contains("summary for `locks'")).unwrap_or_default().to_string();
    assert!(locks.contains("of 41 tests run"), "locks ran whole (class 2 claimed): {locks}");
}

#[test]
fn rclone_syncs_a_tree_up_and_down_and_check_finds_nothing() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads"]);
    let work = tempfile::tempdir().unwrap();
    let (up, down) = (work.path().join("up"), work.path().join("down"));
    std::fs::create_dir_all(up.join("sub/deeper")).unwrap();
    std::fs::write(up.join("a.txt"), b"one\n").unwrap();
    std::fs::write(up.join("sub/b.bin"), pseudo_random(300_000, 7)).unwrap();
    std::fs::write(up.join("sub/deeper/c d.txt"), "trois, ça\n").unwrap();
    let remote = format!(":webdav,url='{}/':mirror", base(&server));
    let rclone = |args: &[&str]| {
        let out = Command::new("rclone")
            .args(args)
            .env("RCLONE_CONFIG", work.path().join("rclone.conf"))
            .output()
            .expect("rclone (apt-get install rclone)");
        assert!(out.status.success(), "rclone {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    rclone(&["sync", up.to_str().unwrap(), &remote]);
    assert_eq!(std::fs::read(share.path().join("mirror/sub/b.bin")).unwrap(), pseudo_random(300_000, 7));
    let checked = rclone(&["check", up.to_str().unwrap(), &remote]);
    assert!(checked.contains("0 differences found"), "{checked}");
    rclone(&["sync", &remote, down.to_str().unwrap()]);
    for name in ["a.txt", "sub/b.bin", "sub/deeper/c d.txt"] {
        assert_eq!(std::fs::read(up.join(name)).unwrap(), std::fs::read(down.join(name)).unwrap(), "{name}");
    }
    // A file gone from the source goes from the mirror.
    std::fs::remove_file(up.join("a.txt")).unwrap();
    rclone(&["sync", up.to_str().unwrap(), &remote]);
    assert!(!share.path().join("mirror/a.txt").exists() && share.path().join("mirror/sub/b.bin").exists());
}

#[test]
fn cadaver_makes_copies_moves_locks_and_deletes() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads"]);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("hello.txt"), b"hello\n").unwrap();
    let script = "mkcol box\ncd box\nput hello.txt note.txt\ncopy note.txt copy.txt\nmove copy.txt moved.txt\n\
                  lock note.txt\ndiscover note.txt\nunlock note.txt\nget moved.txt got.txt\ndelete note.txt\nls\nquit\n";
    let mut child = Command::new("cadaver")
        .arg(format!("{}/", base(&server)))
        .current_dir(work.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cadaver (apt-get install cadaver)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    let out = file_share_e2e::output_within(child, std::time::Duration::from_secs(20));
    let said = String::from_utf8_lossy(&out.stdout);
    for step in [
        "Creating `box': succeeded",
        "Copying `/box/note.txt' to `/box/copy.txt':  succeeded",
        "Moving `/box/copy.txt' to `/box/moved.txt':  succeeded",
        "Locking `note.txt': succeeded",
        "Scope: exclusive  Type: write",
        "Unlocking `note.txt': succeeded",
        "Deleting `note.txt': succeeded",
    ] {
        assert!(said.contains(step), "{step}:\n{said}");
    }
    assert_eq!(std::fs::read(work.path().join("got.txt")).unwrap(), b"hello\n");
    let names: Vec<_> = std::fs::read_dir(share.path().join("box")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["moved.txt"]);
}
