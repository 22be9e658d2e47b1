//! The cap on concurrent clients: exactly MAX_CLIENTS sessions, refusals for
//! the rest, and a slot free the moment its session ends.

use file_share_e2e::{pseudo_random, run_client, ServerProcess, Share};

#[test]
fn the_fourth_client_is_refused_and_admitted_once_one_exits() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "3"]);
    let mut clients: Vec<_> = (0..3).map(|_| server.raw()).collect();
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.greeting, format!("OK 41 proto=1 name=Client0{}", i + 1));
    }

    let mut fourth = server.raw();
    assert_eq!(fourth.greeting, "ERR 503 Server is full");
    assert!(fourth.read_to_eof().is_empty(), "a refused connection is closed at once");

    // The real client says so and exits with status 3.
    let out = run_client(share.path(), &[server.addr.to_string(), "-c".into(), "status".into()], None);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "Server is full\n");

    // One leaves; once its connection has closed, a newcomer is admitted with no wait.
    let mut leaving = clients.remove(0);
    assert_eq!(leaving.request("exit").text(), "bye\n");
    leaving.read_to_eof();
    let newcomer = server.raw();
    assert_eq!(newcomer.greeting, "OK 41 proto=1 name=Client04");
    assert_eq!(server.raw().greeting, "ERR 503 Server is full");
}

#[test]
fn refusals_are_immediate_while_every_session_is_busy_in_a_transfer() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(64 << 20, 4));
    let server = ServerProcess::start(share.path(), &["--max-clients", "2"]);
    // Two sessions start a large download and stop reading: their writers block.
    let mut busy: Vec<_> = (0..2).map(|_| server.raw()).collect();
    for c in &mut busy {
        c.send_line("get big.bin");
        assert!(c.read_header().starts_with("OK 67108864 "));
    }
    for _ in 0..5 {
        let mut refused = server.raw();
        assert_eq!(refused.greeting, "ERR 503 Server is full");
        assert!(refused.read_to_eof().is_empty());
    }
    // The busy sessions still answer after their transfer.
    let mut c = busy.pop().unwrap();
    c.read_exact(64 << 20);
    assert_eq!(c.request("done").text(), "done ACK\n");
}

#[test]
fn a_client_that_hangs_up_without_exit_frees_its_slot() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "1"]);
    let mut c = server.raw();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    // End of input is an exit: the server closes its side too.
    assert!(c.read_to_eof().is_empty());
    assert_eq!(server.raw().greeting, "OK 41 proto=1 name=Client02");
}

/// Niceness of each of the server's threads, by thread name.
fn thread_niceness(pid: u32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads");
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // pid (comm) state ppid ... ; field 19 is the niceness.
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            Some((name.to_string(), rest.split(' ').nth(16)?.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_accepting_thread_yields_the_cpu_to_admitted_sessions() {
    let share = Share::new();
    let server = ServerProcess::start(share.path(), &["--max-clients", "2"]);
    let mut client = server.raw();
    assert_eq!(client.request("ping").text(), "ping ACK\n");
    let threads = thread_niceness(server.pid());
    // The main thread accepts (and refuses); sessions run on the pool and writer threads.
    let main = threads.iter().find(|(name, _)| name == "file-server").expect("main thread");
    assert_eq!(main.1, 5, "accepting thread: {threads:?}");
    let sessions: Vec<_> = threads.iter().filter(|(name, _)| name != "file-server").collect();
    assert!(sessions.len() >= 3, "pool and writer threads: {threads:?}");
    assert!(sessions.iter().all(|(_, nice)| *nice == 0), "session threads: {threads:?}");
}
