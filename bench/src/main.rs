//! `file-bench`: the load tool behind `bench/run.sh`. It speaks the real
//! protocol (and RESP, to drive redis the same way), checks every reply, and
//! prints one line of results. Every loop is bounded in time and stops by
//! itself. Nothing here runs under `cargo test`.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// Load generator for file-server benchmarks.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Echo round trips (`ping` → `ping ACK`) from N clients at once.
    Echo {
        /// Server address.
        addr: SocketAddr,
        /// Concurrent clients.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// PING round trips against redis, driven the same way.
    Redis {
        /// Server address.
        addr: SocketAddr,
        /// Concurrent clients.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// connect → greeting → exit → close cycles, one after another.
    Sessions {
        /// Server address.
        addr: SocketAddr,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Refused connections per second from `threads` flooders (the server must be full).
    Flood {
        /// Server address.
        addr: SocketAddr,
        /// Flooding threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Hang up as soon as connected, without waiting for the refusal, as
        /// a hostile peer would: connections come as fast as the flooders can
        /// make them (only connects are counted).
        #[arg(long)]
        hang_up: bool,
    },
    /// Newcomers at a steady rate: each connects and waits for its first
    /// line (greeting or refusal); prints p50/p99/max of that wait in ms.
    Probe {
        /// Server address.
        addr: SocketAddr,
        /// Newcomers in all.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Newcomers per second.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
    },
    /// A `say` flood at clients that never read: `sleepers` sessions are
    /// opened and left unread, then one talker says 4 KiB of control
    /// characters (16 KiB once escaped) `count` times as fast as it can.
    Say {
        /// Server address.
        addr: SocketAddr,
        /// Sessions that never read.
        #[arg(long, default_value_t = 150)]
        sleepers: usize,
        /// Lines said.
        #[arg(long, default_value_t = 1200)]
        count: usize,
    },
    /// Opens N sessions, reads their greetings, holds them for the given time.
    Idle {
        /// Server address.
        addr: SocketAddr,
        /// Sessions to hold.
        #[arg(long)]
        clients: usize,
        /// Seconds to hold them once all are open.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

fn main() -> ExitCode {
    let result = match Args::parse().mode {
        Mode::Echo { addr, clients, seconds } => round_trips(addr, clients, seconds, Protocol::Echo),
        Mode::Redis { addr, clients, seconds } => round_trips(addr, clients, seconds, Protocol::Redis),
        Mode::Sessions { addr, seconds } => sessions(addr, seconds),
        Mode::Flood { addr, threads, seconds, hang_up } => flood(addr, threads, seconds, hang_up),
        Mode::Idle { addr, clients, seconds } => idle(addr, clients, seconds),
        Mode::Probe { addr, count, rate } => probe(addr, count, rate),
        Mode::Say { addr, sleepers, count } => say_flood(addr, sleepers, count),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("file-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Echo,
    Redis,
}

/// Reads the greeting header and body; `Err` if the server refused.
fn read_greeting(reader: &mut BufReader<TcpStream>) -> Result<(), String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("greeting: {e}"))?;
    let len: usize = line
        .strip_prefix("OK ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("refused: {}", line.trim_end()))?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(|e| format!("greeting: {e}"))
}

/// Reads the next reply's header line, skipping events (others joining and
/// leaving) before it.
fn reply_header(reader: &mut BufReader<TcpStream>, line: &mut String) -> Result<(), String> {
    loop {
        line.clear();
        reader.read_line(line).map_err(|e| format!("reply: {e}"))?;
        let Some(rest) = line.strip_prefix("EVT ") else { return Ok(()) };
        // `EVT <len> [key=value ...]`
        let len = rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
        let len = len.ok_or_else(|| format!("bad event {line:?}"))?;
        std::io::copy(&mut reader.by_ref().take(len), &mut std::io::sink()).map_err(|e| format!("event: {e}"))?;
    }
}

fn connect(addr: SocketAddr) -> Result<(BufReader<TcpStream>, TcpStream), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    Ok((reader, stream))
}

/// One client's loop: request, check the reply, record the latency in µs.
/// `admitted` hears once the client is connected (and greeted).
fn client_loop(
    addr: SocketAddr,
    protocol: Protocol,
    deadline: Instant,
    admitted: mpsc::Sender<()>,
) -> Result<Vec<u32>, String> {
    let (mut reader, mut stream) = connect(addr)?;
    let (request, expected): (&[u8], &[u8]) = match protocol {
        Protocol::Echo => {
            read_greeting(&mut reader)?;
            (b"ping\n", b"ping ACK\n")
        }
        Protocol::Redis => (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
    };
    let _ = admitted.send(());
    let mut reply = vec![0; expected.len()];
    let mut header = String::new();
    let mut latencies = Vec::with_capacity(1 << 16);
    while Instant::now() < deadline {
        let start = Instant::now();
        stream.write_all(request).map_err(|e| format!("send: {e}"))?;
        if let Protocol::Echo = protocol {
            reply_header(&mut reader, &mut header)?;
            if header != "OK 9\n" {
                return Err(format!("unexpected reply {header:?}"));
            }
        }
        reader.read_exact(&mut reply).map_err(|e| format!("reply: {e}"))?;
        if reply != expected {
            return Err(format!("unexpected reply {:?}", String::from_utf8_lossy(&reply)));
        }
        latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    if let Protocol::Echo = protocol {
        // Waits for the close: the slot is free then, for whatever runs next.
        stream.write_all(b"exit\n").map_err(|e| format!("exit: {e}"))?;
        reader.read_to_end(&mut Vec::new()).map_err(|e| format!("exit: {e}"))?;
    }
    Ok(latencies)
}

fn round_trips(addr: SocketAddr, clients: usize, seconds: f64, protocol: Protocol) -> Result<String, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let (admitted, all_in) = mpsc::channel();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let admitted = admitted.clone();
            thread::spawn(move || client_loop(addr, protocol, deadline, admitted))
        })
        .collect();
    drop(admitted);
    // Tells a script on stderr once every client holds its session.
    if all_in.iter().take(clients).count() == clients {
        eprintln!("connected={clients}");
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.join().map_err(|_| "a client thread panicked".to_string())??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Ok(format!(
        "requests={} rps={:.0} p50_us={} p99_us={} p999_us={}",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    ))
}

fn sessions(addr: SocketAddr, seconds: f64) -> Result<String, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut cycles = 0u64;
    while Instant::now() < deadline {
        let (mut reader, mut stream) = connect(addr)?;
        read_greeting(&mut reader)?;
        stream.write_all(b"exit\n").map_err(|e| e.to_string())?;
        // Wait for the close: the slot is free then.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).map_err(|e| format!("exit: {e}"))?;
        if rest != b"OK 4\nbye\n" {
            return Err(format!("unexpected goodbye {:?}", String::from_utf8_lossy(&rest)));
        }
        cycles += 1;
    }
    Ok(format!("cycles={cycles} per_sec={:.0}", cycles as f64 / started.elapsed().as_secs_f64()))
}

fn flood(addr: SocketAddr, threads: usize, seconds: f64, hang_up: bool) -> Result<String, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let refused = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(None));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (refused, failed) = (Arc::clone(&refused), Arc::clone(&failed));
            thread::spawn(move || {
                // A connect can wait out a SYN retry (1 s and more) when the
                // server's backlog is full: every wait ends by the deadline,
                // and what happens after it does not count.
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    let Ok(stream) = TcpStream::connect_timeout(&addr, left) else { continue };
                    if hang_up {
                        refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                    if stream.set_read_timeout(Some(left)).is_err() {
                        continue;
                    }
                    let mut line = String::new();
                    let result = BufReader::new(stream).read_line(&mut line);
                    if Instant::now() >= deadline {
                        break;
                    }
                    match result {
                        Ok(_) if line == "ERR 503 Server is full\n" => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => *failed.lock().unwrap() = Some(format!("got {line:?}")),
                        Err(e) => *failed.lock().unwrap() = Some(format!("read failed: {e}")),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    if let Some(what) = failed.lock().unwrap().take() {
        return Err(format!("a flood connection was admitted or got an unexpected reply: {what}"));
    }
    let n = refused.load(Ordering::Relaxed);
    Ok(format!("refused={n} per_sec={:.0}", n as f64 / started.elapsed().as_secs_f64()))
}

/// How long one newcomer waits for its greeting or refusal; each newcomer
/// has its own thread, so one caught in a SYN retry does not delay the next.
fn probe(addr: SocketAddr, count: u64, rate: f64) -> Result<String, String> {
    let started = Instant::now();
    let probes: Vec<_> = (0..count)
        .map(|i| {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            thread::sleep(due.saturating_duration_since(Instant::now()));
            thread::spawn(move || -> Result<f64, String> {
                let began = Instant::now();
                let stream =
                    TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
                stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).map_err(|e| format!("first line: {e}"))?;
                if !(line.starts_with("OK ") || line.starts_with("ERR 503 ")) {
                    return Err(format!("first line {line:?}"));
                }
                Ok(began.elapsed().as_secs_f64() * 1000.0)
            })
        })
        .collect();
    let mut waits = probes
        .into_iter()
        .map(|p| p.join().map_err(|_| "a probe panicked".to_string())?)
        .collect::<Result<Vec<f64>, String>>()?;
    waits.sort_by(f64::total_cmp);
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    let over = waits.iter().filter(|&&ms| ms > 200.0).count();
    Ok(format!(
        "probes={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} over_200ms={over}",
        waits.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    ))
}

fn say_flood(addr: SocketAddr, sleepers: usize, count: usize) -> Result<String, String> {
    let mut held = Vec::with_capacity(sleepers);
    for _ in 0..sleepers {
        let (mut reader, stream) = connect(addr)?;
        read_greeting(&mut reader)?;
        held.push(stream);
    }
    let (mut reader, mut stream) = connect(addr)?;
    read_greeting(&mut reader)?;
    let request = format!("say {}\n", "\u{1}".repeat(4000));
    let (mut said, mut refused, mut line) = (0, 0, String::new());
    for _ in 0..count {
        stream.write_all(request.as_bytes()).map_err(|e| format!("say: {e}"))?;
        reply_header(&mut reader, &mut line)?;
        match line.split(' ').take(2).collect::<Vec<_>>().as_slice() {
            ["OK", "0"] => said += 1,
            ["ERR", "429"] => refused += 1,
            _ => return Err(format!("say got {line:?}")),
        }
    }
    Ok(format!("sleepers={} said={said} refused={refused}", held.len()))
}

fn idle(addr: SocketAddr, clients: usize, seconds: f64) -> Result<String, String> {
    let mut held = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (mut reader, stream) = connect(addr)?;
        read_greeting(&mut reader)?;
        held.push(stream);
    }
    println!("holding={clients}");
    let _ = std::io::stdout().flush();
    thread::sleep(Duration::from_secs_f64(seconds));
    Ok(format!("held={}", held.len()))
}
