//! Every command, over raw TCP and through the real client.

use file_share_e2e::{blake3_hex, pseudo_random, run_client, ServerProcess, Share};

fn sample_share() -> Share {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    share.add("docs/a.txt", b"in a folder\n");
    share.add("a name with spaces.txt", b"spaces\n");
    share.add(".secret", b"hidden\n");
    share.add("empty.bin", b"");
    share
}

#[test]
fn greeting_names_clients_in_order_and_states_the_protocol() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &[]);
    let first = server.raw();
    let second = server.raw();
    assert_eq!(first.greeting, "OK 41 proto=1 name=Client01");
    assert_eq!(second.greeting, "OK 41 proto=1 name=Client02");
}

#[test]
fn any_other_line_is_echoed_with_ack() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    let reply = c.request("Hello Server!");
    assert_eq!(reply.header, "OK 18");
    assert_eq!(reply.text(), "Hello Server! ACK\n");
    // CRLF line ends and any case work the same.
    c.send_bytes(b"HeLLo\r\n");
    assert_eq!(c.read_reply().text(), "HeLLo ACK\n");
    assert_eq!(c.request("HELP").header.split(' ').next(), Some("OK"));

    let out = server.client(share.path(), &["Hello Server!"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello Server! ACK\n");
}

#[test]
fn help_lists_every_command() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &[]);
    let help = server.raw().request("help").text();
    for command in ["status", "list", "get", "put", "help", "exit"] {
        assert!(help.lines().any(|l| l.starts_with(command)), "help lacks {command}:\n{help}");
    }
}

#[test]
fn status_shows_uptime_clients_activity_and_departures() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &["--max-clients", "3"]);
    let mut me = server.raw();
    let mut other = server.raw();
    let status = me.request("status").text();
    assert!(status.starts_with("uptime "), "{status}");
    assert!(status.contains("clients 2/3"), "{status}");
    let mine = status.lines().find(|l| l.contains("Client01")).expect("my line");
    assert!(mine.contains("(you)") && mine.contains("127.0.0.1:") && mine.contains("connected 20"), "{mine}");
    assert!(mine.contains("idle ") && mine.ends_with("status"), "{mine}");
    assert!(status.lines().any(|l| l.contains("Client02") && l.ends_with("idle")), "{status}");

    assert_eq!(other.request("exit").text(), "bye\n");
    other.read_to_eof();
    let status = me.request("status").text();
    assert!(status.contains("clients 1/3"), "{status}");
    let left = status.split("recently left").nth(1).expect("departures section");
    assert!(left.contains("Client02") && left.contains("left 20"), "{status}");
}

#[test]
fn list_is_sorted_marks_folders_and_hides_dot_files() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    let listing = c.request("list").text();
    let names: Vec<&str> = listing.lines().map(|l| l.splitn(4, ' ').nth(3).unwrap()).collect();
    assert_eq!(names, ["a name with spaces.txt", "docs/", "empty.bin", "hello.txt"]);
    let hello = listing.lines().find(|l| l.ends_with(" hello.txt")).unwrap();
    assert!(hello.starts_with("f 6 20") && hello.contains('T') && hello.contains("Z "), "{hello}");
    assert!(listing.lines().any(|l| l.starts_with("d - ") && l.ends_with(" docs/")));

    assert_eq!(
        c.request("list docs").text().lines().map(|l| l.rsplit(' ').next().unwrap()).collect::<Vec<_>>(),
        ["a.txt"]
    );
    assert_eq!(c.request("list nowhere").header, "ERR 404 no such file 'nowhere'");
    assert_eq!(c.request("list hello.txt").header, "ERR 400 'hello.txt' is not a folder");

    let out = server.client(share.path(), &["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.trim_start().starts_with("6  20") && l.ends_with("  hello.txt")), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("-  ") && l.ends_with("  docs/")), "{text}");
}

#[test]
fn get_states_the_hash_and_sends_exact_bytes() {
    let share = sample_share();
    let data = pseudo_random(1 << 20, 7);
    share.add("random.bin", &data);
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    let reply = c.request("get random.bin");
    let prefix = format!("OK {} blake3={} modified=20", data.len(), blake3_hex(&data));
    assert!(reply.header.starts_with(&prefix) && reply.header.ends_with('Z'), "{}", reply.header);
    assert!(reply.body == data, "body differs");
    // The session goes on after a binary body.
    assert_eq!(c.request("ping").text(), "ping ACK\n");
}

#[test]
fn client_downloads_binary_empty_spaced_and_nested_files_identically() {
    let share = sample_share();
    let data = pseudo_random(1 << 20, 11);
    share.add("random.bin", &data);
    let server = ServerProcess::start(share.path(), &[]);
    let downloads = tempfile::tempdir().unwrap();
    let out = server.client(
        downloads.path(),
        &["get random.bin", "get empty.bin", "get \"a name with spaces.txt\"", "get docs/a.txt"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| std::fs::read(downloads.path().join(name)).unwrap();
    assert!(read("random.bin") == data);
    assert_eq!(read("empty.bin"), b"");
    assert_eq!(read("a name with spaces.txt"), b"spaces\n");
    assert_eq!(read("a.txt"), b"in a folder\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("got 'random.bin' (1048576 bytes"), "{stdout}");
    // No temporary files are left behind.
    let mut names: Vec<String> =
        std::fs::read_dir(downloads.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a name with spaces.txt", "a.txt", "empty.bin", "random.bin"]);
}

#[test]
fn get_refuses_to_overwrite_a_local_file_unless_forced() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &[]);
    let downloads = tempfile::tempdir().unwrap();
    std::fs::write(downloads.path().join("hello.txt"), b"mine").unwrap();
    let out = server.client(downloads.path(), &["get hello.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "local file 'hello.txt' exists (use get -f to overwrite)\n");
    assert_eq!(std::fs::read(downloads.path().join("hello.txt")).unwrap(), b"mine");

    let out = server.client(downloads.path(), &["get -f hello.txt"]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(downloads.path().join("hello.txt")).unwrap(), b"hello\n");
}

#[test]
fn exit_says_goodbye_and_closes() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &[]);
    let mut c = server.raw();
    let reply = c.request("exit");
    assert_eq!((reply.header.as_str(), reply.text().as_str()), ("OK 4", "bye\n"));
    assert!(c.read_to_eof().is_empty());
}

#[test]
fn a_file_that_is_too_big_for_memory_is_streamed_with_its_hash() {
    // 64 MiB through the real client: the server sends it with sendfile and
    // the client streams it to disk; both sides check the hash.
    let share = sample_share();
    let data = pseudo_random(64 << 20, 3);
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &[]);
    let downloads = tempfile::tempdir().unwrap();
    let out = server.client(downloads.path(), &["get big.bin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(downloads.path().join("big.bin")).unwrap() == data);
}

#[test]
fn connection_over_ipv6_and_by_host_name() {
    let share = sample_share();
    let v6 = ServerProcess::start_on("::1", share.path(), &[]);
    assert_eq!(v6.addr.to_string(), format!("[::1]:{}", v6.addr.port()));
    let out = run_client(share.path(), &[v6.addr.to_string(), "-c".into(), "over v6".into()], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over v6 ACK\n");

    let v4 = ServerProcess::start(share.path(), &[]);
    let by_name = format!("localhost:{}", v4.addr.port());
    let out = run_client(share.path(), &[by_name, "-c".into(), "by name".into()], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "by name ACK\n");

    // The server takes a host name for --bind too.
    let named = ServerProcess::start_on("localhost", share.path(), &[]);
    assert!(named.addr.ip().is_loopback(), "{}", named.addr);
    let out = run_client(share.path(), &[named.addr.to_string(), "-c".into(), "host named".into()], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host named ACK\n");
}

#[test]
fn status_shows_a_download_in_progress_with_its_percentage() {
    let share = sample_share();
    share.add("big.bin", &pseudo_random(64 << 20, 21));
    let server = ServerProcess::start(share.path(), &[]);
    let mut downloader = server.raw();
    downloader.send_line("get big.bin");
    assert!(downloader.read_header().starts_with("OK 67108864 "));
    downloader.read_exact(1 << 20);
    // The downloader stops reading: its transfer is stuck part-way.
    let status = server.raw().request("status").text();
    let line = status.lines().find(|l| l.contains("Client01")).expect("downloader's line");
    let percent: u32 = line
        .strip_suffix('%')
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no percentage in {line:?}"));
    assert!(line.contains("get big.bin ") && percent < 100, "{line}");
}

#[test]
fn info_is_status_as_data_and_the_client_prints_the_same_table() {
    let share = sample_share();
    let server = ServerProcess::start(share.path(), &["--max-clients", "4"]);
    let mut c = server.raw();
    c.request("name alice");
    let info = c.request("info");
    let lines: Vec<String> = info.text().lines().map(str::to_string).collect();
    assert!(lines[0].starts_with("server uptime="), "{lines:?}");
    assert!(lines[0].ends_with(" clients=1 max=4"), "{lines:?}");
    assert!(lines[1].starts_with("client name=alice you=yes addr=127.0.0.1:"), "{lines:?}");
    assert!(lines[1].ends_with(" doing=command command=status"), "{lines:?}");
    assert_eq!(lines.len(), 2);

    // The client's table is the server's `status` text, from the same value.
    let out = server.client(share.path(), &["status"]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = c.request("status").text();
    // alice's line up to her idle time (which may tick), "(you)" aside.
    let line_of = |text: &str, who: &str| {
        let line = text.lines().find(|l| l.contains(who)).expect(who).replace(" (you)", "");
        line.split("  idle").next().unwrap().to_string()
    };
    assert_eq!(line_of(&printed, "alice"), line_of(&text, "alice"));
    assert!(printed.contains("(you)") && printed.starts_with("uptime "), "{printed}");
    assert!(printed.contains("\nclients 2/4\n"), "{printed}");
}
