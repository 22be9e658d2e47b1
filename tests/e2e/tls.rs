//! `--tls`: the server speaks TLS with a certificate that survives restarts,
//! `openssl s_client` (a client nobody here wrote) uses it, and file-client
//! pins the certificate on first use as ssh does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use file_share_e2e::{
    adduser, client_args as args, output_within, parse_messages, pseudo_random, pty_client_with, ready, run_client_env,
    Reply, ServerProcess, Share,
};

/// Runs `openssl s_client` against `addr`, types `input` (ending with
/// `exit`, so the server closes), and returns every message it read.
fn s_client(addr: &str, input: &str) -> Vec<Reply> {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client (apt-get install openssl)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = output_within(child, Duration::from_secs(30));
    parse_messages(&out.stdout)
}

/// The fingerprint of a PEM certificate, as `openssl x509` prints it.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().split_once('=').expect("Fingerprint=").1.to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn openssl_s_client_logs_in_lists_and_gets_and_the_fingerprint_is_openssls_own() {
    let share = Share::new();
    let data = pseudo_random(300_000, 7);
    share.add("data.bin", &data);
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_str().unwrap();
    let users = state.path().join("users");
    assert!(adduser(&users, "carol", "s3cret words", false).status.success());
    let users_arg = users.to_str().unwrap();
    let server = ServerProcess::start(share.path(), &["--tls", "--state-dir", state_arg, "--users", users_arg]);

    let input = "list\nlogin carol s3cret words\nlist\nget data.bin\nexit\n";
    let messages = s_client(&server.addr.to_string(), input);
    assert!(messages[0].header.starts_with("OK ") && messages[0].header.contains("proto="), "{messages:?}");
    assert!(messages[1].header.starts_with("ERR 401"), "{:?}", messages[1]);
    assert!(messages[2].header.ends_with(" user=carol rights=read"), "{:?}", messages[2]);
    assert_eq!(messages[2].text(), "logged in as carol (read only)\n");
    assert!(messages[3].text().contains("data.bin"), "{:?}", messages[3]);
    assert!(messages[4].header.starts_with(&format!("OK {} blake3=", data.len())), "{}", messages[4].header);
    assert!(messages[4].body == data, "the file arrived changed over TLS");
    assert!(messages[5].header.starts_with("OK"), "{:?}", messages[5]);

    let printed = server.fingerprint.clone().expect("fingerprint on the listening line");
    assert_eq!(printed, openssl_fingerprint(&state.path().join("cert.pem")));
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(state.path().join("key.pem")).unwrap().permissions().mode();
    assert_eq!(key_mode & 0o777, 0o600, "the key is for the server's eyes only");

    // The identity survives a restart.
    drop(server);
    let again = ServerProcess::start(share.path(), &["--tls", "--state-dir", state_arg, "--users", users_arg]);
    assert_eq!(again.fingerprint.as_deref(), Some(printed.as_str()));
}

#[test]
fn a_certificate_given_by_file_is_served_and_a_bad_one_refused_at_start() {
    let share = Share::new();
    share.add("a.txt", b"hello\n");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=files.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = ServerProcess::start(share.path(), &["--tls-cert", cert_arg, "--tls-key", key_arg]);
    assert_eq!(server.fingerprint, Some(openssl_fingerprint(&cert)));
    let messages = s_client(&server.addr.to_string(), "get a.txt\nexit\n");
    assert_eq!(messages[1].body, b"hello\n");

    // A key that is not one: a usage error naming the file, before listening.
    std::fs::write(&key, "not a key\n").unwrap();
    let out = Command::new(file_share_e2e::binary("file-server"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--tls-cert", cert_arg, "--tls-key", key_arg, "--repo"])
        .arg(share.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("k.pem") && stderr(&out).contains("private key"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "never said it was listening");
}

#[test]
fn the_client_pins_a_server_on_first_use_and_refuses_a_changed_certificate() {
    let share = Share::new();
    let data = pseudo_random(2_000_000, 3);
    share.add("data.bin", &data);
    let state = state_dir();
    let server = ServerProcess::start(share.path(), &["--tls", "--state-dir", path(&state)]);
    let fingerprint = server.fingerprint.clone().unwrap();
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = [("XDG_DATA_HOME", home.path())];
    let known = home.path().join("file-client/known_servers");

    // Batch mode, unknown server: refused, with what to check and how to go on.
    let out = run_client_env(dir.path(), &args(&addr, &["--tls", "-c", "list"]), &env);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains(&fingerprint) && stderr(&out).contains("--accept-new"), "{}", stderr(&out));
    assert!(!known.exists(), "nothing remembered without consent");

    // Pinned, wrong: refused naming both; right: served.
    let wrong = "AB:".repeat(31) + "AB";
    let out = run_client_env(dir.path(), &args(&addr, &["--tls", "--fingerprint", &wrong, "-c", "list"]), &env);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains(&wrong) && stderr(&out).contains(&fingerprint), "{}", stderr(&out));
    let lower = fingerprint.to_lowercase().replace(':', "");
    let out = run_client_env(dir.path(), &args(&addr, &["--tls", "--fingerprint", &lower, "-c", "list"]), &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("data.bin"));
    assert!(!known.exists(), "a pin is not remembered");

    // --accept-new remembers it; from then on plain --tls is enough.
    let out = run_client_env(dir.path(), &args(&addr, &["--tls", "--accept-new", "-c", "list"]), &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = std::fs::read_to_string(&known).unwrap();
    assert_eq!(line, format!("{addr} {fingerprint}\n"));
    let out = run_client_env(dir.path(), &args(&addr, &["--tls", "-c", "get data.bin"]), &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read(dir.path().join("data.bin")).unwrap() == data);

    // Another certificate at the same address: refused loudly, both named,
    // with the line to remove.
    let other_state = state_dir();
    let other = ServerProcess::start(share.path(), &["--tls", "--state-dir", path(&other_state)]);
    let other_fp = other.fingerprint.clone().unwrap();
    assert_ne!(other_fp, fingerprint);
    std::fs::write(&known, format!("# kept by file-client\n{} {fingerprint}\n", other.addr)).unwrap();
    let out =
        run_client_env(dir.path(), &args(&other.addr.to_string(), &["--tls", "--accept-new", "-c", "list"]), &env);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("CHANGED") && said.contains(&fingerprint) && said.contains(&other_fp), "{said}");
    assert!(said.contains("line 2") && said.contains(known.to_str().unwrap()), "{said}");
    assert!(stdout(&out).is_empty());
}

/// A fresh state folder, removed when dropped.
fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

#[test]
fn on_a_terminal_an_unknown_server_is_shown_and_remembered_once_accepted() {
    let share = Share::new();
    share.add("a.txt", b"hi\n");
    let state = state_dir();
    let server = ServerProcess::start(share.path(), &["--tls", "--state-dir", path(&state)]);
    let fingerprint = server.fingerprint.clone().unwrap();
    let addr = server.addr.to_string();
    let home = tempfile::tempdir().unwrap();

    let mut pty = pty_client_with(&addr, home.path(), home.path(), &["--tls"]);
    pty.exp_string(&fingerprint).unwrap();
    pty.exp_string("Trust it and remember it? [y/N]").unwrap();
    pty.send_line("n").unwrap();
    pty.exp_eof().unwrap();
    let known = home.path().join(".local/share/file-client/known_servers");
    assert!(!known.exists());

    let mut pty = pty_client_with(&addr, home.path(), home.path(), &["--tls"]);
    pty.exp_string("Trust it and remember it? [y/N]").unwrap();
    pty.send_line("y").unwrap();
    // (A refused handshake never became a session: this is the first.)
    ready(&mut pty, &format!("Client01@{addr}> "));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
    assert_eq!(std::fs::read_to_string(&known).unwrap(), format!("{addr} {fingerprint}\n"));

    // Known now: no question.
    let mut pty = pty_client_with(&addr, home.path(), home.path(), &["--tls"]);
    ready(&mut pty, &format!("Client02@{addr}> "));
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

#[test]
fn stalled_handshakes_never_make_the_server_full_and_refusals_arrive_over_tls() {
    let share = Share::new();
    let state = state_dir();
    let server = ServerProcess::start(
        share.path(),
        &["--tls", "--state-dir", path(&state), "--max-clients", "1", "--line-timeout", "2"],
    );
    let addr = server.addr.to_string();
    // Half a ClientHello, then nothing, three times from 127.0.0.3: they
    // hold that address's places among the connections being set up...
    let half_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    let mut stalled: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = file_share_e2e::tcp_from("127.0.0.3", server.addr);
            s.write_all(&half_hello).unwrap();
            s
        })
        .collect();
    // ...a fourth is closed at once, with no handshake to spend on it...
    let mut fourth = file_share_e2e::tcp_from("127.0.0.3", server.addr);
    let _ = fourth.write_all(&half_hello);
    fourth.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut nothing = Vec::new();
    let closed = fourth.read_to_end(&mut nothing);
    // (At most a TLS alert, record type 0x15: no ServerHello, no certificate.)
    let no_handshake = nothing.is_empty() || (nothing[0] == 0x15 && nothing.len() < 16);
    assert!(closed.is_ok() && no_handshake, "closed at once, without a handshake: {closed:?} {nothing:?}");
    // ...and the only session place is still free for someone else.
    let mut holder = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut greeting).unwrap();
    assert!(greeting.contains("proto="), "{greeting}");
    // With it taken, the next is told so, over TLS.
    let refused = s_client(&addr, "exit\n");
    assert!(refused[0].header.starts_with("ERR 503 Server is full"), "{refused:?}");
    drop(holder.stdin.take());
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The stalled ones are dropped once their handshake time is over.
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    assert!(server.log().contains("TLS handshake failed"), "{}", server.log());
    let served = s_client(&addr, "exit\n");
    assert!(served[0].header.contains("proto="), "{served:?}");
}

#[test]
fn uploads_and_downloads_over_tls_arrive_whole() {
    let share = Share::new();
    let state = state_dir();
    let server = ServerProcess::start(share.path(), &["--tls", "--state-dir", path(&state), "--allow-uploads"]);
    let fingerprint = server.fingerprint.clone().unwrap();
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(9_000_000, 11);
    std::fs::write(dir.path().join("up.bin"), &data).unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = [("XDG_DATA_HOME", home.path())];
    let flags = ["--tls", "--fingerprint", &fingerprint];
    let put = run_client_env(dir.path(), &args(&addr, &[&flags[..], &["-c", "put up.bin"]].concat()), &env);
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(std::fs::read(share.path().join("up.bin")).unwrap() == data);
    let down = tempfile::tempdir().unwrap();
    let get = run_client_env(down.path(), &args(&addr, &[&flags[..], &["-c", "get up.bin"]].concat()), &env);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(std::fs::read(down.path().join("up.bin")).unwrap() == data);
}

#[test]
fn a_certificate_from_an_authority_the_system_trusts_is_believed_without_asking() {
    let share = Share::new();
    share.add("a.txt", b"signed\n");
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    // A certificate authority, and a server certificate it signs for 127.0.0.1.
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=Test CA", "-keyout", &p("ca.key"), "-out", &p("ca.pem")],
        ]
        .concat(),
    );
    openssl(
        &[&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", &p("srv.key"), "-out", &p("srv.csr")]].concat(),
    );
    std::fs::write(dir.path().join("ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("srv.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("ext"),
        "-out",
        &p("srv.pem"),
    ]);
    let server = ServerProcess::start(share.path(), &["--tls-cert", &p("srv.pem"), "--tls-key", &p("srv.key")]);
    let addr = server.addr.to_string();
    let home = tempfile::tempdir().unwrap();
    let known = home.path().join("file-client/known_servers");

    // The system's roots (SSL_CERT_FILE, as OpenSSL reads it) hold the authority: no question.
    let ca = dir.path().join("ca.pem");
    let trusted = run_client_env(
        home.path(),
        &args(&addr, &["--tls", "-c", "get a.txt"]),
        &[("XDG_DATA_HOME", home.path()), ("SSL_CERT_FILE", ca.as_path())],
    );
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));
    assert_eq!(std::fs::read(home.path().join("a.txt")).unwrap(), b"signed\n");
    assert!(!known.exists(), "nothing to remember: the authority vouches for it");

    // Without that root, it is one more unknown server.
    let empty = dir.path().join("no-roots.pem");
    std::fs::write(&empty, "").unwrap();
    let unknown = run_client_env(
        home.path(),
        &args(&addr, &["--tls", "-c", "list"]),
        &[("XDG_DATA_HOME", home.path()), ("SSL_CERT_FILE", empty.as_path())],
    );
    assert_eq!(unknown.status.code(), Some(5), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("is not known"), "{}", stderr(&unknown));
}
