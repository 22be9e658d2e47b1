//! The client as people use it: completion, history, progress, cancel and
//! resume, several files and globs, local commands, JSON, and what it does
//! when the server misbehaves.

use std::sync::mpsc;
use std::sync::Mutex;

use file_share_e2e::{
    blake3_hex, client_args as args, pseudo_random, pty_client, pty_client_with, ready, run_client, type_keys,
    FakeServer, ServerProcess, Share,
};

#[test]
fn tab_completes_remote_names_and_up_recalls_history() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    share.add("docs/guide.txt", b"guide\n");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    let prompt = format!("Client01@{}> ", server.addr);
    ready(&mut pty, &prompt);
    // A remote name, fetched from the server as the user presses Tab. What
    // shows is only the redrawn tail, so the outcome proves the completion.
    type_keys(&mut pty, "get hel\t");
    pty.exp_string("lo.txt").unwrap();
    pty.send_line("").unwrap();
    pty.exp_string("got 'hello.txt' (6 bytes").unwrap();
    // Into a folder, and a command name.
    ready(&mut pty, &prompt);
    type_keys(&mut pty, "get docs/g\t");
    pty.exp_string("uide.txt").unwrap();
    pty.send_line("").unwrap();
    pty.exp_string("got 'guide.txt'").unwrap();
    ready(&mut pty, &prompt);
    type_keys(&mut pty, "sta\t");
    pty.exp_string("tus").unwrap();
    pty.send_line("").unwrap();
    pty.exp_string("clients 1/3").unwrap();
    // Up arrow brings the last line back.
    ready(&mut pty, &prompt);
    pty.send_line("ping").unwrap();
    pty.exp_string("ping ACK").unwrap();
    ready(&mut pty, &prompt);
    type_keys(&mut pty, "\x1b[A");
    pty.exp_string("ping").unwrap();
    pty.send_line("").unwrap();
    pty.exp_string("ping ACK").unwrap();
    // Ctrl+C at the prompt throws the line away; the client stays.
    ready(&mut pty, &prompt);
    type_keys(&mut pty, "garbage");
    pty.exp_string("garbage").unwrap();
    pty.send_control('c').unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("pong").unwrap();
    let seen = pty.exp_string("ACK").unwrap();
    assert!(seen.ends_with("pong "), "the cleared line was sent: {seen:?}");
    ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
    assert_eq!(std::fs::read(dir.path().join("hello.txt")).unwrap(), b"hello\n");
}

#[test]
fn ctrl_c_during_a_stalled_download_keeps_the_part_and_get_c_finishes_it() {
    let data = pseudo_random(32 << 20, 41);
    let hash = blake3_hex(&data);
    let half = 20 << 20;
    let (resumed_tx, resumed_rx) = mpsc::channel();
    let resumed_tx = Mutex::new(resumed_tx);
    let served = data.clone();
    let fake = FakeServer::start(move |n, mut conn| {
        while let Some(line) = conn.read_line() {
            if n == 1 && line == "get big.bin" {
                // The first 20 MiB of one frame, then nothing: the transfer
                // stalls, and a `cancel` is not answered either.
                conn.send(format!("OK 0 blake3={hash} bytes={}\nDATA {}\n", served.len(), served.len()).as_bytes());
                conn.send(&served[..half]);
            } else if let Some(offset) = line.strip_prefix("resume ").and_then(|r| r.strip_suffix(" big.bin")) {
                let offset: usize = offset.parse().unwrap();
                let _ = resumed_tx.lock().unwrap().send(offset);
                conn.send_download(&format!("blake3={hash} offset={offset} size={}", served.len()), &served[offset..]);
            } else if line == "exit" {
                conn.send_text("bye\n");
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&fake.addr.to_string(), dir.path(), dir.path());
    ready(&mut pty, &format!("Fake01@{}> ", fake.addr));
    pty.send_line("get big.bin").unwrap();
    // The bar says so once nothing has moved for 5 s.
    pty.exp_string("stalled").unwrap();
    pty.send_control('c').unwrap();
    pty.exp_string("cancelled: partial download kept as ./big.bin.fc-part; get -c big.bin resumes").unwrap();
    // The session goes on, on a new connection, since the server did not
    // answer the cancel.
    ready(&mut pty, &format!("Fake02@{}> ", fake.addr));
    assert_eq!(std::fs::metadata(dir.path().join("big.bin.fc-part")).unwrap().len(), half as u64);
    assert!(!dir.path().join("big.bin").exists());

    pty.send_line("get -c big.bin").unwrap();
    pty.exp_string(&format!("got 'big.bin' (33554432 bytes, resumed at {half}")).unwrap();
    assert_eq!(resumed_rx.recv().unwrap(), half);
    assert!(std::fs::read(dir.path().join("big.bin")).unwrap() == data);
    assert!(!dir.path().join("big.bin.fc-part").exists());
    ready(&mut pty, &format!("Fake02@{}> ", fake.addr));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn ctrl_c_while_the_server_prepares_the_reply_cancels_at_once() {
    let (asked_tx, asked_rx) = mpsc::channel();
    let asked_tx = Mutex::new(asked_tx);
    let fake = FakeServer::start(move |n, mut conn| {
        while let Some(line) = conn.read_line() {
            if n == 1 && line == "get huge.iso" {
                // No answer, as while a server hashes a big file the first time.
                let _ = asked_tx.lock().unwrap().send(());
            } else if line == "exit" {
                conn.send_text("bye\n");
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&fake.addr.to_string(), dir.path(), dir.path());
    ready(&mut pty, &format!("Fake01@{}> ", fake.addr));
    pty.send_line("get huge.iso").unwrap();
    asked_rx.recv().unwrap();
    pty.send_control('c').unwrap();
    // Asked to stop, the server says nothing: the client gives up on it.
    pty.exp_string("cancelled: before the server answered").unwrap();
    // The session goes on, on a new connection; nothing was written.
    ready(&mut pty, &format!("Fake02@{}> ", fake.addr));
    assert!(!dir.path().join("huge.iso").exists() && !dir.path().join("huge.iso.fc-part").exists());
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn a_resume_that_does_not_match_is_discarded_and_fails() {
    let data = pseudo_random(1 << 20, 42);
    let hash = blake3_hex(&data);
    let fake = FakeServer::start(move |_, mut conn| {
        while let Some(line) = conn.read_line() {
            if let Some(offset) = line.strip_prefix("resume ").and_then(|r| r.strip_suffix(" x.bin")) {
                let offset: usize = offset.parse().unwrap();
                conn.send_download(&format!("blake3={hash} offset={offset}"), &data[offset..]);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // A partial file that is not the start of the remote file.
    std::fs::write(dir.path().join("x.bin.fc-part"), b"not the same bytes").unwrap();
    let out = run_client(dir.path(), &args(&fake.addr.to_string(), &["-c", "get -c x.bin"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "'x.bin' did not match its BLAKE3 hash after resuming and was discarded\n"
    );
    assert!(!dir.path().join("x.bin.fc-part").exists());
    assert!(!dir.path().join("x.bin").exists());
}

#[test]
fn progress_bars_only_when_asked_or_on_a_terminal() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(8 << 20, 43));
    let server = ServerProcess::start(share.path(), &[]);
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let forced = run_client(dir.path(), &args(&addr, &["--progress", "-c", "get big.bin"]), None);
    assert!(forced.status.success());
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(stderr.contains("get big.bin") && stderr.contains("MiB"), "{stderr:?}");
    for quiet in [&["-c", "get -f big.bin"][..], &["--quiet", "-c", "get -f big.bin"][..]] {
        let out = run_client(dir.path(), &args(&addr, quiet), None);
        assert!(out.status.success());
        assert!(out.stderr.is_empty(), "{:?}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn several_files_and_globs_both_ways() {
    let share = Share::new();
    for name in ["a.txt", "b.txt", "c.log", "docs/d.txt", "docs/e.txt"] {
        share.add(name, name.as_bytes());
    }
    let server = ServerProcess::start(share.path(), &["--allow-uploads"]);
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&addr, &["-c", "get *.txt c.log", "-c", "get docs/*"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["a.txt", "b.txt", "c.log", "d.txt", "e.txt"] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    let out = run_client(dir.path(), &args(&addr, &["-c", "get *.iso"]), None);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "remote: no files match '*.iso'\n");

    std::fs::create_dir(dir.path().join("logs")).unwrap();
    for name in ["one.log", "two.log"] {
        std::fs::write(dir.path().join("logs").join(name), name).unwrap();
    }
    let out = run_client(dir.path(), &args(&addr, &["-c", "put logs/*.log"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(share.path().join("one.log")).unwrap(), b"one.log");
    assert_eq!(std::fs::read(share.path().join("two.log")).unwrap(), b"two.log");
}

#[test]
fn local_commands_and_help() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("inbox")).unwrap();
    std::fs::write(dir.path().join("inbox/old.txt"), b"12345").unwrap();
    let commands = ["-c", "lcd inbox", "-c", "lpwd", "-c", "get hello.txt", "-c", "lls", "-c", "help get"];
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &commands), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let inbox = dir.path().join("inbox").canonicalize().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], inbox.display().to_string());
    assert_eq!(lines[1], inbox.display().to_string());
    assert!(lines[2].starts_with("got 'hello.txt'"));
    assert!(lines[3].trim_start().starts_with("6  ") && lines[3].ends_with("  hello.txt"), "{stdout}");
    assert!(lines[4].trim_start().starts_with("5  ") && lines[4].ends_with("  old.txt"), "{stdout}");
    assert_eq!(lines[5], "usage: get [-r] [-f] [-c] <name|glob>... | get <name> <local>");
    assert!(lines[7].starts_with("example: get"), "{stdout}");
    // The download went to the new local folder.
    assert!(dir.path().join("inbox/hello.txt").exists());
}

#[test]
fn json_for_scripts() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    share.add("docs/a.txt", b"a");
    let server = ServerProcess::start(share.path(), &["--max-clients", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["--json", "-c", "list", "-c", "status"]), None);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("{\"modified\":\"20")
            && lines[0].ends_with("\"name\":\"docs\",\"size\":0,\"type\":\"dir\"}")
    );
    assert!(lines[1].ends_with("\"name\":\"hello.txt\",\"size\":6,\"type\":\"file\"}"), "{}", lines[1]);
    let status = lines[2];
    for part in
        ["\"clients\":1", "\"max_clients\":3", "\"name\":\"Client01\"", "\"you\":true", "\"activity\":\"status\""]
    {
        assert!(status.contains(part), "{part} in {status}");
    }
    assert_eq!(lines.len(), 3);
}

#[test]
fn text_from_a_hostile_server_is_printed_harmlessly() {
    let fake = FakeServer::start(|_, mut conn| {
        while let Some(line) = conn.read_line() {
            match line.as_str() {
                "list" => {
                    conn.send(b"EVT 22\n\x1b]0;pwned\x07 \x1b[2J event\n");
                    conn.send_text("f 3 2026-11-21T00:00:00Z evil\x1b[31mname\x07\nf 3 2026-11-21T00:00:00Z .bashrc\n");
                }
                "get evil\x1b[31mname\x07" | "get .bashrc" => conn.send_download("blake3=00", b"abc"),
                _ => conn.send(b"ERR 400 unexpected\n"),
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&fake.addr.to_string(), &["-c", "list", "-c", "get *"]), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\x1b') && !stdout.contains('\x07'), "{stdout:?}");
    assert!(stdout.contains("\\x1b]0;pwned\\x07 \\x1b[2J event"), "{stdout:?}");
    assert!(stdout.contains("evil\\x1b[31mname\\x07"), "{stdout:?}");
    // Neither a name with control characters nor a hidden name becomes a local file.
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "remote: no files match '*'\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_reply_too_large_or_unparseable_ends_the_session_with_status_1() {
    let fake = FakeServer::start(|_, mut conn| {
        while let Some(line) = conn.read_line() {
            match line.as_str() {
                // What file-client sends for `status`.
                "info" => conn.send(b"OK 99999999999999\n"),
                _ => conn.send(b"HTTP/1.1 200 OK\n"),
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let addr = fake.addr.to_string();
    let out = run_client(dir.path(), &args(&addr, &["-c", "status"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "connection: server sent a reply of 99999999999999 bytes; limit is 16777216\n"
    );
    let out = run_client(dir.path(), &args(&addr, &["-c", "hello"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "connection: bad reply from server: unknown reply kind in 'HTTP/1.1 200 OK'\n"
    );
}

#[test]
fn a_reply_that_never_comes_times_out() {
    let fake = FakeServer::start(|_, mut conn| while conn.read_line().is_some() {});
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&fake.addr.to_string(), &["--timeout", "1", "-c", "status"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "connection: the server stopped answering (no reply for 1s)\n");
}

#[test]
fn cat_writes_files_to_stdout_byte_for_byte() {
    let share = Share::new();
    let data = pseudo_random(3 << 20, 44);
    share.add("bin/a.bin", &data);
    share.add("bin/b.txt", b"tail\n");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&server.addr.to_string(), &["-c", "cat bin/*"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut expected = data;
    expected.extend_from_slice(b"tail\n");
    assert!(out.stdout == expected);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "cat writes no files");
}

#[test]
fn after_the_server_closes_the_connection_the_next_command_reconnects_with_the_same_name() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    let server = ServerProcess::start(share.path(), &["--idle-timeout", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    ready(&mut pty, &format!("Client01@{}> ", server.addr));
    pty.send_line("name alice").unwrap();
    pty.exp_string("you are now alice").unwrap();
    let prompt = format!("alice@{}> ", server.addr);
    ready(&mut pty, &prompt);
    // Told at once, at the prompt.
    pty.exp_string("idle for 1s; disconnecting").unwrap();
    pty.exp_string("connection closed: server closed the connection; the next command reconnects").unwrap();
    pty.send_line("get hello.txt").unwrap();
    pty.exp_string(&format!("reconnected to {} as alice", server.addr)).unwrap();
    pty.exp_string("got 'hello.txt' (6 bytes").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn a_stalled_download_ends_that_transfer_and_the_prompt_goes_on() {
    let data = pseudo_random(8 << 20, 43);
    let hash = blake3_hex(&data);
    let fake = FakeServer::start(move |n, mut conn| {
        while let Some(line) = conn.read_line() {
            if n == 1 && line == "get big.bin" {
                // Half of the file, then nothing.
                conn.send(format!("OK 0 blake3={hash} bytes={}\nDATA {}\n", data.len(), data.len()).as_bytes());
                conn.send(&data[..4 << 20]);
            } else if line == "list" {
                conn.send_text("f 1 2026-11-21T00:00:00Z x\n");
            } else if line == "exit" {
                conn.send_text("bye\n");
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client_with(&fake.addr.to_string(), dir.path(), dir.path(), &["--timeout", "2"]);
    ready(&mut pty, &format!("Fake01@{}> ", fake.addr));
    pty.send_line("get big.bin").unwrap();
    pty.exp_string("connection: the server stopped sending (nothing for 2s); partial download kept as ./big.bin.fc-part; get -c big.bin resumes; the next command reconnects").unwrap();
    ready(&mut pty, &format!("Fake01@{}> ", fake.addr));
    assert_eq!(std::fs::metadata(dir.path().join("big.bin.fc-part")).unwrap().len(), 4 << 20);
    pty.send_line("ls").unwrap();
    pty.exp_string("reconnected to").unwrap();
    ready(&mut pty, &format!("Fake02@{}> ", fake.addr));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn lines_typed_ahead_of_the_prompt_all_run() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    ready(&mut pty, &format!("Client01@{}> ", server.addr));
    // Three lines in one write, as a paste without bracketed paste or
    // `tmux send-keys` gives them: each runs, in order.
    type_keys(&mut pty, "first\rsecond\rthird\r");
    for line in ["first ACK", "second ACK", "third ACK"] {
        pty.exp_string(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn the_download_bar_counts_the_whole_transfer_across_frames() {
    // 12 MiB through a slow link: three 4 MiB frames, the bar redrawn all along.
    let share = Share::new();
    share.add("big.bin", &pseudo_random(12 << 20, 44));
    let server = ServerProcess::start(share.path(), &[]);
    let relay = file_share_e2e::SlowRelay::start(server.addr, 8 << 20);
    let dir = tempfile::tempdir().unwrap();
    let out = run_client(dir.path(), &args(&relay.addr.to_string(), &["--progress", "-c", "get big.bin"]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Each redraw: `get big.bin  DONE/12.00 MiB ...`.
    let shown: Vec<f64> = stderr
        .split("/12.00 MiB")
        .filter_map(|before| {
            let mut words = before.rsplit(' ');
            let (unit, number) = (words.next()?, words.next()?);
            let scale = match unit {
                "MiB" => 1.0,
                "KiB" => 1.0 / 1024.0,
                "B" => 1.0 / 1048576.0,
                _ => return None,
            };
            Some(number.parse::<f64>().ok()? * scale)
        })
        .collect();
    assert!(shown.len() >= 4, "the bar was drawn a few times: {stderr:?}");
    assert!(shown.windows(2).all(|w| w[0] <= w[1]), "never back to a frame's start: {shown:?}");
    assert!(shown.iter().any(|&mib| mib > 4.5 && mib < 11.5), "past the first frame, shown on the way: {shown:?}");
}

#[test]
fn tab_completes_inside_a_folder_whose_name_has_a_space() {
    let share = Share::new();
    share.add("tree/sub dir/deep.txt", b"deep\n");
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    let prompt = format!("Client01@{}> ", server.addr);
    for typed in ["get 'tree/sub dir/'dee\t", "get tree/sub\\ dir/dee\t"] {
        ready(&mut pty, &prompt);
        type_keys(&mut pty, typed);
        pty.exp_string("p.txt").unwrap_or_else(|e| panic!("{typed:?}: {e}"));
        pty.send_line("").unwrap();
        pty.exp_string("got 'deep.txt'").unwrap();
        std::fs::remove_file(dir.path().join("deep.txt")).unwrap();
    }
    ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn a_typo_at_the_prompt_gets_a_hint_and_is_not_sent() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut pty = pty_client(&server.addr.to_string(), dir.path(), dir.path());
    let prompt = format!("Client01@{}> ", server.addr);
    ready(&mut pty, &prompt);
    pty.send_line("lsit").unwrap();
    pty.exp_string("unknown command 'lsit': did you mean 'list'?").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("hello there").unwrap();
    pty.exp_string("hello there ACK").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}
