//! The web side in a real browser: headless Chromium (Debian's `chromium`,
//! installed by .ci/run when missing) renders the folder page and the live
//! status page; the tests read the rendered DOM and keep a screenshot in
//! their temporary folder. Where a visitor acts on a page (choosing files,
//! clicking), [`Browser`] drives Chromium over its DevTools protocol.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use file_share_e2e::{eventually, output_within, pseudo_random, ServerProcess, Share, SlowRelay};

/// Headless Chromium with `args`, its profile in `profile`; stopped by pid
/// if it runs over a minute.
fn chromium(profile: &Path, args: &[&str]) -> Output {
    let child = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium (apt-get install chromium)");
    output_within(child, Duration::from_secs(60))
}

fn dom(profile: &Path, url: &str, wait_ms: u32) -> String {
    let out = chromium(profile, &[&format!("--virtual-time-budget={wait_ms}"), "--dump-dom", url]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_folder_page_renders_with_its_entries_on_a_phone_sized_screen() {
    let share = Share::new();
    share.add("docs/guide.txt", b"read me\n");
    share.add("photo one.jpg", &pseudo_random(3 * 1024 * 1024 / 2, 1));
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = format!("http://127.0.0.1:{}", server.http_port.unwrap());
    let profile = tempfile::tempdir().unwrap();

    let page = dom(profile.path(), &format!("{base}/"), 1000);
    assert!(page.contains(r#"<a href="/docs/">docs/</a>"#), "{page}");
    assert!(page.contains(r#"<a href="/photo%20one.jpg">photo one.jpg</a>"#), "{page}");
    assert!(page.contains("1.50 MiB"), "sizes for people: {page}");
    let sorted = dom(profile.path(), &format!("{base}/?sort=size&order=desc"), 1000);
    let (photo, docs) = (sorted.find("photo one.jpg").unwrap(), sorted.find("docs/").unwrap());
    assert!(docs < photo, "folders first, then files by size");

    let shot = profile.path().join("folder.png");
    let out = chromium(
        profile.path(),
        &[&format!("--screenshot={}", shot.display()), "--window-size=412,915", &format!("{base}/docs/")],
    );
    let png =
        std::fs::read(&shot).unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "a real picture");
}

#[test]
fn the_status_page_shows_a_transfer_while_it_runs() {
    let share = Share::new();
    share.add("big.bin", &pseudo_random(16 << 20, 2));
    let server = ServerProcess::start(share.path(), &["--http", "0"]);
    let base = format!("http://127.0.0.1:{}", server.http_port.unwrap());
    // file-client fetching through a slow link: 16 MiB at 1 MiB/s.
    let relay = SlowRelay::start(server.addr, 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let mut client = Command::new(file_share_e2e::binary("file-client"))
        .args([relay.addr.to_string().as_str(), "-q", "--name", "fetcher", "-c", "get big.bin"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the download is under way", || {
        let out = Command::new("curl").args(["-s", &format!("{base}/.status.json")]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).contains("get big.bin").then_some(())
    });
    let profile = tempfile::tempdir().unwrap();
    let page = dom(profile.path(), &format!("{base}/.status"), 3000);
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(page.contains("<td>fetcher</td>"), "{page}");
    assert!(page.contains("get big.bin"), "the transfer, as the page's script drew it: {page}");
    assert!(page.contains("of 3 clients"), "{page}");
}

/// A page and a picture uploaded to the share by anyone who may write, each
/// trying, with the visitor's rights, what the share's own pages do:
/// delete a file, upload one, read the status.
const TRAP_PAGE: &str = r#"<!DOCTYPE html><html><body><p id="out">trap loaded</p><script>
const log = t => { document.getElementById("out").textContent += " " + t; };
log(["script", "ran"].join("-"));
const share = location.origin;
fetch(share + "/victim.txt", {method: "DELETE"}).then(r => log("delete " + r.status), () => log("delete blocked"));
fetch(share + "/planted.txt", {method: "PUT", body: "from the trap"}).then(r => log("put " + r.status), () => log("put blocked"));
fetch(share + "/.status.json").then(r => r.text()).then(t => log("read " + t.length), () => log("read blocked"));
</script></body></html>"#;

const TRAP_SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"
 onload="fetch(location.origin + '/victim.txt', {method: 'DELETE'});
 fetch(location.origin + '/planted-by-svg.txt', {method: 'PUT', body: 'x'})">
<rect width="10" height="10"/></svg>"#;

#[test]
fn an_uploaded_trap_page_opened_by_a_logged_in_writer_changes_nothing() {
    let share = Share::new();
    share.add("victim.txt", b"keep me\n");
    let state = tempfile::tempdir().unwrap();
    let users = state.path().join("users");
    assert!(file_share_e2e::adduser(&users, "alice", "alicepw", true).status.success());
    let server = ServerProcess::start(
        share.path(),
        &[
            "--http",
            "0",
            "--allow-uploads",
            "--users",
            users.to_str().unwrap(),
            "--insecure-plaintext-login",
            "--login-delay",
            "0",
        ],
    );
    let port = server.http_port.unwrap();
    // Another writer (here the same account) plants the traps.
    for (name, body) in [("trap.html", TRAP_PAGE), ("trap.svg", TRAP_SVG)] {
        let local = state.path().join(name);
        std::fs::write(&local, body).unwrap();
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "alice:alicepw", "-T"])
            .arg(&local)
            .arg(format!("http://127.0.0.1:{port}/{name}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{name} uploaded");
    }
    // alice opens them in her browser, logged in (the browser sends her
    // credentials with every request to the share).
    let profile = tempfile::tempdir().unwrap();
    let page = dom(profile.path(), &format!("http://alice:alicepw@127.0.0.1:{port}/trap.html"), 3000);
    assert!(page.contains("trap loaded"), "the page itself shows: {page}");
    assert!(!page.contains("script-ran"), "its script must not run: {page}");
    dom(profile.path(), &format!("http://alice:alicepw@127.0.0.1:{port}/trap.svg"), 3000);

    assert_eq!(std::fs::read(share.path().join("victim.txt")).unwrap(), b"keep me\n");
    assert!(!share.path().join("planted.txt").exists() && !share.path().join("planted-by-svg.txt").exists());
    let log = server.log();
    assert!(!log.contains("removed") && !log.contains("planted"), "nothing changed in alice's name: {log}");
    // While the share's own folder page works for her, under its own policy.
    let folder = dom(profile.path(), &format!("http://alice:alicepw@127.0.0.1:{port}/"), 2000);
    assert!(folder.contains("trap.html") && folder.contains("id=\"upload\""), "{folder}");
}

/// Headless Chromium driven over the DevTools protocol (JSON over a
/// WebSocket): for what a page does when a visitor acts on it, choosing
/// files and clicking, which `--dump-dom` cannot do. Stopped by its pid when
/// dropped; its profile is a temporary folder.
struct Browser {
    child: std::process::Child,
    socket: tungstenite::WebSocket<std::net::TcpStream>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (apt-get install chromium)");
        // Chromium names its endpoint on stderr; the rest of stderr is read
        // away so it never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                if let Some(endpoint) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(endpoint.to_string());
                }
            }
        });
        let endpoint = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(endpoint) => endpoint,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium named no DevTools endpoint");
            }
        };
        let authority = endpoint.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let stream = std::net::TcpStream::connect(&authority).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (socket, _) = tungstenite::client(endpoint.as_str(), stream).expect("DevTools handshake");
        let mut browser = Browser { child, socket, session: String::new(), next_id: 0, _profile: profile };
        let target = browser.call("Target.createTarget", serde_json::json!({"url": "about:blank"}));
        let attached =
            browser.call("Target.attachToTarget", serde_json::json!({"targetId": target["targetId"], "flatten": true}));
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", serde_json::json!({}));
        browser.navigate(url);
        browser
    }

    /// Sends one command (to the page once attached) and returns its result;
    /// events that come before it are passed over.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let mut message = serde_json::json!({"id": self.next_id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        self.socket.send(tungstenite::Message::text(message.to_string())).unwrap();
        loop {
            let reply = self.next_message();
            if reply["id"] == self.next_id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    fn next_message(&mut self) -> serde_json::Value {
        loop {
            if let tungstenite::Message::Text(text) = self.socket.read().expect("DevTools message") {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Opens `url` and returns once the page has loaded.
    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({"url": url}));
        while self.next_message()["method"] != "Page.loadEventFired" {}
    }

    /// What `expression` gives in the page (a promise awaited).
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(result["exceptionDetails"].is_null(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Waits until `expression` gives a non-empty string in the page, and returns it.
    fn wait_for(&mut self, what: &str, expression: &str) -> String {
        file_share_e2e::eventually(what, || Some(self.eval(expression).as_str()?.to_string()).filter(|s| !s.is_empty()))
    }

    /// Chooses `paths` in the file input `selector`, as a visitor does in
    /// the file dialog (a folder, for a `webkitdirectory` input).
    fn choose(&mut self, selector: &str, paths: &[&Path]) {
        let root = self.call("DOM.getDocument", serde_json::json!({}));
        let node =
            self.call("DOM.querySelector", serde_json::json!({"nodeId": root["root"]["nodeId"], "selector": selector}));
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        self.call("DOM.setFileInputFiles", serde_json::json!({"nodeId": node["nodeId"], "files": files}));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of the upload list's entry for `name` once it has an outcome.
fn upload_outcome(name: &str) -> String {
    format!(
        r##"[...document.querySelectorAll("#progress li")]
            .filter(li => li.className && li.textContent.startsWith({name:?} + " "))
            .map(li => li.textContent).join("")"##
    )
}

#[test]
fn uploads_from_the_page_keep_a_folder_tree_and_a_refusal_stays_with_a_replace_button() {
    let share = Share::new();
    share.add("taken.txt", b"the old text\n");
    let server = ServerProcess::start(share.path(), &["--http", "0", "--allow-uploads"]);
    let base = format!("http://127.0.0.1:{}", server.http_port.unwrap());
    let local = tempfile::tempdir().unwrap();
    let (fresh, taken) = (local.path().join("fresh.txt"), local.path().join("taken.txt"));
    std::fs::write(&fresh, b"fresh\n").unwrap();
    std::fs::write(&taken, b"the new text\n").unwrap();
    let album = local.path().join("album");
    std::fs::create_dir_all(album.join("2026/june")).unwrap();
    std::fs::write(album.join("cover.txt"), b"cover\n").unwrap();
    std::fs::write(album.join("2026/june/day one.txt"), b"day one\n").unwrap();

    let mut browser = Browser::open(&format!("{base}/"));
    browser.choose("#files", &[&fresh, &taken]);
    browser.choose("#folder", &[&album]);
    // The browser lists a chosen folder's files after the dialog closes.
    let chosen = browser.wait_for(
        "the folder's files to be listed",
        r#"[...document.getElementById("folder").files].map(f => f.webkitRelativePath).sort().join(",")"#,
    );
    assert_eq!(chosen, "album/2026/june/day one.txt,album/cover.txt");
    browser.eval(r#"document.getElementById("upload").click()"#);

    let refused = browser.wait_for("taken.txt's outcome", &upload_outcome("taken.txt"));
    assert_eq!(refused, "taken.txt already exists replace", "the refusal stays on the page, with its way out");
    assert_eq!(browser.wait_for("fresh.txt's outcome", &upload_outcome("fresh.txt")), "fresh.txt stored");
    assert_eq!(
        browser.wait_for("the nested file's outcome", &upload_outcome("album/2026/june/day one.txt")),
        "album/2026/june/day one.txt stored"
    );
    assert_eq!(share.read("taken.txt"), b"the old text\n", "nothing replaced unasked");
    assert_eq!(share.read("fresh.txt"), b"fresh\n");
    assert_eq!(share.read("album/cover.txt"), b"cover\n");
    assert_eq!(share.read("album/2026/june/day one.txt"), b"day one\n", "the folder kept its tree");
    // The table is swapped in fresh from the server once the uploads end.
    let listed = browser.wait_for(
        "the table to show the uploads",
        r#"(() => {
            const names = [...document.querySelectorAll("tbody tr")].map(tr => tr.dataset.name);
            return names.includes("fresh.txt") ? names.join(",") : "";
        })()"#,
    );
    assert_eq!(listed, "album,fresh.txt,taken.txt", "the table is current");

    browser.eval(r##"document.querySelector("#progress button.replace").click()"##);
    file_share_e2e::eventually("the replace to be stored", || {
        (share.read("taken.txt") == b"the new text\n").then_some(())
    });
    assert_eq!(browser.wait_for("the replace's outcome", &upload_outcome("taken.txt")), "taken.txt stored");
}
