//! Being found on the LAN, checked with avahi, which nobody here wrote: two
//! network namespaces joined by a veth pair, a `file-server` in one and
//! avahi (its own system D-Bus, started here) in the other, and the reverse.
//! Skipped, with why, where namespaces cannot be made.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use file_share_e2e::{binary, eventually, output_within, Share};

/// Two namespaces joined by a veth pair: `a` at 10.77.0.1, `b` at 10.77.0.2.
struct Lan {
    a: String,
    b: String,
}

impl Lan {
    fn make() -> Result<Lan, String> {
        let n = std::process::id() % 100_000;
        let lan = Lan { a: format!("fsmdns-a{n}"), b: format!("fsmdns-b{n}") };
        let (va, vb) = (format!("fsa{n}"), format!("fsb{n}"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &lan.a],
            vec!["netns", "add", &lan.b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", &lan.a],
            vec!["link", "set", &vb, "netns", &lan.b],
            vec!["-n", &lan.a, "addr", "add", "10.77.0.1/24", "dev", &va],
            vec!["-n", &lan.b, "addr", "add", "10.77.0.2/24", "dev", &vb],
            vec!["-n", &lan.a, "link", "set", &va, "up", "multicast", "on"],
            vec!["-n", &lan.b, "link", "set", &vb, "up", "multicast", "on"],
            vec!["-n", &lan.a, "link", "set", "lo", "up"],
            vec!["-n", &lan.b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let out = Command::new("ip").args(&step).output().map_err(|e| format!("ip: {e}"))?;
            if !out.status.success() {
                return Err(format!("ip {}: {}", step.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        Ok(lan)
    }

    /// `ip netns exec NS PROGRAM ARGS...`.
    fn exec(&self, ns: &str, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program).args(args);
        command
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the pair, and the pair.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child stopped by its pid when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(program: &str) -> std::path::PathBuf {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().unwrap();
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn servers_are_announced_to_avahi_and_avahi_announcements_are_discovered() {
    let lan = match Lan::make() {
        Ok(lan) => lan,
        Err(why) => return eprintln!("discovery test skipped: network namespaces cannot be made here ({why})"),
    };
    let work = tempfile::tempdir().unwrap();
    // A system bus of its own (avahi talks to its clients over it).
    let bus = work.path().join("system_bus_socket");
    let address = format!("unix:path={}", bus.display());
    let _dbus = Running(
        Command::new("dbus-daemon")
            .args(["--system", "--nofork", "--nopidfile", &format!("--address={address}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)"),
    );
    eventually("the bus", || bus.exists().then_some(()));
    let conf = work.path().join("avahi-daemon.conf");
    std::fs::write(&conf, "[server]\nuse-ipv6=no\n[publish]\npublish-hinfo=no\npublish-workstation=no\n").unwrap();
    let avahi_log = work.path().join("avahi.log");
    let _avahi = Running(
        lan.exec(&lan.b, &which("avahi-daemon"), &["--no-chroot", "--no-drop-root", "--no-rlimits", "-f"])
            .arg(&conf)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&avahi_log).unwrap())
            .spawn()
            .expect("avahi-daemon (apt-get install avahi-daemon)"),
    );
    let started = eventually("avahi started", || {
        let log = std::fs::read_to_string(&avahi_log).ok()?;
        // One avahi-daemon a machine: one already running (its pid file is
        // the machine's) cannot be stood in for.
        (log.contains("Server startup complete") || log.contains("already running")).then_some(log)
    });
    if !started.contains("Server startup complete") {
        return eprintln!("discovery test skipped: an avahi-daemon already runs on this machine");
    }

    // A server (TLS, so the fingerprint travels) in the other namespace, with
    // a host name of its own (the namespaces share this machine's otherwise).
    let share = Share::new();
    share.add("hello.txt", b"hi\n");
    let state = work.path().join("state");
    let server_line = format!(
        "hostname fs-lab-host && exec {} --bind 0.0.0.0 --port 0 --repo {} --tls --state-dir {} --name 'lab share'",
        binary("file-server").display(),
        share.path().display(),
        state.display()
    );
    let mut server = Running(
        lan.exec(&lan.a, &which("unshare"), &["--uts", "sh", "-c", &server_line])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let port = first.split_whitespace().nth(2).and_then(|a| a.rsplit(':').next()).unwrap().to_string();
    let fingerprint = first.split_once("Fingerprint=").unwrap().1.trim().to_string();

    // avahi hears it: the address, the port, the TXT record.
    let browse = || {
        let out = lan
            .exec(&lan.b, &which("avahi-browse"), &["-rpt", "_fileshare._tcp"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let heard = eventually("avahi resolves the server", || {
        let all = browse();
        // avahi-browse -p writes a space in a name as \032.
        all.lines().find(|l| l.starts_with("=;") && l.contains(";lab\\032share;")).map(str::to_string)
    });
    assert!(heard.contains(&format!(";10.77.0.1;{port};")), "{heard}");
    for txt in ["\"proto=1\"", "\"tls=yes\"", "\"name=lab share\"", &format!("\"fp={fingerprint}\"")] {
        assert!(heard.contains(txt), "{txt} in {heard}");
    }

    // From the avahi side, file-client connects to it by its name (TLS as
    // announced; trust from the pinned fingerprint, never from mDNS).
    let client = lan
        .exec(&lan.b, &binary("file-client"), &["--tls", "--fingerprint", &fingerprint, "lab share", "-c", "list"])
        .env("HOME", work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(client, Duration::from_secs(20));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello.txt"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'lab share' is announced on the LAN at 10.77.0.1:"));

    // The reverse: avahi announces, file-client --discover hears it.
    let published = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    let _publisher = Running(
        lan.exec(&lan.b, &which("avahi-publish-service"), &["their share", "_fileshare._tcp", "4242"])
            .args(["name=their share", "tls=yes", &format!("fp={published}"), "proto=1"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let listed = eventually("file-client --discover hears avahi's announcement", || {
        let out = lan.exec(&lan.a, &binary("file-client"), &["--discover", "--json"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().find(|l| l.contains("\"name\":\"their share\"")).map(str::to_string)
    });
    let found: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(found["address"], "10.77.0.2:4242");
    assert_eq!((found["tls"].as_bool(), found["fingerprint"].as_str()), (Some(true), Some(published)));
}
