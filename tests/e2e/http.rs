//! `--http`: the share over HTTP for clients nobody here wrote, driven by
//! the real `curl` and `wget` binaries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use file_share_e2e::{adduser, pseudo_random, ServerProcess, Share};

/// `curl -s ARGS...` (installed by .ci/run when missing).
fn curl(args: &[&str]) -> Output {
    Command::new("curl").arg("-s").args(args).output().expect("curl (apt-get install curl)")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The web side's base URL, from stdout's `http on` line.
fn web(server: &ServerProcess, scheme: &str) -> String {
    format!("{scheme}://127.0.0.1:{}", server.http_port.expect("http on line"))
}

/// Status code and headers (lower-cased names) of a request made with `args`.
fn head_of(args: &[&str]) -> (u16, String) {
    let out = curl(&[&["-D", "-", "-o", "/dev/null"][..], args].concat());
    let all = text(&out);
    // The final response's head (after any `100 Continue`).
    let headers = all.rfind("HTTP/").map_or(all.as_str(), |i| &all[i..]).to_string();
    let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, headers.to_ascii_lowercase())
}

#[test]
fn folder_pages_and_downloads_carry_what_clients_rely_on() {
    let share = Share::new();
    let data = pseudo_random(100_000, 5);
    share.add("data.bin", &data);
    share.add("docs/read me.txt", b"hello\n");
    share.add("<b>&amp.txt", b"x");
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&server, "http");

    let page = text(&curl(&[&format!("{base}/")]));
    assert!(page.contains("href=\"/docs/\"") && page.contains("href=\"/data.bin\""), "{page}");
    assert!(page.contains("&lt;b&gt;&amp;amp.txt") && !page.contains("<b>&amp.txt"), "names are escaped: {page}");
    assert!(page.contains("href=\"/%3Cb%3E%26amp.txt\""), "and encoded in links: {page}");
    let sub = text(&curl(&[&format!("{base}/docs/")]));
    assert!(sub.contains("href=\"/docs/read%20me.txt\"") && sub.contains("href=\"../\""), "{sub}");
    let (status, headers) = head_of(&[&format!("{base}/docs")]);
    assert_eq!(status, 301);
    assert!(headers.contains("location: /docs/"), "{headers}");

    // The whole file, then HEAD: length, type, validators.
    let url = format!("{base}/data.bin");
    assert!(curl(&[&url]).stdout == data);
    let (status, headers) = head_of(&["-I", &url]);
    assert_eq!(status, 200);
    let digest = blake3::hash(&data).to_hex().to_string();
    assert!(headers.contains("content-length: 100000"), "{headers}");
    assert!(headers.contains(&format!("etag: \"{digest}\"")), "the ETag is the BLAKE3: {headers}");
    assert!(headers.contains("last-modified: ") && headers.contains("accept-ranges: bytes"), "{headers}");
    assert!(head_of(&["-I", &format!("{base}/docs/read%20me.txt")]).1.contains("content-type: text/plain"));

    // Ranges: first byte, middle, suffix, past the end.
    assert_eq!(curl(&["-r", "0-0", &url]).stdout, &data[..1]);
    assert_eq!(curl(&["-r", "1000-1999", &url]).stdout, &data[1000..2000]);
    assert_eq!(curl(&["-r", "-10", &url]).stdout, &data[data.len() - 10..]);
    let (status, headers) = head_of(&["-r", "1000-1999", &url]);
    assert_eq!(status, 206);
    assert!(headers.contains("content-range: bytes 1000-1999/100000"), "{headers}");
    let (status, headers) = head_of(&["-r", "100000-", &url]);
    assert_eq!(status, 416);
    assert!(headers.contains("content-range: bytes */100000"), "{headers}");

    // Conditions: the same ETag is 304; an If-Range of another file gets it whole.
    let (status, _) = head_of(&["-H", &format!("If-None-Match: \"{digest}\""), &url]);
    assert_eq!(status, 304);
    let stale = curl(&["-r", "0-9", "-H", "If-Range: \"0000\"", &url]);
    assert!(stale.stdout == data, "a changed file is sent whole");

    // Several requests on one connection.
    let both = curl(&["-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n", &url, &url]);
    assert_eq!(text(&both), "1\n0\n", "the second request reuses the connection");
}

#[test]
fn wget_c_resumes_a_cut_download_byte_identical() {
    let share = Share::new();
    let data = pseudo_random(3_000_000, 9);
    share.add("big.bin", &data);
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), &data[..1_234_567]).unwrap();
    let out = Command::new("wget")
        .args(["-q", "-c", &format!("{}/big.bin", web(&server, "http"))])
        .current_dir(dir.path())
        .output()
        .expect("wget (apt-get install wget)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(dir.path().join("big.bin")).unwrap() == data);
    assert!(server.log().contains("206"), "it asked for the rest only: {}", server.log());
}

#[test]
fn every_traversal_form_is_refused() {
    let (share, outside) = Share::with_traps();
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&server, "http");
    let escape = outside.path().join("secret.txt");
    let absolute = format!("/{}", escape.display());
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/ok.txt/..%2f..%2fetc%2fpasswd",
        "/..%5csecret.txt",
        "/.hidden",
        "/%2ehidden",
        "/link",
        "/dirlink/secret.txt",
        "/dirlink/",
        absolute.as_str(),
        "//etc/passwd",
        "/ok.txt%00.png",
    ] {
        let out = curl(&["--path-as-is", "-w", "\n%{http_code}", &format!("{base}{path}")]);
        let body = text(&out);
        let code: u16 = body.rsplit('\n').next().unwrap().parse().unwrap();
        assert!(matches!(code, 400 | 403 | 404), "{path}: {code}");
        assert!(!body.contains("SECRET") && !body.contains("root:"), "{path} leaked: {body}");
    }
    assert!(text(&curl(&[&format!("{base}/ok.txt")])) == "fine\n");
}

#[test]
fn accounts_log_in_with_basic_over_https() {
    let share = Share::new();
    share.add("a.txt", b"members only\n");
    let state = tempfile::tempdir().unwrap();
    let users = state.path().join("users");
    assert!(adduser(&users, "alice", "alice pw", false).status.success());
    let server = ServerProcess::start(
        share.path(),
        // No penalties: the failures below come from one address, one after another.
        &[
            "--tls",
            "--state-dir",
            state.path().to_str().unwrap(),
            "--users",
            users.to_str().unwrap(),
            "--http",
            "0",
            "--login-delay",
            "0",
        ],
    );
    let url = format!("{}/a.txt", web(&server, "https"));
    let (status, headers) = head_of(&["-k", &url]);
    assert_eq!(status, 401);
    assert!(headers.contains("www-authenticate: basic realm=\"file-server\""), "{headers}");
    assert_eq!(head_of(&["-k", "-u", "alice:wrong", &url]).0, 401);
    assert_eq!(head_of(&["-k", "-u", "mallory:alice pw", &url]).0, 401);
    let ok = curl(&["-k", "-u", "alice:alice pw", &url]);
    assert_eq!(ok.stdout, b"members only\n");
    // Plain HTTP to an HTTPS port does not get the file.
    let plain = curl(&["-u", "alice:alice pw", &url.replace("https://", "http://")]);
    assert!(!text(&plain).contains("members only"));
    let log = server.log();
    assert!(log.contains("login failed") && log.contains("user=mallory"), "{log}");
    assert!(log.contains("logged in (read only)") && log.contains("user=alice"), "{log}");
}

#[test]
fn slow_headers_and_idle_connections_do_not_keep_visitors_out_beyond_the_bound() {
    let share = Share::new();
    share.add("a.txt", b"hi\n");
    let server =
        ServerProcess::start(share.path(), &["--http", "0", "--http-max-connections", "2", "--line-timeout", "1"]);
    let addr = format!("127.0.0.1:{}", server.http_port.unwrap());
    // Two slowloris peers: a request begun, never ended.
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            s
        })
        .collect();
    // While they hold both places, a visitor is told at once.
    let url = format!("http://{addr}/a.txt");
    file_share_e2e::eventually("both places taken", || (head_of(&[&url]).0 == 503).then_some(()));
    // Their heads are cut at the time limit: 408, and the places are free.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    assert_eq!(text(&curl(&[&url])), "hi\n");
}

#[test]
fn folders_download_as_tar_and_zip_equal_to_the_tree() {
    let share = Share::new();
    share.add("proj/read me.txt", b"hello\n");
    share.add("proj/été/données.bin", &pseudo_random(700_000, 1));
    share.add("proj/deep/a/b/c.txt", b"deep\n");
    std::fs::create_dir_all(share.path().join("proj/empty")).unwrap();
    share.add("proj/.hidden", b"not in the archive");
    // A link back up the tree must not make the walk loop.
    std::os::unix::fs::symlink("..", share.path().join("proj/deep/up")).unwrap();
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&server, "http");
    let expected = share.path().join("proj");

    let tar_dir = tempfile::tempdir().unwrap();
    let tar = Command::new("sh")
        .arg("-c")
        .arg(format!("curl -sf '{base}/proj/?tar' | tar -x -C '{}'", tar_dir.path().display()))
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    same_tree(&expected, &tar_dir.path().join("proj"));

    let zip_dir = tempfile::tempdir().unwrap();
    let zip_file = zip_dir.path().join("proj.zip");
    assert!(curl(&["-f", "-o", zip_file.to_str().unwrap(), &format!("{base}/proj/?zip")]).status.success());
    let test = Command::new("unzip").arg("-t").arg(&zip_file).output().expect("unzip (apt-get install unzip)");
    assert!(test.status.success(), "{}", text(&test));
    let unpacked = Command::new("unzip").arg("-q").arg(&zip_file).arg("-d").arg(zip_dir.path()).output().unwrap();
    assert!(unpacked.status.success(), "{}", String::from_utf8_lossy(&unpacked.stderr));
    same_tree(&expected, &zip_dir.path().join("proj"));
}

/// `got` holds what `want` holds (hidden names and symbolic links to
/// folders aside: archives leave them out), byte for byte, empty folders too.
fn same_tree(want: &std::path::Path, got: &std::path::Path) {
    let out =
        Command::new("diff").args(["-r", "--exclude=.hidden", "--exclude=up"]).arg(want).arg(got).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(got.join("empty").is_dir(), "empty folders are in the archive");
    assert!(!got.join(".hidden").exists() && !got.join("deep/up").exists());
}

#[test]
fn put_uploads_atomically_through_the_same_rules_as_put() {
    let share = Share::new();
    share.add("old.txt", b"old\n");
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(2_500_000, 3);
    let local = dir.path().join("up.bin");
    std::fs::write(&local, &data).unwrap();
    let local = local.to_str().unwrap();

    let read_only = ServerProcess::start(share.path(), &["--http", "0"]);
    let (status, _) = head_of(&["-T", local, &format!("{}/up.bin", web(&read_only, "http"))]);
    assert_eq!(status, 403, "a read-only share takes no upload");
    drop(read_only);

    let server = ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads", "--max-upload-size", "3M"]);
    let base = web(&server, "http");
    assert_eq!(head_of(&["-T", local, &format!("{base}/up.bin")]).0, 201);
    assert!(std::fs::read(share.path().join("up.bin")).unwrap() == data);
    // Replacing: atomically, unless If-None-Match: * says not to.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"new\n").unwrap();
    let small = small.to_str().unwrap();
    assert_eq!(head_of(&["-T", small, "-H", "If-None-Match: *", &format!("{base}/old.txt")]).0, 412);
    assert_eq!(std::fs::read(share.path().join("old.txt")).unwrap(), b"old\n");
    // A client that sends its whole body before it reads (a browser's
    // upload, a simple script) still reads the refusal: the connection is
    // read away before it closes, not reset under the answer.
    for _ in 0..3 {
        let mut conn = TcpStream::connect(format!("127.0.0.1:{}", server.http_port.unwrap())).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = pseudo_random(2_900_000, 5);
        let head = format!(
            "PUT /old.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: *\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&body).expect("the body is taken, not reset");
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 412"), "{answer}");
    }
    assert_eq!(head_of(&["-T", small, &format!("{base}/old.txt")]).0, 201);
    assert_eq!(std::fs::read(share.path().join("old.txt")).unwrap(), b"new\n");
    // Over the size limit, hidden, or outside: refused, nothing stored.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pseudo_random(4_000_000, 4)).unwrap();
    assert_eq!(head_of(&["-T", big.to_str().unwrap(), &format!("{base}/big.bin")]).0, 413);
    assert_eq!(head_of(&["-T", small, &format!("{base}/.profile")]).0, 403);
    assert_eq!(head_of(&["--path-as-is", "-T", small, &format!("{base}/../x.txt")]).0, 403);
    assert!(!share.path().join("big.bin").exists() && !share.path().join(".profile").exists());

    // A body cut short leaves nothing behind, not even in .uploads.
    let mut conn = TcpStream::connect(format!("127.0.0.1:{}", server.http_port.unwrap())).unwrap();
    conn.write_all(b"PUT /cut.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n").unwrap();
    conn.write_all(&[7u8; 1000]).unwrap();
    drop(conn);
    file_share_e2e::eventually("the cut upload is cleaned up", || {
        let leftover = std::fs::read_dir(share.path().join(".uploads")).unwrap().count();
        (leftover == 0 && server.log().contains("abandoned")).then_some(())
    });
    assert!(!share.path().join("cut.bin").exists());
}

#[test]
fn the_pages_changes_mkdir_move_and_delete_run_the_same_commands() {
    let share = Share::new();
    share.add("a.txt", b"a\n");
    share.add("b.txt", b"b\n");
    share.add("old/x.txt", b"x\n");
    let read_only = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&read_only, "http");
    assert_eq!(head_of(&["-X", "DELETE", &format!("{base}/a.txt")]).0, 403);
    assert!(!text(&curl(&[&format!("{base}/")])).contains("/.manage.js"), "no controls on a read-only share");
    drop(read_only);

    let server = ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads"]);
    let base = web(&server, "http");
    assert!(text(&curl(&[&format!("{base}/")])).contains("/.manage.js"));
    assert_eq!(head_of(&["-X", "MKCOL", &format!("{base}/new%20folder/")]).0, 201);
    assert!(share.path().join("new folder").is_dir());
    let to = |path: &str| format!("Destination: {base}{path}");
    assert_eq!(head_of(&["-X", "MOVE", "-H", &to("/new%20folder/a.txt"), &format!("{base}/a.txt")]).0, 201);
    assert_eq!(std::fs::read(share.path().join("new folder/a.txt")).unwrap(), b"a\n");
    // Onto an existing file only with Overwrite: T, WebDAV's default (the page sends F).
    let keep = ["-X", "MOVE", "-H", "Overwrite: F", "-H", &to("/new%20folder/a.txt"), &format!("{base}/b.txt")];
    assert_eq!(head_of(&keep).0, 412);
    assert_eq!(head_of(&["-X", "MOVE", "-H", &to("/new%20folder/a.txt"), &format!("{base}/b.txt")]).0, 204);
    assert_eq!(std::fs::read(share.path().join("new folder/a.txt")).unwrap(), b"b\n");
    // Out of the share: refused.
    assert_eq!(head_of(&["-X", "MOVE", "-H", &to("/../escaped.txt"), &format!("{base}/new%20folder/a.txt")]).0, 403);
    assert_eq!(head_of(&["-X", "DELETE", &format!("{base}/old/x.txt")]).0, 204);
    assert!(!share.path().join("old/x.txt").exists());
    assert_eq!(head_of(&["-X", "DELETE", &format!("{base}/new%20folder")]).0, 204, "a folder, named without its /");
    assert!(!share.path().join("new folder").exists());
    assert_eq!(head_of(&["-X", "PATCH", &format!("{base}/old/")]).0, 405);
    assert!(server.log().contains("removed folder 'new folder'"), "changes are logged: {}", server.log());
}

#[test]
fn status_shows_web_transfers_apart_from_the_sessions() {
    let share = Share::new();
    // More than loopback's socket buffers hold, so the server is still
    // sending while the test looks.
    share.add("big.bin", &pseudo_random(64 << 20, 6));
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&server, "http");
    // A slow browser: 64 MiB at 4 MiB/s.
    let mut slow = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--limit-rate", "4M", &format!("{base}/big.bin")])
        .spawn()
        .unwrap();
    let json = file_share_e2e::eventually("the web download shows", || {
        let json = text(&curl(&[&format!("{base}/.status.json")]));
        json.contains("get big.bin").then_some(json)
    });
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["clients"], 0, "web visitors do not take the line protocol's places");
    let transfer =
        status["web"].as_array().unwrap().iter().find(|w| w["activity"].as_str().unwrap().starts_with("get big.bin"));
    assert!(transfer.is_some_and(|w| w["name"] == "web"), "{json}");
    // The line protocol's status shows it too.
    let listed = server.client(tempfile::tempdir().unwrap().path(), &["status"]);
    let said = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(said.contains("web connections") && said.contains("get big.bin"), "{said}");
    slow.kill().unwrap();
    slow.wait().unwrap();
}

#[test]
fn the_web_address_is_printed_for_people_and_as_a_qr_code() {
    let share = Share::new();
    let mut child = Command::new(file_share_e2e::binary("file-server"))
        .args(["--bind", "127.0.0.1", "--port", "0", "--http", "0", "--qr", "--repo"])
        .arg(share.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Lines arrive on a channel, so a missing one fails the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(20)).expect("another line on stdout");
    assert!(next().starts_with("listening on 127.0.0.1:"));
    let http = next();
    let port = http.rsplit(':').next().unwrap().to_string();
    assert_eq!(next(), format!("  http://127.0.0.1:{port}/"));
    let qr: Vec<String> = (0..12).map(|_| next()).collect();
    assert!(qr.iter().filter(|l| l.contains('█') || l.contains('▀') || l.contains('▄')).count() >= 8, "{qr:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn idle_kept_alive_connections_give_their_places_back() {
    let share = Share::new();
    share.add("a.txt", b"hi\n");
    let server =
        ServerProcess::start(share.path(), &["--http", "0", "--http-max-connections", "2", "--http-keep-alive", "1"]);
    let addr = format!("127.0.0.1:{}", server.http_port.unwrap());
    // Two visitors make one request each and keep their connections open.
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            let (mut answer, mut chunk) = (Vec::new(), [0u8; 512]);
            while !answer.ends_with(b"\r\n\r\nhi\n") {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
                answer.extend_from_slice(&chunk[..n]);
            }
            assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
            s
        })
        .collect();
    let url = format!("http://{addr}/a.txt");
    assert_eq!(head_of(&[&url]).0, 503, "both places held while they idle");
    // The keep-alive wait (--http-keep-alive, 1 s here) ends them; then the next visitor is served.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "closed without a word: {}", String::from_utf8_lossy(&rest));
    }
    file_share_e2e::eventually("a place is free", || (text(&curl(&[&url])) == "hi\n").then_some(()));
}

#[test]
fn shutdown_lets_a_web_download_under_way_finish_within_the_grace() {
    let share = Share::new();
    // More than loopback's socket buffers hold, so the server is still
    // sending when the signal comes.
    let data = pseudo_random(64 << 20, 8);
    share.add("big.bin", &data);
    let mut server = ServerProcess::start(share.path(), &["--http", "0", "--grace", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    // 64 MiB at 16 MiB/s: about four seconds.
    let slow = Command::new("curl")
        .args(["-s", "--limit-rate", "16M", "-o", out.to_str().unwrap(), &format!("{}/big.bin", web(&server, "http"))])
        .spawn()
        .unwrap();
    file_share_e2e::eventually("the download is under way", || {
        text(&curl(&[&format!("{}/.status.json", web(&server, "http"))])).contains("get big.bin").then_some(())
    });
    server.signal("TERM");
    let finished = file_share_e2e::output_within(slow, Duration::from_secs(30));
    assert!(finished.status.success(), "curl: {:?}", finished.status);
    assert!(std::fs::read(&out).unwrap() == data, "the whole file arrived");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
}

/// Sends `request` on a new connection to `addr` and returns all that comes
/// back until the server closes (or 10 s pass).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn requests_for_other_hosts_or_framed_two_ways_are_refused() {
    let share = Share::new();
    share.add("a.txt", b"hi\n");
    let server =
        ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads", "--http-host", "files.example"]);
    let port = server.http_port.unwrap();
    let addr = format!("127.0.0.1:{port}");
    // DNS rebinding, as a browser would do it: a page of evil.example whose
    // name now resolves to this machine. curl plays the browser.
    let rebound = format!("evil.example:{port}:127.0.0.1");
    let (status, _) = head_of(&["--resolve", &rebound, &format!("http://evil.example:{port}/a.txt")]);
    assert_eq!(status, 421);
    let named = format!("files.example:{port}:127.0.0.1");
    assert_eq!(text(&curl(&["--resolve", &named, &format!("http://files.example:{port}/a.txt")])), "hi\n");
    assert_eq!(text(&curl(&[&format!("http://localhost:{port}/a.txt")])), "hi\n");
    // The authority of an absolute-form target counts, not Host.
    let absolute =
        exchange(&addr, format!("GET http://{addr}/a.txt HTTP/1.1\r\nHost: evil.example\r\n\r\n").as_bytes());
    assert!(absolute.starts_with("HTTP/1.1 200") && absolute.ends_with("hi\n"), "{absolute}");
    let absolute = exchange(&addr, b"GET http://evil.example/a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(absolute.starts_with("HTTP/1.1 421"), "{absolute}");
    assert!(exchange(&addr, b"GET /a.txt HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));

    // Two lengths: which one holds decides where the next request starts. Refused, closed.
    let smuggled = b"PUT /s.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n\
GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let answer = exchange(&addr, smuggled);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("Content-Length"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "the request behind it is never read: {answer}");
    let plus = exchange(&addr, b"PUT /p.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +3\r\n\r\nabc");
    assert!(plus.starts_with("HTTP/1.1 400"), "{plus}");
    assert!(!share.path().join("s.txt").exists() && !share.path().join("p.txt").exists());

    // A MOVE whose Destination is another server is not carried out here.
    let (status, _) =
        head_of(&["-X", "MOVE", "-H", "Destination: http://other.example/b.txt", &format!("http://{addr}/a.txt")]);
    assert_eq!(status, 502);
    assert!(share.path().join("a.txt").exists() && !share.path().join("b.txt").exists());
    let here = format!("Destination: http://{addr}/b.txt");
    assert_eq!(head_of(&["-X", "MOVE", "-H", &here, &format!("http://{addr}/a.txt")]).0, 201);
    assert!(share.path().join("b.txt").exists());
}

#[test]
fn one_address_cannot_take_every_web_place() {
    let share = Share::new();
    share.add("a.txt", b"hi\n");
    let server = ServerProcess::start(share.path(), &["--http", "0", "--http-max-connections", "12"]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.http_port.unwrap()).parse().unwrap();
    // 127.0.0.3 opens requests and never ends them (its 8 places, the default).
    let held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = file_share_e2e::tcp_from("127.0.0.3", addr);
            s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            s
        })
        .collect();
    let mut ninth = file_share_e2e::tcp_from("127.0.0.3", addr);
    ninth.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = ninth.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too many connections from 127.0.0.3 (at most 8 per address)"), "{answer}");
    // Another address is served at once, every time.
    for _ in 0..5 {
        let out = curl(&["--interface", "127.0.0.2", &format!("http://{addr}/a.txt")]);
        assert_eq!(text(&out), "hi\n");
    }
    drop(held);
}

#[test]
fn a_download_nobody_reads_and_an_upload_that_trickles_are_cut() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(64 << 20, 9));
    let server = ServerProcess::start(
        share.path(),
        &["--http", "0", "--allow-uploads", "--idle-timeout", "2", "--line-timeout", "2"],
    );
    let addr = format!("127.0.0.1:{}", server.http_port.unwrap());

    // A reader that stops: cut once it has taken nothing for the idle
    // timeout, not later however the sends before it went.
    let mut stuck = TcpStream::connect(&addr).unwrap();
    stuck.write_all(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let asked = std::time::Instant::now();
    file_share_e2e::eventually("the stuck download is given up", || {
        server.log().contains("GET /big.bin: the peer took nothing for 2s").then_some(())
    });
    let after = asked.elapsed();
    assert!(after < Duration::from_secs(6), "cut after {after:?}, for an idle timeout of 2 s");
    drop(stuck);

    // A body at one byte every half second: cut after the line timeout (408), nothing stored.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"PUT /slow.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n").unwrap();
    let reader = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..40 {
            if slow.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let mut answer = String::new();
    let mut reader = reader;
    reader.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = reader.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("slower than 1024 bytes a second"), "{answer}");
    trickle.join().unwrap();
    assert!(!share.path().join("slow.bin").exists());
}

/// The status line of `GET /a.txt` with Basic `user:password`, sent from
/// the loopback address `from`.
fn basic_get_from(from: &str, port: u16, user: &str, password: &str) -> String {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut conn = file_share_e2e::tcp_from(from, addr);
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let credentials = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{password}"));
    let request = format!(
        "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.lines().next().unwrap_or("").to_string()
}

#[test]
fn a_basic_auth_brute_force_holds_no_places_and_keeps_no_one_out() {
    let share = Share::new();
    share.add("a.txt", b"members only\n");
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    assert!(adduser(&users, "alice", "alice pw", false).status.success());
    let server = ServerProcess::start(
        share.path(),
        &["--http", "0", "--users", users.to_str().unwrap(), "--insecure-plaintext-login", "--login-delay", "0.2"],
    );
    let port = server.http_port.unwrap();
    // alice has read the share from 127.0.0.2 before.
    assert_eq!(basic_get_from("127.0.0.2", port, "alice", "alice pw"), "HTTP/1.1 200 OK");
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let (guesses, owner) = std::thread::scope(|scope| {
        let guessers: Vec<_> = (0..32)
            .map(|w| {
                scope.spawn(move || {
                    let mut answers = Vec::new();
                    for i in 0.. {
                        if std::time::Instant::now() >= until {
                            break;
                        }
                        answers.push(basic_get_from("127.0.0.3", port, "alice", &format!("guess-{w}-{i}")));
                    }
                    answers
                })
            })
            .collect();
        let mut owner = Vec::new();
        while std::time::Instant::now() < until {
            owner.push(basic_get_from("127.0.0.2", port, "alice", "alice pw"));
        }
        (guessers.into_iter().flat_map(|g| g.join().unwrap()).collect::<Vec<_>>(), owner)
    });
    assert!(owner.iter().all(|s| s == "HTTP/1.1 200 OK"), "alice was kept out: {owner:?}");
    let checked = guesses.iter().filter(|s| s.starts_with("HTTP/1.1 401")).count();
    // 0.2 s to answer, then penalties of 0.2, 0.4, 0.8, 1.6 s: at most 4 in 3 s.
    assert!(checked <= 4, "{checked} guesses checked in 3 s");
    assert!(guesses.iter().any(|s| s.starts_with("HTTP/1.1 429")), "refused at once while penalised");
    assert!(guesses.iter().any(|s| s.starts_with("HTTP/1.1 503")), "and beyond 8 places, at once too");
}

#[test]
fn wget_mirrors_each_file_once_and_the_views_stay_reachable() {
    let share = Share::new();
    share.add("a.txt", b"a\n");
    share.add("sub/b.txt", b"b\n");
    share.add("sub/c.txt", b"cc\n");
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&server, "http");
    let dir = tempfile::tempdir().unwrap();
    let out =
        Command::new("wget").args(["-q", "-r", "-np", "-nH", &format!("{base}/")]).current_dir(dir.path()).status();
    assert!(out.unwrap().success());
    let mut fetched: Vec<String> = file_share_e2e::files_under(dir.path());
    fetched.sort();
    assert_eq!(
        fetched,
        ["a.txt", "index.html", "robots.txt", "sub/b.txt", "sub/c.txt", "sub/index.html"],
        "each file and folder once: no sort orders, no archives"
    );
    // The views a person clicks: sorted pages and archives, under /.sort/, /.tar/, /.zip/.
    let sorted = text(&curl(&[&format!("{base}/.sort/size-desc/sub/")]));
    let (c, b) = (sorted.find("c.txt</a>").unwrap(), sorted.find("b.txt</a>").unwrap());
    assert!(c < b, "largest first: {sorted}");
    assert!(sorted.contains("href=\"/.sort/size/sub/\" rel=\"nofollow\">Size ▼"), "{sorted}");
    assert!(sorted.contains("<p>2 entries · "), "{sorted}");
    let top = text(&curl(&[&format!("{base}/")]));
    assert!(top.contains("<p>2 entries · "), "{top}");
    let one = text(&curl(&[&format!("{base}/.sort/name/sub/")]));
    assert!(one.contains("href=\"/.tar/sub/\" rel=\"nofollow\""), "{one}");
    let listing = Command::new("sh").arg("-c").arg(format!("curl -sf '{base}/.tar/sub/' | tar -t")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout), "sub/\nsub/b.txt\nsub/c.txt\n");
    assert_eq!(head_of(&[&format!("{base}/.nothing/sub/")]).0, 404);
}

#[test]
fn text_comes_as_utf_8_and_one_entry_is_one_entry() {
    let share = Share::new();
    share.add("only/naïve café.txt", "déjà vu\n".as_bytes());
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = web(&server, "http");
    let (status, headers) = head_of(&[&format!("{base}/only/na%C3%AFve%20caf%C3%A9.txt")]);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/plain; charset=utf-8"), "{headers}");
    let page = text(&curl(&[&format!("{base}/only/")]));
    assert!(page.contains("<p>1 entry · "), "{page}");
}

#[test]
fn plain_http_to_the_https_port_is_told_to_use_https() {
    let share = Share::new();
    share.add("a.txt", b"a\n");
    let state = tempfile::tempdir().unwrap();
    let server =
        ServerProcess::start(share.path(), &["--http", "0", "--tls", "--state-dir", state.path().to_str().unwrap()]);
    let port = server.http_port.unwrap();
    let out = curl(&["-i", &format!("http://127.0.0.1:{port}/a.txt")]);
    let answer = text(&out);
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.ends_with("400 this port speaks HTTPS: use https:// in the address\n"), "{answer}");
    assert_eq!(text(&curl(&["-k", &format!("https://127.0.0.1:{port}/a.txt")])), "a\n", "HTTPS as ever");
}
