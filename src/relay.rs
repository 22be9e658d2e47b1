//! A slow network: a TCP relay at a fixed rate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A TCP relay on `127.0.0.1:0` to `target` that passes at most `rate`
/// bytes a second each way: a slow network, so a test can act while a
/// transfer is under way. Each connection ends when either side closes.
pub struct SlowRelay {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowRelay {
    /// Relays connections to `target` at `rate` bytes a second each way.
    pub fn start(target: SocketAddr, rate: u64) -> SlowRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else { continue };
                let (client2, server2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                std::thread::spawn(move || pump(client, server, rate));
                std::thread::spawn(move || pump(server2, client2, rate));
            }
        });
        SlowRelay { addr, stop }
    }
}

/// Copies `from` to `to` at `rate` bytes a second, 16 KiB at a time, until
/// either ends; then shuts both down. A direction that was idle gets no
/// credit for it beyond a short burst (an upload after a long download is
/// paced as well as the download was).
fn pump(mut from: TcpStream, mut to: TcpStream, rate: u64) {
    const BURST: Duration = Duration::from_millis(50);
    let mut buf = vec![0u8; 16 * 1024];
    // When the bytes passed so far are due at the rate.
    let mut due = Instant::now();
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        let now = Instant::now();
        due = due.max(now.checked_sub(BURST).unwrap_or(now)) + Duration::from_secs_f64(n as f64 / rate as f64);
        if due > now {
            std::thread::sleep(due - now);
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}
