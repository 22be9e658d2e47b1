//! A stand-in server, for replies the real one never sends.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

/// A stand-in server speaking the protocol by hand, to test the client
/// against replies the real server never sends: stalls, hostile names,
/// oversized or broken headers. Each accepted connection is greeted and
/// handed to `serve` on its own thread; the listener stops when dropped.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// One connection to a [`FakeServer`].
pub struct FakeConn {
    reader: BufReader<TcpStream>,
    /// The socket, to write replies.
    pub stream: TcpStream,
}

impl FakeConn {
    /// The next request line without its line end; `None` at end of input.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    }

    /// Writes raw bytes; errors (the client left) are ignored.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Writes an `OK` reply with a text body.
    pub fn send_text(&mut self, text: &str) {
        self.send(format!("OK {}\n{text}", text.len()).as_bytes());
    }

    /// Writes a framed download's reply: `OK 0 FIELDS bytes=<len of
    /// data>`, then `data` in one `DATA` frame and `END ok`.
    pub fn send_download(&mut self, fields: &str, data: &[u8]) {
        self.send(format!("OK 0 {fields} bytes={}\nDATA {}\n", data.len(), data.len()).as_bytes());
        self.send(data);
        self.send(b"END ok\n");
    }
}

impl FakeServer {
    /// Listens on `127.0.0.1:0`; `serve` gets each connection after its
    /// greeting (`name=FakeNN`) and the answer to `frames on`, with the
    /// connection's number from 1.
    pub fn start(serve: impl Fn(usize, FakeConn) + Send + Sync + 'static) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let serve = std::sync::Arc::new(serve);
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let n = i + 1;
                let body = format!("welcome Fake{n:02}\n");
                let greeting = format!("OK {} proto=1 name=Fake{n:02}\n{body}", body.len());
                let _ = stream.write_all(greeting.as_bytes());
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                // file-client asks for framed transfers first thing.
                let mut first = String::new();
                if reader.read_line(&mut first).is_ok() && first.trim_end() == "frames on" {
                    let _ = stream.write_all(b"OK 0 frames=on\n");
                }
                let serve = std::sync::Arc::clone(&serve);
                std::thread::spawn(move || serve(n, FakeConn { reader, stream }));
            }
        });
        FakeServer { addr, stop }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}
