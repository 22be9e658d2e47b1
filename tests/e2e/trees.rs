//! Whole folders: `get -r` and `put -r`. Identical files are skipped (so a
//! second run, or one after an interruption, does only what is left), files
//! that differ are left alone without `-f`, and symlinks are never followed
//! out of a tree on either side.

use std::fs;
use std::path::Path;

use file_share_e2e::{client_args as args, pseudo_random, run_client, ServerProcess, Share};

/// 3 folders of 12 small files and a bigger one.
fn sample_tree(share: &Share) {
    for d in 0..3 {
        for i in 0..12 {
            share.add(&format!("t/d{d}/f{i}.bin"), &pseudo_random(4096 + i, (d * 100 + i) as u64));
        }
    }
    share.add("t/big.bin", &pseudo_random(3 << 20, 99));
}

fn same_tree(a: &Path, b: &Path) {
    let out = std::process::Command::new("diff").arg("-r").arg(a).arg(b).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

fn client(server: &ServerProcess, dir: &Path, command: &str) -> (Option<i32>, String, String) {
    let out = run_client(dir, &args(&server.addr.to_string(), &["-q", "-c", command]), None);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn get_r_fetches_a_tree_once_and_then_only_what_changed() {
    let share = Share::new();
    sample_tree(&share);
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = client(&server, dir.path(), "get -r t");
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("get -r 't': 37 files (3.14 MiB, "), "{stdout}");
    assert!(stdout.ends_with("0 identical and skipped -> ./t\n"), "{stdout}");
    same_tree(&share.path().join("t"), &dir.path().join("t"));

    // Again: nothing to do.
    let (code, stdout, _) = client(&server, dir.path(), "get -r t");
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("get -r 't': 0 files (0 B, "), "{stdout}");
    assert!(stdout.contains("37 identical and skipped"), "{stdout}");

    // An interrupted run: two files missing, one cut short (its part file).
    fs::remove_file(dir.path().join("t/d0/f1.bin")).unwrap();
    fs::remove_file(dir.path().join("t/big.bin")).unwrap();
    let big = fs::read(share.path().join("t/big.bin")).unwrap();
    fs::write(dir.path().join("t/big.bin.fc-part"), &big[..1 << 20]).unwrap();
    // And one changed locally with the same size.
    fs::write(dir.path().join("t/d2/f0.bin"), vec![0u8; 4096]).unwrap();
    let (code, stdout, stderr) = client(&server, dir.path(), "get -r t");
    assert!(stdout.starts_with("get -r 't': 2 files ("), "{stdout}");
    assert!(stdout.contains("34 identical and skipped"), "{stdout}");
    assert_eq!(code, Some(1), "a file that differs is reported");
    assert_eq!(stderr, "1 file differs from what is there and was left alone ('d2/f0.bin'); get -r -f replaces them\n");
    assert!(fs::read(dir.path().join("t/big.bin")).unwrap() == big);
    let (code, stdout, _) = client(&server, dir.path(), "get -r -f t");
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("get -r 't': 1 file ("), "{stdout}");
    same_tree(&share.path().join("t"), &dir.path().join("t"));
}

#[test]
fn put_r_sends_a_tree_and_symlinks_are_not_followed_either_way() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("photos");
    for (name, seed) in [("a.jpg", 1), ("2026/b.jpg", 2), ("2026/deep/c.jpg", 3)] {
        let path = local.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, pseudo_random(10_000, seed)).unwrap();
    }
    let secret = tempfile::tempdir().unwrap();
    fs::write(secret.path().join("secret.txt"), b"not to be sent").unwrap();
    std::os::unix::fs::symlink(secret.path(), local.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(secret.path().join("secret.txt"), local.join("s.txt")).unwrap();

    let (code, stdout, stderr) = client(&server, dir.path(), "put -r photos");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("put -r 'photos': 3 files ("), "{stdout}");
    assert!(stdout.ends_with(", 0 identical and skipped, 2 symlinks not followed -> /photos\n"), "{stdout}");
    assert!(!share.path().join("photos/elsewhere").exists() && !share.path().join("photos/s.txt").exists());
    let (code, stdout, _) = client(&server, dir.path(), "put -r photos");
    assert_eq!(code, Some(0));
    assert!(stdout.contains("3 identical and skipped"), "{stdout}");

    // Downloading it back: a symlink planted where a folder goes is refused.
    let back = tempfile::tempdir().unwrap();
    fs::create_dir(back.path().join("photos")).unwrap();
    std::os::unix::fs::symlink(secret.path(), back.path().join("photos/2026")).unwrap();
    let (code, _, stderr) = client(&server, back.path(), "get -r photos");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is a symlink; a tree is never written through one"), "{stderr}");
    assert_eq!(fs::read_dir(secret.path()).unwrap().count(), 1, "nothing written through the link");
    fs::remove_file(back.path().join("photos/2026")).unwrap();
    let (code, _, _) = client(&server, back.path(), "get -r photos");
    assert_eq!(code, Some(0));
    for name in ["a.jpg", "2026/b.jpg", "2026/deep/c.jpg"] {
        assert!(fs::read(back.path().join("photos").join(name)).unwrap() == fs::read(local.join(name)).unwrap());
    }
}

/// Starts `command` (a tree transfer into `target`) in a terminal client
/// through a slow relay, presses Ctrl+C once three entries have arrived, and
/// checks the session goes on: same name, and it still answers. Returns
/// the terminal at its prompt (and the relay, to keep it running).
fn interrupted(
    server: &ServerProcess,
    dir: &Path,
    command: &str,
    target: &Path,
) -> (rexpect::session::PtySession, String, file_share_e2e::SlowRelay) {
    let relay = file_share_e2e::SlowRelay::start(server.addr, 4 << 20);
    let mut pty = file_share_e2e::pty_client(&relay.addr.to_string(), dir, dir);
    let prompt = format!("Client01@{}> ", relay.addr);
    file_share_e2e::ready(&mut pty, &prompt);
    pty.send_line(command).unwrap();
    file_share_e2e::eventually("a few files of the tree", || (fs::read_dir(target).ok()?.count() >= 3).then_some(()));
    pty.send_control('c').unwrap();
    let verb = command.split(' ').next().unwrap();
    pty.exp_string(&format!("cancelled: {verb} -r again continues where it stopped")).unwrap();
    file_share_e2e::ready(&mut pty, &prompt);
    pty.send_line("status").unwrap();
    pty.exp_string("clients 1/3").unwrap();
    file_share_e2e::ready(&mut pty, &prompt);
    (pty, prompt, relay)
}

/// Runs the interrupted `command` again: the `done` files are skipped; then exits.
fn finish_by_rerun(mut pty: rexpect::session::PtySession, prompt: &str, command: &str, done: usize) {
    pty.send_line(command).unwrap();
    pty.exp_string(&format!("{done} identical and skipped")).unwrap();
    file_share_e2e::ready(&mut pty, prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn ctrl_c_during_get_r_stops_every_download_in_flight_and_keeps_the_session() {
    let share = Share::new();
    for i in 0..24 {
        share.add(&format!("t/f{i:02}.bin"), &pseudo_random(1 << 20, i));
    }
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let (pty, prompt, _relay) = interrupted(&server, dir.path(), "get -r t", &dir.path().join("t"));
    let done = fs::read_dir(dir.path().join("t"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".bin")))
        .count();
    assert!(done < 24, "stopped early: {done} files");
    finish_by_rerun(pty, &prompt, "get -r t", done);
    same_tree(&share.path().join("t"), &dir.path().join("t"));
}

#[test]
fn ctrl_c_during_put_r_keeps_the_session_and_a_rerun_sends_the_rest() {
    let share = Share::new();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..24 {
        let path = dir.path().join(format!("t/f{i:02}.bin"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, pseudo_random(1 << 20, 100 + i)).unwrap();
    }
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let (pty, prompt, _relay) = interrupted(&server, dir.path(), "put -r t", &share.path().join("t"));
    let stored = fs::read_dir(share.path().join("t")).unwrap().count();
    assert!(stored < 24, "stopped early: {stored} files");
    finish_by_rerun(pty, &prompt, "put -r t", stored);
    same_tree(&dir.path().join("t"), &share.path().join("t"));
}

#[test]
fn trees_with_empty_folders_spaces_unicode_and_a_link_inside() {
    let share = Share::new();
    share.add("odd tree/ünï cødé/φ ψ.txt", "grüße".as_bytes());
    share.add("odd tree/a b/c d.txt", b"spaces");
    fs::create_dir_all(share.path().join("odd tree/empty dir")).unwrap();
    // A link inside the share is followed (it stays inside); one out is left out.
    std::os::unix::fs::symlink("a b/c d.txt", share.path().join("odd tree/link.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", share.path().join("odd tree/out")).unwrap();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = client(&server, dir.path(), "get -r 'odd tree'");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("get -r 'odd tree': 3 files ("), "{stdout}");
    let local = dir.path().join("odd tree");
    assert!(local.join("empty dir").is_dir());
    assert_eq!(fs::read_to_string(local.join("ünï cødé/φ ψ.txt")).unwrap(), "grüße");
    assert_eq!(fs::read(local.join("link.txt")).unwrap(), b"spaces");
    assert!(!local.join("out").exists(), "nothing from outside the share");
    // And back up under another name: the same tree, the empty folder too.
    let (code, _, stderr) = client(&server, dir.path(), "put -r 'odd tree' copy");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(share.path().join("copy/empty dir").is_dir());
    assert_eq!(fs::read_to_string(share.path().join("copy/ünï cødé/φ ψ.txt")).unwrap(), "grüße");
    // Every write is refused by a read-only server, and nothing changes.
    let read_only = ServerProcess::start(share.path(), &[]);
    let (code, _, stderr) = client(&read_only, dir.path(), "put -r 'odd tree' other");
    assert_eq!(code, Some(4));
    assert_eq!(stderr, "remote: uploads are disabled on this server (it was started without --allow-uploads)\n");
    assert!(!share.path().join("other").exists());
}

#[test]
fn mirrors_with_delete_make_the_destination_equal_and_dry_runs_change_nothing() {
    let share = Share::new();
    share.add("m/a.txt", b"a\n");
    share.add("m/sub/b.txt", b"b\n");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("m");
    std::fs::create_dir_all(local.join("old/deeper")).unwrap();
    std::fs::write(local.join("a.txt"), b"A\n").unwrap();
    std::fs::write(local.join("extra.txt"), b"x\n").unwrap();
    std::fs::write(local.join("old/deeper/y.txt"), b"y\n").unwrap();
    let run = |commands: &[&str]| {
        let out = server.client(dir.path(), commands);
        assert!(out.status.success(), "{commands:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A dry run says what it would do, and does nothing.
    let plan = run(&["get -r --delete -n m"]);
    assert_eq!(plan, "would get sub/b.txt\nwould get a.txt\nwould remove extra.txt\nwould remove old/\n");
    assert!(local.join("extra.txt").exists() && !local.join("sub").exists());
    // The mirror: what is missing comes, what the server lacks goes.
    let report = run(&["get -r --delete m"]);
    assert!(report.contains("2 files") && report.contains("2 removed"), "{report}");
    assert_eq!(std::fs::read(local.join("a.txt")).unwrap(), b"a\n", "what differed is replaced");
    let mut names: Vec<String> = file_share_e2e::files_under(&local);
    names.sort();
    assert_eq!(names, ["a.txt", "sub/b.txt"]);
    // The other way: a file gone here goes there too, never outside the folder.
    std::fs::remove_file(local.join("sub/b.txt")).unwrap();
    std::fs::write(local.join("new.txt"), b"n\n").unwrap();
    share.add("outside.txt", b"keep\n");
    run(&["put -r --delete m"]);
    assert!(!share.path().join("m/sub/b.txt").exists() && share.path().join("m/new.txt").exists());
    assert!(share.path().join("m/sub").is_dir(), "the folder itself is in the source");
    assert!(share.path().join("outside.txt").exists());
}
