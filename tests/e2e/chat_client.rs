//! Chat through the real `file-client`: `--name`, events in batch mode in
//! order with replies, and events shown at an idle interactive prompt.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use file_share_e2e::{binary, pty_client, ready, ServerProcess, Share};

#[test]
fn name_on_connect_and_say_from_a_batch() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut watcher = server.raw();
    let out = file_share_e2e::run_client(
        share.path(),
        &[server.addr.to_string(), "--name".into(), "alice".into(), "-c".into(), "say hi there".into()],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    watcher.expect_event("Client02 joined (2 online)\n");
    watcher.expect_event("Client02 is now alice\n");
    watcher.expect_event("[alice] hi there\n");
    watcher.expect_event("alice left (1 online)\n");
}

#[test]
fn a_taken_name_on_connect_keeps_the_given_name_and_says_so() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut alice = server.raw();
    alice.request("name alice");
    let out = file_share_e2e::run_client(
        share.path(),
        &[server.addr.to_string(), "--name".into(), "alice".into(), "-c".into(), "status".into()],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "the name 'alice' is taken; you are Client02 (name alice to try again)\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Client02 (you)"));
}

#[test]
fn batch_mode_prints_events_in_order_with_replies() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut talker = server.raw();
    let mut client = Command::new(binary("file-client"))
        .arg(server.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    let mut output = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();

    writeln!(input, "one").unwrap();
    output.read_line(&mut line).unwrap();
    assert_eq!(line, "one ACK\n");
    // Sent between two commands: printed before the second reply.
    talker.expect_event("Client02 joined (2 online)\n");
    assert_eq!(talker.request("say between").header, "OK 0 recipients=1");
    writeln!(input, "two").unwrap();
    drop(input);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut output, &mut rest).unwrap();
    assert_eq!(rest, "[Client01] between\ntwo ACK\n");
    assert!(client.wait().unwrap().success());
}

#[test]
fn an_idle_prompt_shows_events_as_they_arrive_escaped_and_keeps_history() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let mut talker = server.raw();
    let mut pty = pty_client(&server.addr.to_string(), home.path(), home.path());
    let prompt = format!("Client02@{}> ", server.addr);
    ready(&mut pty, &prompt);
    talker.expect_event("Client02 joined (2 online)\n");

    // The user types nothing; the message appears anyway.
    talker.request("say hello from afar");
    pty.exp_string("[Client01] hello from afar").unwrap();
    // An escape sequence in a message reaches the terminal only as text.
    talker.request("say \x1b[2Jcleared?");
    let seen = pty.exp_string("cleared?").unwrap();
    assert!(!seen.contains("\x1b[2J"), "raw escape reached the terminal: {seen:?}");
    assert!(seen.contains("\\x1b[2J"), "{seen:?}");

    pty.send_line("ping").unwrap();
    pty.exp_string("ping ACK").unwrap();
    ready(&mut pty, &prompt);
    pty.send_line("name bob").unwrap();
    ready(&mut pty, &format!("bob@{}> ", server.addr));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
    let history = std::fs::read_to_string(home.path().join(".local/share/file-client/history")).unwrap();
    assert!(history.lines().any(|l| l == "ping") && history.lines().any(|l| l == "name bob"), "{history}");
}
