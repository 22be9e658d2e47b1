//! The client at its edges, as a new user meets them: commands of other
//! tools, `~`, where downloads go, output to a pipe, pasted lines, two
//! sessions sharing a history.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use file_share_e2e::{
    binary, client_args as args, eventually, pty_client, ready, run_client, ServerProcess, Share, TEST_TIMEOUT,
};

#[test]
fn commands_of_other_tools_are_refused_with_a_hint_not_echoed() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "mget *"]), None);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "'mget' is not a file-client command: get takes several names and globs: get *.txt; type help\n"
    );
    assert!(out.stdout.is_empty());
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "!ls"]), None);
    assert_eq!(out.status.code(), Some(4));
    // A misused request is said once: not `usage: missing argument: usage: ...`.
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "say"]), None);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()), (Some(2), "usage: say <text>\n"));
}

#[test]
fn tilde_is_home_and_downloads_follow_lcd_from_a_download_dir() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    share.add("one.txt", b"1");
    let server = ServerProcess::start(share.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("first")).unwrap();
    std::fs::create_dir_all(home.path().join("second")).unwrap();
    let out = Command::new(binary("file-client"))
        .args(args(
            &server.addr.to_string(),
            &["--download-dir", "~/first", "-c", "get hello.txt", "-c", "lcd ~/second", "-c", "get one.txt"],
        ))
        .current_dir(home.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = home.path().join("first/hello.txt");
    assert!(stdout.contains("got 'hello.txt' (6 bytes, "), "{stdout}");
    assert!(stdout.contains(&format!("BLAKE3 verified) -> {}\n", first.display())), "{stdout}");
    assert!(stdout.contains("got 'one.txt' (1 byte, "), "{stdout}");
    assert!(stdout.contains("BLAKE3 verified) -> ./one.txt\n"), "{stdout}");
    assert_eq!(std::fs::read(first).unwrap(), b"hello\n");
    assert_eq!(std::fs::read(home.path().join("second/one.txt")).unwrap(), b"1");
}

#[test]
fn the_prompt_works_with_stdout_piped_and_pasted_lines_all_run() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // As `file-client ADDR | tee log`: stdin is the terminal, stdout a pipe.
    let line = format!("{} {} | tee {}", binary("file-client").display(), server.addr, log.display());
    let mut command = Command::new("sh");
    command.args(["-c", &line]).current_dir(dir.path()).env("HOME", dir.path()).env("TERM", "xterm");
    let mut pty = rexpect::session::spawn_command(command, Some(TEST_TIMEOUT.as_millis() as u64)).unwrap();
    let prompt = format!("Client01@{}> ", server.addr);
    ready(&mut pty, &prompt);
    // Three lines pasted at once (bracketed paste), then Enter.
    pty.send("\x1b[200~first\nsecond\nthird\x1b[201~").unwrap();
    pty.send("\r").unwrap();
    pty.flush().unwrap();
    // The replies go through tee, the prompt straight to the terminal: in
    // either order, so the log tells when all three have run.
    let all = "first ACK\nsecond ACK\nthird ACK\n";
    eventually("three replies in the log", || (std::fs::read_to_string(&log).ok()? == all).then_some(()));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), all);
}

#[test]
fn two_sessions_at_once_keep_both_histories() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let addr = server.addr.to_string();
    let mut a = pty_client(&addr, dir.path(), dir.path());
    ready(&mut a, &format!("Client01@{addr}> "));
    let mut b = pty_client(&addr, dir.path(), dir.path());
    ready(&mut b, &format!("Client02@{addr}> "));
    a.send_line("alpha").unwrap();
    a.exp_string("alpha ACK").unwrap();
    b.send_line("beta").unwrap();
    b.exp_string("beta ACK").unwrap();
    for pty in [&mut a, &mut b] {
        pty.send_line("exit").unwrap();
        pty.exp_eof().unwrap();
    }
    let history = std::fs::read_to_string(dir.path().join(".local/share/file-client/history")).unwrap();
    assert!(history.contains("alpha") && history.contains("beta"), "{history}");
}

#[test]
fn with_json_stdout_carries_json_objects_only() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    share.add("evil\u{202e}txt.exe", b"x");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up.txt"), b"up").unwrap();
    let mut child = Command::new(binary("file-client"))
        .args([&server.addr.to_string(), "--json", "-q"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"hello\n").unwrap();
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Someone arrives and talks while the client is connected: events.
    let mut other = server.raw();
    other.request("say hi there");
    stdin.write_all(b"list\nget hello.txt\nput up.txt\nhelp\nlpwd\nstatus\nexit\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let mut types = Vec::new();
    for line in format!("{first}{rest}").lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        types.push(value["type"].as_str().unwrap_or_else(|| panic!("no type: {line}")).to_string());
        assert!(!line.contains('\u{202e}'), "raw bidi override: {line}");
    }
    assert_eq!(types, ["reply", "event", "event", "file", "file", "get", "put", "status"], "{first}{rest}");
    let text = format!("{first}{rest}");
    assert!(text.contains("\"event\":\"joined\"") && text.contains("\"text\":\"[Client02] hi there\""), "{text}");
    assert!(text.contains("evil\\u202etxt.exe"), "{text}");
}

#[test]
fn cat_on_a_terminal_escapes_control_bytes() {
    let share = Share::new();
    share.add("evil.txt", b"plain \x1b]0;pwned\x07\x1b[31mred\n");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    let prompt = format!("Client01@{}> ", server.addr);
    ready(&mut pty, &prompt);
    pty.send_line("cat evil.txt").unwrap();
    pty.exp_string("plain \\x1b]0;pwned\\x07\\x1b[31mred").unwrap();
    ready(&mut pty, &prompt);
    // On a terminal, sizes are for people; -b gives bytes.
    share.add("big.bin", &vec![0u8; 3 << 20]);
    pty.send_line("ls").unwrap();
    pty.exp_string("3.00 MiB").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("ls -b").unwrap();
    pty.exp_string("3145728").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn downloads_keep_the_remote_modification_time() {
    let share = Share::new();
    let path = share.add("old.txt", b"from long ago\n");
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(then).unwrap();
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "get old.txt"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(dir.path().join("old.txt")).unwrap().modified().unwrap(), then);
}

#[test]
fn names_with_leading_or_trailing_spaces_travel_exactly() {
    let share = Share::new();
    share.add("tr ", b"trailing");
    share.add(" lead.txt", b"leading");
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up "), b"up").unwrap();
    let commands = ["-c", "get 'tr ' \" lead.txt\"", "-c", "put 'up ' ' up '", "-c", "list"];
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &commands), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("tr ")).unwrap(), b"trailing");
    assert_eq!(std::fs::read(dir.path().join(" lead.txt")).unwrap(), b"leading");
    assert_eq!(std::fs::read(share.path().join(" up ")).unwrap(), b"up");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stored ' up ' (2 bytes)"), "{stdout}");
}

#[test]
fn a_download_that_cannot_fit_is_refused_before_it_fills_the_disk() {
    let disk = file_share_e2e::SmallDisk::mount("1m");
    let share = Share::new();
    share.add("big.bin", &file_share_e2e::pseudo_random(3 << 20, 9));
    share.add("small.txt", b"fits\n");
    let server = ServerProcess::start(share.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let downloads = disk.dir.path().to_str().unwrap();
    let mut pty = file_share_e2e::pty_client_with(
        &server.addr.to_string(),
        home.path(),
        home.path(),
        &["--download-dir", downloads],
    );
    let prompt = format!("Client01@{}> ", server.addr);
    ready(&mut pty, &prompt);
    pty.send_line("get big.bin").unwrap();
    pty.exp_string(&format!(
        "not enough space for 'big.bin' in {downloads}: need 3.00 MiB, 1.00 MiB free; nothing more was written"
    ))
    .unwrap();
    ready(&mut pty, &prompt);
    assert!(!disk.dir.path().join("big.bin.fc-part").exists(), "no empty part file is left");
    pty.send_line("get small.txt").unwrap();
    pty.exp_string("got 'small.txt' (5 bytes").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn a_full_server_at_the_prompt_says_only_that_it_is_full() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "1"]);
    let _holder = server.raw();
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    let seen = pty.exp_eof().unwrap();
    assert_eq!(seen.trim(), "Server is full", "{seen:?}");
}

#[test]
fn cd_sets_the_remote_folder_for_names_completion_and_the_prompt() {
    let share = Share::new();
    share.add("docs/guide.txt", b"guide");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    ready(&mut pty, &format!("Client01@{}> ", server.addr));
    pty.send_line("cd docs").unwrap();
    let inside = format!("Client01@{}:/docs> ", server.addr);
    ready(&mut pty, &inside);
    file_share_e2e::type_keys(&mut pty, "get gu\t");
    pty.exp_string("ide.txt").unwrap();
    pty.send_line("").unwrap();
    pty.exp_string("got 'guide.txt' (5 bytes").unwrap();
    ready(&mut pty, &inside);
    pty.send_line("cd nowhere").unwrap();
    pty.exp_string("remote: no folder '/docs/nowhere'").unwrap();
    ready(&mut pty, &inside);
    pty.send_line("cd ..").unwrap();
    ready(&mut pty, &format!("Client01@{}> ", server.addr));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn uploads_keep_the_local_modification_time() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.txt");
    std::fs::write(&path, b"from long ago\n").unwrap();
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(then).unwrap();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "put old.txt"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(share.path().join("old.txt")).unwrap().modified().unwrap(), then);
}
