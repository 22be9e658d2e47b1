//! The web side in a real browser: headless Chromium (Debian's `chromium`,
//! installed by .ci/run when missing) renders the folder page and the live
//! status page; the tests read the rendered DOM and keep a screenshot in
//! their temporary folder.

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
