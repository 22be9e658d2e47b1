//! `--users`: accounts with read or write rights, logins that cannot be
//! guessed quickly, and visitors who must log in (or, with `--anonymous
//! read`, may only read).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use file_share_e2e::{adduser, binary, client_args as args, ServerProcess, Share};

/// A users file with alice (write, "alice pw") and bob (read, "bob pw").
fn users() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    assert!(adduser(&file, "alice", "alice pw", true).status.success());
    assert!(adduser(&file, "bob", "bob pw", false).status.success());
    dir
}

fn users_arg(dir: &tempfile::TempDir) -> String {
    dir.path().join("users").to_str().unwrap().to_string()
}

/// `file-client` logging in with `password` (FILE_CLIENT_PASSWORD).
fn client_as(dir: &Path, addr: &str, password: &str, rest: &[&str]) -> Output {
    Command::new(binary("file-client"))
        .args(args(addr, rest))
        .current_dir(dir)
        .env("FILE_CLIENT_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn adduser_stores_argon2_hashes_and_updates_in_place() {
    let dir = users();
    let file = dir.path().join("users");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert_eq!(stored.lines().count(), 2);
    assert!(stored.starts_with("alice:write:$argon2id$") && stored.contains("\nbob:read:$argon2id$"), "{stored}");
    assert!(!stored.contains("alice pw") && !stored.contains("bob pw"), "passwords never in clear");
    let out = adduser(&file, "bob", "new bob", true);
    assert!(text(&out.stdout).contains("updated bob (read and write)"), "{}", text(&out.stdout));
    let stored = std::fs::read_to_string(&file).unwrap();
    assert_eq!(stored.lines().count(), 2);
    assert!(stored.contains("\nbob:write:"));
    let out = adduser(&file, "no spaces", "pw", false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn users_without_tls_refuse_to_start_and_name_the_override() {
    let share = Share::new();
    let dir = users();
    let out = Command::new(binary("file-server"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--users", &users_arg(&dir), "--repo"])
        .arg(share.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--insecure-plaintext-login"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty(), "never listened");
}

#[test]
fn accounts_log_in_and_keep_to_their_rights_over_tls() {
    let share = Share::new();
    share.add("a.txt", b"for readers\n");
    let dir = users();
    let state = tempfile::tempdir().unwrap();
    // No penalties (a delay of 0): the wrong password and the unknown name
    // below come from one address and are compared as they are answered.
    let server = ServerProcess::start(
        share.path(),
        &[
            "--tls",
            "--state-dir",
            state.path().to_str().unwrap(),
            "--users",
            &users_arg(&dir),
            "--allow-uploads",
            "--login-delay",
            "0",
        ],
    );
    let addr = server.addr.to_string();
    let fp = server.fingerprint.clone().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("up.txt"), b"from alice\n").unwrap();
    let tls = ["--tls", "--fingerprint", fp.as_str()];
    fn join<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
        [a, b].concat()
    }
    let with = |rest: &[&'static str]| join(&tls, rest);

    let alice =
        client_as(work.path(), &format!("alice@{addr}"), "alice pw", &with(&["-c", "put up.txt", "-c", "status"]));
    assert_eq!(alice.status.code(), Some(0), "{}", text(&alice.stderr));
    assert_eq!(std::fs::read(share.path().join("up.txt")).unwrap(), b"from alice\n");
    assert!(
        text(&alice.stdout).contains("alice (you)"),
        "the account's name is the session's: {}",
        text(&alice.stdout)
    );

    // Read-only: reads, may not write, nothing stored.
    std::fs::write(work.path().join("bob.txt"), b"from bob\n").unwrap();
    let bob =
        client_as(work.path(), &format!("bob@{addr}"), "bob pw", &with(&["-c", "get -f a.txt", "-c", "put bob.txt"]));
    assert_eq!(bob.status.code(), Some(4), "{}", text(&bob.stderr));
    assert!(text(&bob.stderr).contains("the account 'bob' may only read"), "{}", text(&bob.stderr));
    assert!(!share.path().join("bob.txt").exists());
    assert_eq!(std::fs::read(work.path().join("a.txt")).unwrap(), b"for readers\n");

    // Wrong password and unknown account: the same refusal, status 5.
    let wrong = client_as(work.path(), &format!("alice@{addr}"), "guess", &with(&["-c", "list"]));
    let unknown = client_as(work.path(), &format!("mallory@{addr}"), "guess", &with(&["-c", "list"]));
    assert_eq!((wrong.status.code(), unknown.status.code()), (Some(5), Some(5)));
    assert_eq!(
        text(&wrong.stderr).replace("alice", "NAME"),
        text(&unknown.stderr).replace("mallory", "NAME"),
        "an unknown account must look like a wrong password"
    );
    assert!(text(&wrong.stderr).contains("wrong name or password"));
    assert!(wrong.stdout.is_empty());

    // No account: nothing but help and exit.
    let visitor = client_as(work.path(), &addr, "", &with(&["-c", "list"]));
    assert_eq!(visitor.status.code(), Some(5), "{}", text(&visitor.stderr));
    assert!(text(&visitor.stderr).contains("log in first"));

    let log = server.log();
    assert!(log.contains("logged in (read and write)") && log.contains("user=alice"), "{log}");
    assert!(log.contains("login failed") && log.contains("user=mallory"), "{log}");
    assert!(log.contains("stored 'up.txt'") && log.contains("user=alice"), "writes are logged with the account");
}

/// A plain-text server with accounts, for typing the protocol by hand.
fn plaintext_server(share: &Share, users: &tempfile::TempDir, extra: &[&str]) -> ServerProcess {
    let mut flags = vec!["--users".to_string(), users_arg(users), "--insecure-plaintext-login".into()];
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    ServerProcess::start(share.path(), &flags)
}

#[test]
fn a_connection_that_does_not_log_in_in_time_is_closed_and_frees_its_slot() {
    let share = Share::new();
    let dir = users();
    let server = plaintext_server(&share, &dir, &["--login-timeout", "1", "--max-clients", "1"]);
    let mut idle = server.raw();
    let started = Instant::now();
    // Commands do not count as logging in.
    assert!(idle.request("status").header.starts_with("ERR 401 log in first"));
    assert_eq!(idle.read_reply().header, "ERR 401 not logged in within 1s; closing");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut idle.stream, &mut rest);
    assert!(rest.is_empty(), "closed after saying so: {}", text(&rest));
    // Once closed, its slot is free.
    let mut next = server.raw();
    assert!(next.greeting.starts_with("OK "), "the slot is free again: {}", next.greeting);
    assert!(next.request("login bob bob pw").header.starts_with("OK "));
}

#[test]
fn three_failed_logins_close_the_connection() {
    let share = Share::new();
    let dir = users();
    let server = plaintext_server(&share, &dir, &["--login-delay", "0"]);
    let mut raw = server.raw();
    assert_eq!(raw.request("login alice nope").header, "ERR 401 wrong name or password");
    assert_eq!(raw.request("login nobody nope").header, "ERR 401 wrong name or password");
    assert_eq!(
        raw.request("login alice nope again").header,
        "ERR 401 wrong name or password; 3 failed logins, closing"
    );
    raw.send_line("help");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut raw.stream, &mut rest);
    assert!(rest.is_empty(), "closed: {}", text(&rest));
}

/// How one login attempt was answered.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Answer {
    In,
    Wrong,
    /// Refused at once: penalised, or a login of the same source or account under way.
    Later,
    /// Not let in to log in at all: the startup places were taken.
    Busy,
}

/// One login on a new connection from `from`.
fn login_from(from: &str, server: &ServerProcess, user: &str, password: &str) -> Answer {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = file_share_e2e::tcp_from(from, server.addr);
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // The next header line, its body (of an OK or EVT) read and dropped.
    let mut next = || {
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let mut parts = line.split_whitespace();
        if let (Some("OK" | "EVT"), Some(len)) = (parts.next(), parts.next().and_then(|l| l.parse::<u64>().ok())) {
            std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink()).unwrap();
        }
        line
    };
    let greeting = next();
    if !greeting.starts_with("OK ") {
        // Not even a place to log in: the startup places (this address's, or all) are taken.
        let refused = greeting.is_empty() || greeting.starts_with("ERR 503 too many connections are logging in");
        assert!(refused, "{greeting}");
        return Answer::Busy;
    }
    stream.write_all(format!("login {user} {password}\n").as_bytes()).unwrap();
    let header = loop {
        let line = next();
        if !line.starts_with("EVT ") {
            break line;
        }
    };
    match header.split_whitespace().nth(1) {
        _ if header.starts_with("OK ") => Answer::In,
        Some("401") => Answer::Wrong,
        Some("429") => {
            assert!(header.contains("try again in"), "{header}");
            Answer::Later
        }
        _ => panic!("unexpected answer to a login: {header:?}"),
    }
}

/// `workers` threads, each from one of `sources` (in turn), logging in as
/// `next(worker, attempt)` says on fresh connections until `length` has
/// passed; every answer.
fn attack(
    server: &ServerProcess,
    sources: &[String],
    workers: usize,
    length: Duration,
    next: impl Fn(usize, usize) -> (&'static str, String) + Sync,
) -> Vec<Answer> {
    let until = Instant::now() + length;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (next, from) = (&next, &sources[w % sources.len()]);
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    for attempt in 0.. {
                        if Instant::now() >= until {
                            break;
                        }
                        let (user, password) = next(w, attempt);
                        answers.push(login_from(from, server, user, &password));
                    }
                    answers
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// Wrong passwords checked in `answers`.
fn checked(answers: &[Answer]) -> usize {
    answers.iter().filter(|a| **a == Answer::Wrong).count()
}

/// Checked guesses the penalties let through in `length` for one source or
/// account: each failure's answer takes `base`, then a penalty of `base`,
/// 2 `base`, 4 `base` ... follows before the next may be checked.
fn most_guesses(base: Duration, length: Duration) -> usize {
    let (mut at, mut n) = (Duration::ZERO, 0u32);
    while at < length {
        n += 1;
        at += base + base * 2u32.pow((n - 1).min(6));
    }
    n as usize
}

#[test]
fn parallel_guessing_and_own_logins_in_between_get_few_checks_while_the_owner_gets_in() {
    let share = Share::new();
    let dir = users();
    let server = plaintext_server(&share, &dir, &["--login-delay", "0.2", "--max-clients", "256"]);
    // alice has used the share from 127.0.0.2 before.
    assert_eq!(login_from("127.0.0.2", &server, "alice", "alice pw"), Answer::In);

    // 16 workers on 127.0.0.3 guess alice's password; one of them logs in to
    // its own account (bob) between guesses, which once cleared the penalty.
    let length = Duration::from_secs(4);
    let answers = std::thread::scope(|scope| {
        let attacker = scope.spawn(|| {
            attack(&server, &["127.0.0.3".into()], 16, length, |w, i| {
                if w == 0 && i % 2 == 1 {
                    ("bob", "bob pw".into())
                } else {
                    ("alice", format!("guess-{w}-{i}"))
                }
            })
        });
        let mut owner = Vec::new();
        while !attacker.is_finished() {
            owner.push(login_from("127.0.0.2", &server, "alice", "alice pw"));
        }
        assert!(owner.iter().all(|a| *a == Answer::In), "the owner was held back: {owner:?}");
        assert!(owner.len() >= 3, "{owner:?}");
        attacker.join().unwrap()
    });
    let bound = most_guesses(Duration::from_millis(200), length);
    assert!(checked(&answers) <= bound, "{} guesses checked in {length:?}, at most {bound} allowed", checked(&answers));
    assert!(answers.contains(&Answer::Later), "parallel attempts are refused at once");
    // Someone else, on an account nobody attacks, gets in at once too.
    assert_eq!(login_from("127.0.0.4", &server, "bob", "bob pw"), Answer::In);
}

#[test]
fn guessing_from_many_addresses_slows_the_account_for_strangers_not_its_owner() {
    let share = Share::new();
    let dir = users();
    let server = plaintext_server(&share, &dir, &["--login-delay", "0.2", "--max-clients", "256"]);
    assert_eq!(login_from("127.0.0.2", &server, "alice", "alice pw"), Answer::In);
    let sources: Vec<String> = (1..=40).map(|i| format!("127.0.1.{i}")).collect();
    let length = Duration::from_secs(3);
    let answers = std::thread::scope(|scope| {
        let attacker =
            scope.spawn(|| attack(&server, &sources, 40, length, |w, i| ("alice", format!("guess-{w}-{i}"))));
        // Her own address is not held back, not even for a place to log in.
        let mut owner = Vec::new();
        while !attacker.is_finished() {
            owner.push(login_from("127.0.0.2", &server, "alice", "alice pw"));
        }
        assert!(owner.iter().all(|a| *a == Answer::In), "the owner was held back: {owner:?}");
        attacker.join().unwrap()
    });
    let bound = most_guesses(Duration::from_millis(200), length);
    assert!(
        checked(&answers) <= bound,
        "{} guesses on alice checked from 40 addresses in {length:?}, at most {bound} allowed",
        checked(&answers)
    );
    assert!(answers.contains(&Answer::Later), "strangers were told to come back later");
    // Other accounts are not slowed (once a place to log in is free).
    file_share_e2e::eventually("bob logs in from a new address", || {
        (login_from("127.0.9.9", &server, "bob", "bob pw") == Answer::In).then_some(())
    });
}

#[test]
fn anonymous_visitors_may_read_but_not_write_nor_take_an_accounts_name() {
    let share = Share::new();
    share.add("a.txt", b"public\n");
    let dir = users();
    let server = plaintext_server(&share, &dir, &["--anonymous", "read", "--allow-uploads", "--login-timeout", "1"]);
    let mut visitor = server.raw();
    assert_eq!(visitor.request("get a.txt").body, b"public\n");
    assert!(visitor.request("mkdir x").header.starts_with("ERR 401 log in with an account that may write"));
    assert!(visitor.request("name alice").header.starts_with("ERR 403 'alice' is an account's name"));
    // No login window for visitors who may read.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(visitor.request("list").header.starts_with("OK "));
    assert!(visitor.request("login alice alice pw").header.starts_with("OK "));
    assert!(visitor.request("mkdir x").header.starts_with("OK "));
    assert!(share.path().join("x").is_dir());
}

#[test]
fn the_password_is_asked_once_on_a_terminal_and_a_reconnect_logs_in_again_without_asking() {
    let share = Share::new();
    share.add("hello.txt", b"hello\n");
    let dir = users();
    let state = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        share.path(),
        &["--tls", "--state-dir", state.path().to_str().unwrap(), "--users", &users_arg(&dir), "--idle-timeout", "1"],
    );
    let fp = server.fingerprint.clone().unwrap();
    let home = tempfile::tempdir().unwrap();
    let target = format!("alice@{}", server.addr);
    let mut pty = file_share_e2e::pty_client_with(&target, home.path(), home.path(), &["--tls", "--fingerprint", &fp]);
    pty.exp_string(&format!("password for {target}: ")).unwrap();
    pty.send_line("alice pw").unwrap();
    let prompt = format!("alice@{}> ", server.addr);
    file_share_e2e::ready(&mut pty, &prompt);
    pty.exp_string("connection closed: server closed the connection; the next command reconnects").unwrap();
    pty.send_line("get hello.txt").unwrap();
    pty.exp_string(&format!("reconnected to {} as alice", server.addr)).unwrap();
    pty.exp_string("got 'hello.txt' (6 bytes").unwrap();
    file_share_e2e::ready(&mut pty, &prompt);
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
    assert_eq!(server.log().matches("logged in (read and write)").count(), 2, "{}", server.log());
}

#[test]
fn a_users_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let share = Share::new();
    let dir = users();
    let file = dir.path().join("users");
    let quiet = plaintext_server(&share, &dir, &[]);
    assert!(!quiet.log().contains("chmod 600"), "0600, as adduser makes it: {}", quiet.log());
    drop(quiet);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = plaintext_server(&share, &dir, &[]);
    let log = server.log();
    assert!(log.contains("can be read by others (mode 644)") && log.contains("chmod 600"), "{log}");
}

#[test]
fn connections_not_logged_in_are_listed_as_logging_in_and_not_counted() {
    let share = Share::new();
    let dir = users();
    let server = plaintext_server(&share, &dir, &["--max-clients", "1", "--login-delay", "0"]);
    // Someone connected who has not logged in: no session's place yet...
    let _waiting = file_share_e2e::RawClient::connect_from("127.0.0.3", server.addr);
    // ...so alice gets the only one, and status says so.
    let mut alice = server.raw();
    assert!(alice.request("login alice alice pw").header.starts_with("OK "));
    let status = alice.request("status").text();
    assert!(status.contains("clients 1/1"), "{status}");
    let waiting = status.lines().find(|l| l.contains("127.0.0.3")).unwrap_or_else(|| panic!("{status}"));
    assert!(waiting.contains("logging in"), "{status}");
}

#[test]
fn a_wrong_password_on_a_terminal_is_asked_again_as_ssh_does() {
    let share = Share::new();
    let dir = users();
    let state = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        share.path(),
        &["--tls", "--state-dir", state.path().to_str().unwrap(), "--users", &users_arg(&dir)],
    );
    let fp = server.fingerprint.clone().unwrap();
    let home = tempfile::tempdir().unwrap();
    let target = format!("alice@{}", server.addr);
    let mut pty = file_share_e2e::pty_client_with(&target, home.path(), home.path(), &["--tls", "--fingerprint", &fp]);
    pty.exp_string(&format!("password for {target}: ")).unwrap();
    pty.send_line("not it").unwrap();
    pty.exp_string("Permission denied, please try again.").unwrap();
    pty.exp_string(&format!("password for {target}: ")).unwrap();
    pty.send_line("alice pw").unwrap();
    file_share_e2e::ready(&mut pty, &format!("alice@{}> ", server.addr));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
    let log = server.log();
    assert_eq!(
        (log.matches("login failed").count(), log.matches("logged in (read and write)").count()),
        (1, 1),
        "{log}"
    );
}
