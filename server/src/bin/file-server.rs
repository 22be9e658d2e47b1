//! `file-server`: share a folder on the local network.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use file_server::{Config, Repo, Server};

/// Share a folder over TCP; connect with file-client.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Port to listen on; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = common::DEFAULT_PORT)]
    port: u16,
    /// Clients served at once; the next one is told "Server is full".
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_clients: u32,
    /// Folder to share.
    #[arg(long, default_value = "server_files")]
    repo: PathBuf,
    /// Accept uploads (put); without it the share is read-only.
    #[arg(long)]
    allow_uploads: bool,
    /// Largest upload accepted: bytes, or with K, M, G, T (powers of 1024).
    #[arg(long, default_value = "1G", value_parser = |s: &str| common::text::parse_size(s))]
    max_upload_size: u64,
    /// Seconds a silent client stays connected.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Seconds transfers may go on after Ctrl+C or SIGTERM.
    #[arg(long, default_value_t = 10)]
    grace: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A server outlives the terminal it was started from: once stderr is
        // gone, log lines are lost, but no thread may fail over it.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let repo = match Repo::open(&args.repo) {
        Ok(repo) => repo,
        Err(e) => {
            eprintln!("file-server: cannot share '{}': {e} (it must be an existing folder)", args.repo.display());
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("file-server: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        max_clients: args.max_clients as usize,
        allow_uploads: args.allow_uploads,
        max_upload_size: args.max_upload_size,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        grace: Duration::from_secs(args.grace),
    };
    let server = match Server::new(listener, repo, config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("file-server: {e}");
            return ExitCode::from(1);
        }
    };
    let (local, handle) = match (server.local_addr(), server.shutdown_handle()) {
        (Ok(local), Ok(handle)) => (local, handle),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("file-server: {e}");
            return ExitCode::from(1);
        }
    };
    let signals = AtomicUsize::new(0);
    let installed = ctrlc::set_handler(move || {
        // Not eprintln!, which panics when stderr is gone (the terminal was
        // closed: SIGHUP), and then nothing would shut the server down.
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = writeln!(std::io::stderr(), "file-server: shutting down (again to quit at once)");
            handle.trigger();
        } else {
            let _ = writeln!(std::io::stderr(), "file-server: quitting now");
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        eprintln!("file-server: cannot install the signal handler: {e}");
        return ExitCode::from(1);
    }
    tracing::info!(
        "sharing '{}' on {local}, at most {} clients, uploads {}",
        args.repo.display(),
        args.max_clients,
        if args.allow_uploads { "on" } else { "off" }
    );
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {local}");
    let _ = stdout.flush();
    server.run();
    ExitCode::SUCCESS
}
