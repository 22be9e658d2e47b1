//! Real services from Debian packages, started by a test and stopped by pid
//! when dropped: [`Haproxy`] in front of servers, [`Redis`] for a cluster.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::eventually;

/// A port free on `ip` now (the kernel's pick, released at once), for a
/// service that needs its port on its command line.
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Waits until something accepts connections at `addr`, by connecting.
pub fn wait_listening(what: &str, addr: SocketAddr) {
    eventually(&format!("{what} listening on {addr}"), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok().map(drop)
    });
}

/// Waits until a socket listens on IPv4 `addr`, without connecting (a
/// balancer would pass a connection on): by the kernel's table of sockets.
pub fn wait_bound(what: &str, addr: SocketAddr) {
    let SocketAddr::V4(v4) = addr else { panic!("{addr}: IPv4 only") };
    // /proc/net/tcp: `sl local_address rem_address st ...`, the address as
    // little-endian hex, the state 0A for LISTEN.
    let local = format!("{:08X}:{:04X}", u32::from(*v4.ip()).swap_bytes(), v4.port());
    eventually(&format!("{what} listening on {addr}"), || {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        table
            .lines()
            .skip(1)
            .any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")
            })
            .then_some(())
    });
}

/// A child process killed (by its pid) and reaped when dropped, its output in a log file.
struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(program: &str, args: &[&str], dir: &Path, log_name: &str) -> Service {
        let log = dir.join(log_name);
        let out = File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} (run scripts/test, which installs it): {e}"));
        Service { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self, signal: &str) {
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HAProxy process (`haproxy -db -f CONFIG`), in TCP mode.
pub struct Haproxy {
    service: Service,
}

impl Haproxy {
    /// Starts HAProxy with `frontends` (each: where it listens, and the
    /// servers behind it as HAProxy `server` lines' addresses and options,
    /// e.g. `127.0.0.1:4000 send-proxy-v2 check check-send-proxy inter 200ms`)
    /// and waits until every frontend accepts connections.
    pub fn start(dir: &Path, frontends: &[(SocketAddr, Vec<String>)]) -> Haproxy {
        let mut config = String::from(
            "global\n  maxconn 4096\n\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 120s\n  \
             timeout server 120s\n  balance roundrobin\n",
        );
        for (i, (bind, servers)) in frontends.iter().enumerate() {
            config += &format!("\nfrontend f{i}\n  bind {bind}\n  default_backend b{i}\n\nbackend b{i}\n");
            for (j, server) in servers.iter().enumerate() {
                config += &format!("  server s{j} {server}\n");
            }
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let service =
            Service::start("haproxy", &["-db", "-f", path.to_str().expect("a UTF-8 path")], dir, "haproxy.log");
        let haproxy = Haproxy { service };
        for (bind, _) in frontends {
            wait_bound("haproxy", *bind);
        }
        haproxy
    }

    /// What HAProxy printed.
    pub fn log(&self) -> String {
        self.service.log()
    }
}

/// One `redis-server`, on its own port, saving nothing to disk.
pub struct Redis {
    service: Option<Service>,
    dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Redis {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it accepts connections.
    pub fn start(dir: &Path) -> Redis {
        let port = free_port("127.0.0.1");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut redis = Redis { service: None, dir: dir.to_path_buf(), addr };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT`, for `--cluster`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills it with SIGKILL (nothing it held survives: it saves nothing).
    pub fn kill(&mut self) {
        if let Some(mut service) = self.service.take() {
            service.kill("KILL");
        }
    }

    /// Starts it again on the same port, empty, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.addr.port().to_string();
        let args = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"];
        let mut args: Vec<&str> = args.to_vec();
        let dir = self.dir.to_str().expect("a UTF-8 path").to_string();
        args.push(&dir);
        self.service = Some(Service::start("redis-server", &args, &self.dir, "redis.log"));
        wait_listening("redis-server", self.addr);
    }

    /// What it printed.
    pub fn log(&self) -> String {
        self.service.as_ref().map(Service::log).unwrap_or_default()
    }
}
