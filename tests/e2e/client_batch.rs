//! `file-client` in batch mode: `-c` and piped stdin, stop at the first
//! failure, exit statuses that mean something.

use file_share_e2e::{run_client, ServerProcess, Share};

fn server() -> (Share, ServerProcess) {
    let share = Share::new();
    share.add("a.txt", b"a\n");
    let server = ServerProcess::start(share.path(), &[]);
    (share, server)
}

#[test]
fn commands_run_in_order_and_exit_0() {
    let (share, server) = server();
    let out = server.client(share.path(), &["one", "two", "status"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("one ACK\ntwo ACK\nuptime "), "{stdout}");
}

#[test]
fn the_first_failed_command_stops_the_batch_with_status_4() {
    let (share, server) = server();
    let downloads = tempfile::tempdir().unwrap();
    let out = server.client(downloads.path(), &["first", "get missing.txt", "never"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first ACK\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "remote: no such file 'missing.txt'\n");
    let _ = share;
}

#[test]
fn a_usage_error_in_a_command_is_status_2() {
    let (share, server) = server();
    let out = server.client(share.path(), &["get"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "usage: get [-f] [-c] <name|glob>...\n");
}

#[test]
fn commands_are_read_from_stdin_when_it_is_not_a_terminal() {
    let (share, server) = server();
    let downloads = tempfile::tempdir().unwrap();
    let script = "# a comment\nhello\n\nget a.txt\nget missing\nnever\n";
    let out = run_client(downloads.path(), &[server.addr.to_string()], Some(script));
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("hello ACK\ngot 'a.txt' (2 bytes"), "{stdout}");
    assert!(!stdout.contains("never"));
    assert_eq!(std::fs::read(downloads.path().join("a.txt")).unwrap(), b"a\n");
    let _ = share;
}

#[test]
fn a_batch_that_ends_without_exit_still_leaves_cleanly() {
    let (share, server) = server();
    let mut watcher = server.raw();
    let out = server.client(share.path(), &["hi"]);
    assert!(out.status.success());
    watcher.expect_event("Client02 left (1 online)\n");
    // The departure is announced after the session's end is logged.
    assert!(server.log().contains("disconnected: exit"), "{}", server.log());
}

#[test]
fn a_closed_stdout_is_a_normal_end() {
    // `file-client -c "cat big.bin" | head -c 10`: head leaves after 10 bytes.
    let share = Share::new();
    let data = file_share_e2e::pseudo_random(8 << 20, 9);
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(file_share_e2e::binary("file-client"))
        .args([server.addr.to_string().as_str(), "-c", "cat big.bin", "-c", "never"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(first, data[..10]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_typo_of_a_command_fails_with_a_hint_and_any_other_text_is_echoed() {
    let share = file_share_e2e::Share::new();
    share.add("hello.txt", b"hi\n");
    let server = file_share_e2e::ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let typo = server.client(dir.path(), &["gte hello.txt", "status"]);
    assert_eq!(typo.status.code(), Some(2), "a usage error, and the run stops there");
    assert!(String::from_utf8_lossy(&typo.stderr).contains("unknown command 'gte': did you mean 'get'?"));
    assert!(typo.stdout.is_empty(), "nothing was sent: {}", String::from_utf8_lossy(&typo.stdout));
    let chat = server.client(dir.path(), &["hello there"]);
    assert!(chat.status.success());
    assert_eq!(String::from_utf8_lossy(&chat.stdout), "hello there ACK\n");
}

#[test]
fn put_into_a_remote_folder_and_get_to_a_local_name_as_scp_and_sftp_do() {
    let share = file_share_e2e::Share::new();
    share.add("inbox/.keep", b"");
    share.add("a.txt", b"a\n");
    share.add("b.txt", b"b\n");
    let server = file_share_e2e::ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("one.txt", "1\n"), ("two.txt", "2\n"), ("three.txt", "3\n")] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let run = |commands: &[&str]| {
        let out = server.client(dir.path(), commands);
        assert!(out.status.success(), "{commands:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["put one.txt inbox", "put two.txt inbox/", "put three.txt renamed.txt"]);
    assert_eq!(std::fs::read(share.path().join("inbox/one.txt")).unwrap(), b"1\n");
    assert_eq!(std::fs::read(share.path().join("inbox/two.txt")).unwrap(), b"2\n");
    assert_eq!(std::fs::read(share.path().join("renamed.txt")).unwrap(), b"3\n", "a name, not a folder: renamed");
    run(&["mkdir more", "put *.txt more"]);
    let mut there: Vec<_> =
        std::fs::read_dir(share.path().join("more")).unwrap().map(|e| e.unwrap().file_name()).collect();
    there.sort();
    assert_eq!(there, ["one.txt", "three.txt", "two.txt"]);
    // sftp's get REMOTE LOCAL: a local name, or a local folder.
    run(&["get inbox/one.txt copy.txt", "get inbox/two.txt sub"]);
    assert_eq!(std::fs::read(dir.path().join("copy.txt")).unwrap(), b"1\n");
    assert_eq!(std::fs::read(dir.path().join("sub/two.txt")).unwrap(), b"2\n");
    // Two names that are both on the server: two downloads, as before.
    run(&["get a.txt b.txt"]);
    assert_eq!(
        (std::fs::read(dir.path().join("a.txt")).unwrap(), std::fs::read(dir.path().join("b.txt")).unwrap()),
        (b"a\n".to_vec(), b"b\n".to_vec())
    );
}

#[test]
fn ls_takes_the_usual_flags_and_mkdir_p_makes_the_way() {
    let share = file_share_e2e::Share::new();
    share.add("docs/a.txt", b"a\n");
    let server = file_share_e2e::ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    let out = server.client(dir.path(), &["ls -la docs", "mkdir -p x/y/z", "mkdir -p x/y/z", "ls -l x/y"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("a.txt") && text.contains("z/"), "{text}");
    assert!(share.path().join("x/y/z").is_dir());
}

#[test]
fn one_shot_copies_and_commands_as_scp_and_ssh() {
    let share = file_share_e2e::Share::new();
    share.add("hello.txt", b"hi\n");
    share.add("a b.txt", b"spaced\n");
    share.add("inbox/.keep", b"");
    let server = file_share_e2e::ServerProcess::start(share.path(), &["--allow-uploads"]);
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up1.txt"), b"1\n").unwrap();
    std::fs::write(dir.path().join("up2.txt"), b"2\n").unwrap();
    std::fs::create_dir_all(dir.path().join("tree/sub")).unwrap();
    std::fs::write(dir.path().join("tree/sub/t.txt"), b"t\n").unwrap();
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = file_share_e2e::run_client(dir.path(), &args, None);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Down, to the local folder and to a local name.
    run(&[&format!("{addr}:hello.txt")]);
    assert_eq!(std::fs::read(dir.path().join("hello.txt")).unwrap(), b"hi\n");
    run(&[&format!("{addr}:a b.txt"), "copy.txt"]);
    assert_eq!(std::fs::read(dir.path().join("copy.txt")).unwrap(), b"spaced\n");
    // Up, several into a folder, and a tree with -r.
    run(&["up1.txt", "up2.txt", &format!("{addr}:inbox")]);
    assert_eq!(std::fs::read(share.path().join("inbox/up2.txt")).unwrap(), b"2\n");
    run(&["-r", "tree", &format!("{addr}:")]);
    assert_eq!(std::fs::read(share.path().join("tree/sub/t.txt")).unwrap(), b"t\n");
    // One command, as ssh host command; its words quoted back as typed.
    assert!(run(&[&addr, "list"]).contains("inbox/"));
    assert_eq!(run(&[&addr, "hash", "a b.txt"]), format!("{}  a b.txt\n", blake3::hash(b"spaced\n").to_hex()));
    // The usual exit codes: a missing remote file is a failed command (4).
    let missing = file_share_e2e::run_client(dir.path(), &[format!("{addr}:nope.txt")], None);
    assert_eq!(missing.status.code(), Some(4));
    // Copies both ways at once are refused.
    let both = file_share_e2e::run_client(dir.path(), &[format!("{addr}:hello.txt"), format!("{addr}:x")], None);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn with_json_every_line_on_stdout_is_one_object_errors_included() {
    let share = file_share_e2e::Share::new();
    share.add("a.txt", b"a\n");
    share.add("docs/b.txt", b"b\n");
    let server = file_share_e2e::ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up.txt"), b"up\n").unwrap();
    let commands =
        ["say hi", "hash a.txt", "pwd", "get -r docs", "put up.txt", "mkdir made", "list", "status", "get nope.txt"];
    let mut args = vec![server.addr.to_string(), "--json".into()];
    for c in commands {
        args.extend(["-c".to_string(), c.to_string()]);
    }
    let out = file_share_e2e::run_client(dir.path(), &args, None);
    assert_eq!(out.status.code(), Some(4), "the last command fails: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {l:?}: {e}\n{stdout}")))
        .collect();
    let of = |kind: &str| objects.iter().find(|o| o["type"] == kind).unwrap_or_else(|| panic!("no {kind}:\n{stdout}"));
    assert_eq!(of("reply")["recipients"], 0, "say's reply carries its recipients");
    assert_eq!(of("hash")["blake3"], blake3::hash(b"a\n").to_hex().as_str());
    assert_eq!(of("pwd")["path"], "/");
    assert_eq!((of("tree")["operation"].as_str(), of("tree")["files"].as_u64()), (Some("get"), Some(1)));
    let error = objects.last().unwrap();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_u64(), error["exit"].as_u64()),
        (Some("error"), Some(404), Some(4))
    );
}

#[test]
fn rate_limits_hold_on_the_client_and_on_the_server() {
    use std::time::{Duration, Instant};
    let data = file_share_e2e::pseudo_random(1 << 20, 45);
    let share = file_share_e2e::Share::new();
    share.add("one.bin", &data);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up.bin"), &data).unwrap();
    let timed = |args: Vec<String>| {
        let started = Instant::now();
        let out = file_share_e2e::run_client(dir.path(), &args, None);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        started.elapsed()
    };
    // 1 MiB at 512 KiB/s takes two seconds, whatever the machine (a limit
    // only ever makes it slower): at least 1.5 s, the first steps being free.
    let floor = Duration::from_millis(1500);
    let open = file_share_e2e::ServerProcess::start(share.path(), &["--allow-uploads"]);
    let limited =
        |cmd: &str| vec![open.addr.to_string(), "--limit-rate".into(), "512K".into(), "-c".into(), cmd.into()];
    assert!(timed(limited("get one.bin")) >= floor, "client download limit");
    assert!(timed(limited("put up.bin")) >= floor, "client upload limit");
    assert_eq!(std::fs::read(share.path().join("up.bin")).unwrap(), data, "whole for all that");
    drop(open);
    let capped = file_share_e2e::ServerProcess::start(share.path(), &["--max-rate-per-client", "512K", "--http", "0"]);
    let get = vec![capped.addr.to_string(), "-c".into(), "get -f one.bin".into()];
    assert!(timed(get) >= floor, "server limit on a download");
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{}/one.bin", capped.http_port.unwrap());
    let curl = std::process::Command::new("curl").args(["-s", "-o", "/dev/null", &url]).status().unwrap();
    assert!(curl.success() && started.elapsed() >= floor, "server limit on the web side");
}

#[test]
fn a_bookmark_names_a_server_with_its_folder() {
    let share = file_share_e2e::Share::new();
    share.add("hello.txt", b"hi\n");
    let server = file_share_e2e::ServerProcess::start(share.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join(".config/file-client");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir(home.path().join("dl")).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("[hosts.work]\naddress = \"{}\"\ndownload_dir = \"~/dl\"\n", server.addr),
    )
    .unwrap();
    let args: Vec<String> = ["work", "-c", "get hello.txt"].iter().map(|a| a.to_string()).collect();
    let xdg = home.path().join(".config");
    let env = [("HOME", home.path()), ("XDG_CONFIG_HOME", xdg.as_path())];
    let out = file_share_e2e::run_client_env(home.path(), &args, &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(home.path().join("dl/hello.txt")).unwrap(), b"hi\n");
    // A typo in the file is said, not guessed around.
    std::fs::write(config.join("config.toml"), "[hosts.work]\nadress = \"x\"\n").unwrap();
    let out = file_share_e2e::run_client_env(home.path(), &args, &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.toml"), "{}", String::from_utf8_lossy(&out.stderr));
}
