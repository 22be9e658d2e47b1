//! Chat and presence: `name`, `say`, and the join, leave and rename notices.

use std::process::{Command, Stdio};

use file_share_e2e::{binary, pseudo_random, ServerProcess, Share};

#[test]
fn say_reaches_every_other_client_but_not_the_sender() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut alice = server.raw();
    let mut bob = server.raw();
    let mut carol = server.raw();
    alice.expect_event("Client03 joined (3 online)\n");
    bob.expect_event("Client03 joined (3 online)\n");

    let (events, reply) = {
        alice.send_line("say hello, everyone!");
        alice.events_then_reply()
    };
    assert_eq!(reply.header, "OK 0 recipients=2");
    assert!(events.is_empty(), "the sender gets no copy: {events:?}");
    bob.expect_event("[Client01] hello, everyone!\n");
    carol.expect_event("[Client01] hello, everyone!\n");
    // Nothing else arrived for the sender: its next reply comes with no events.
    alice.send_line("ping");
    let (events, reply) = alice.events_then_reply();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(reply.text(), "ping ACK\n");
    // A line that is not a command is still only echoed.
    assert_eq!(bob.request("just talking").text(), "just talking ACK\n");
    carol.send_line("status");
    let (events, _) = carol.events_then_reply();
    assert!(events.is_empty(), "an echo is not broadcast: {events:?}");
}

#[test]
fn joins_renames_and_departures_are_announced_with_counts() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut first = server.raw();
    let mut second = server.raw();
    first.expect_event("Client02 joined (2 online)\n");
    let mut third = server.raw();
    first.expect_event("Client03 joined (3 online)\n");
    second.expect_event("Client03 joined (3 online)\n");

    assert_eq!(second.request("name bob").text(), "you are now bob\n");
    first.expect_event("Client02 is now bob\n");
    third.expect_event("Client02 is now bob\n");
    // Messages carry the chosen name; status shows it.
    second.request("say hi");
    third.expect_event("[bob] hi\n");
    assert!(first.request("status").text().lines().any(|l| l.trim_start().starts_with("bob  127.0.0.1:")));

    assert_eq!(second.request("exit").text(), "bye\n");
    first.expect_event("bob left (2 online)\n");
    third.expect_event("bob left (2 online)\n");
}

#[test]
fn names_must_be_valid_and_unique() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut alice = server.raw();
    let mut other = server.raw();
    assert_eq!(alice.request("name alice").text(), "you are now alice\n");
    assert_eq!(other.request("name ALICE").header, "ERR 409 the name 'ALICE' is taken");
    let cases = [
        ("name bad name", "ERR 400 a name may contain only letters, digits, '-', '_' and '.': 'bad name'"),
        ("name Client09", "ERR 400 names like ClientNN are reserved for the server's own naming: 'Client09'"),
        ("name", "ERR 400 missing argument: usage: name <nick>"),
    ];
    for (request, expected) in cases {
        assert_eq!(other.request(request).header, expected);
    }
    let long = "x".repeat(33);
    assert_eq!(
        other.request(&format!("name {long}")).header,
        format!("ERR 400 a name has 1 to 32 characters: '{long}'")
    );
    assert_eq!(other.request(&format!("name {}", "y".repeat(32))).header.split(' ').next(), Some("OK"));
    // Taking back one's own name (any case) is fine.
    assert_eq!(alice.request("name Alice").text(), "you are now Alice\n");
}

#[test]
fn a_killed_client_is_announced_as_left() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut watcher = server.raw();
    // A real file-client waiting for commands on a pipe, then killed with SIGKILL.
    let mut client = Command::new(binary("file-client"))
        .arg(server.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    watcher.expect_event("Client02 joined (2 online)\n");
    client.kill().unwrap();
    client.wait().unwrap();
    watcher.expect_event("Client02 left (1 online)\n");
}

#[test]
fn a_client_that_never_reads_delays_nobody_and_later_learns_what_it_missed() {
    let share = Share::new();
    let data = pseudo_random(64 << 20, 31);
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &[]);
    // The sleeper starts a large download and stops reading: its socket fills
    // and its writer blocks, so notices pile up in its outbox.
    let mut sleeper = server.raw();
    sleeper.send_line("get big.bin");
    assert!(sleeper.read_header().starts_with("OK 67108864 "));

    let mut talker = server.raw();
    let mut fetcher = server.raw();
    // Each say returns while the sleeper's outbox is full (1,000 notices).
    for i in 0..2000 {
        assert_eq!(talker.request(&format!("say message {i}")).header, "OK 0 recipients=2");
    }
    // Others' transfers go on meanwhile.
    assert!(fetcher.request("get big.bin").body == data);

    // The sleeper wakes: the rest of its download, then the notices in order,
    // then one notice of how many were dropped.
    assert!(sleeper.read_exact(data.len()) == data);
    let mut events = Vec::new();
    for _ in 0..1001 {
        events.push(sleeper.read_message().text());
    }
    assert_eq!(events[0], "Client02 joined (2 online)\n");
    assert_eq!(events[1], "Client03 joined (3 online)\n");
    assert_eq!(events[2], "[Client02] message 0\n");
    assert_eq!(events[999], "[Client02] message 997\n");
    assert_eq!(events[1000], "1002 notices were dropped because this client was not reading them\n");
    assert_eq!(sleeper.request("awake").text(), "awake ACK\n");
}

#[test]
fn a_reply_never_overtakes_an_event_sent_before_its_request() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut listener = server.raw();
    let mut talker = server.raw();
    listener.expect_event("Client02 joined (2 online)\n");
    for i in 0..300 {
        // The say has been delivered to the listener's outbox when its OK returns;
        // the listener's next reply must come after that event.
        assert_eq!(talker.request(&format!("say {i}")).header, "OK 0 recipients=1");
        listener.send_line("ping");
        let (events, reply) = listener.events_then_reply();
        assert_eq!(events, [format!("[Client02] {i}\n")], "round {i}");
        assert_eq!(reply.text(), "ping ACK\n");
    }
}

#[test]
fn presence_events_carry_fields_a_program_can_match() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &[]);
    let mut watcher = server.raw();
    let mut other = server.raw();
    assert_eq!(
        watcher.expect_event("Client02 joined (2 online)\n").header,
        "EVT 27 event=joined name=Client02 online=2"
    );
    other.request("name bob");
    assert_eq!(watcher.expect_event("Client02 is now bob\n").header, "EVT 20 event=renamed from=Client02 name=bob");
    other.request("say hi");
    assert_eq!(watcher.expect_event("[bob] hi\n").header, "EVT 9 event=say name=bob");
    other.request("exit");
    assert_eq!(watcher.expect_event("bob left (1 online)\n").header, "EVT 20 event=left name=bob online=1");
}
