//! `file-server`: share a folder on the local network. Parses arguments,
//! binds, and runs the library's [`Service`] (every door); errors become
//! exit statuses in one place ([`StartError::exit_code`]).

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use file_server::accounts::{self, Accounts};
use file_server::announce::{self, Announce, Announcement};
use file_server::cluster::{Cluster, Settings as ClusterSettings};
use file_server::http::HttpLimits;
use file_server::identity::{default_state_dir, Identity, IdentityError};
use file_server::proxy::Balancers;
use file_server::service::{TftpDoor, WebDoor};
use file_server::{Config, Repo, Service};

/// Share a folder over TCP; connect with file-client.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Address to listen on: an IP, or a host name such as localhost.
    #[arg(long, default_value = "0.0.0.0")]
    bind: String,
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
    /// Each download and upload goes at most this fast, bytes a second (K,
    /// M, G: powers of 1024), so one client cannot fill the uplink for everyone.
    #[arg(long, value_name = "RATE", value_parser = |s: &str| common::text::parse_size(s))]
    max_rate_per_client: Option<u64>,
    /// Seconds a silent client stays connected.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Connections being set up at once, across the doors: a TLS handshake,
    /// or (with --users) the time until the login, before a session's place
    /// is taken; one address may have 3. The next connections are closed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_startups: u32,
    /// Seconds a request line may take from its first byte to its end.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    line_timeout: u64,
    /// Sessions one address may hold at once (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_per_ip: u32,
    /// Seconds transfers may go on after Ctrl+C or SIGTERM.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Serve over TLS. Without --tls-cert/--tls-key, a self-signed certificate
    /// made on first start and kept in the state folder.
    #[arg(long)]
    tls: bool,
    /// Certificate chain (PEM, leaf first) to serve TLS with; implies --tls.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Folder for the server's own state (the generated certificate);
    /// default $XDG_STATE_HOME/file-server or ~/.local/state/file-server.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Serve the share over HTTP too (HTTPS with --tls) on this port; 0
    /// picks a free one (printed on stdout's second line).
    #[arg(long, value_name = "PORT")]
    http: Option<u16>,
    /// With --http: also print a QR code of the web side's address, for phones.
    #[arg(long, requires = "http")]
    qr: bool,
    /// Serve reads over TFTP (UDP) on this port too; 0 picks a free one
    /// (printed as `tftp on IP:PORT`).
    #[arg(long, value_name = "PORT")]
    tftp: Option<u16>,
    /// TFTP transfers at once; the next request is told the server is busy.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    tftp_max_transfers: u32,
    /// HTTP connections served at once; the next ones get 503.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    http_max_connections: u32,
    /// Seconds a kept-alive HTTP connection waits for its next request.
    #[arg(long, default_value_t = file_server::http::KEEP_ALIVE.as_secs(), value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    http_keep_alive: u64,
    /// HTTP connections one address may hold at once (0: no limit); the next get 503.
    #[arg(long, default_value_t = 8)]
    http_max_per_ip: u32,
    /// A name web requests may give as their Host besides this machine's
    /// addresses, localhost and its host name (repeatable); others get 421.
    #[arg(long, value_name = "NAME")]
    http_host: Vec<String>,
    /// TFTP transfers one address may have at once; the next request is told the server is busy.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1000))]
    tftp_max_per_ip: u32,
    /// Seconds a TFTP transfer waits for a peer that has never answered
    /// (its request may have come from a forged address) before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    tftp_give_up: u64,
    /// Connections from the --proxy-from addresses (a load balancer such as
    /// HAProxy with send-proxy-v2) begin with a PROXY protocol header (v1 or
    /// v2) naming the real client, whose address then counts everywhere.
    #[arg(long, requires = "proxy_from")]
    proxy_protocol: bool,
    /// With --proxy-protocol: an address or range (CIDR, e.g. 10.0.0.0/24)
    /// of a balancer (repeatable). A header from any other address closes
    /// the connection.
    #[arg(long, value_name = "CIDR", requires = "proxy_protocol")]
    proxy_from: Vec<file_server::proxy::Cidr>,
    /// The share's name on the LAN (mDNS), as file-client --discover and
    /// file managers list it (default: the host name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Do not announce the share on the LAN (mDNS / DNS-SD). A server bound
    /// to loopback alone is never announced.
    #[arg(long)]
    no_announce: bool,
    /// Act as one server with every instance on this Redis (one --max-clients
    /// and --max-per-ip, one status, one chat): redis://HOST:PORT[/DB].
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// With --cluster: this instance's name in status (default HOST:PORT).
    #[arg(long, value_name = "NAME", requires = "cluster")]
    instance: Option<String>,
    /// With --cluster: seconds what an instance holds in Redis outlives it
    /// if it dies (its places, its name in status); it renews them four
    /// times as often.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "cluster",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    cluster_expiry: u64,
    /// With --cluster: refuse new sessions (503) while Redis cannot be
    /// reached, rather than admit a local share of --max-clients.
    #[arg(long, requires = "cluster")]
    cluster_strict: bool,
    /// Accounts file (made with `file-server adduser`): sessions must log in,
    /// and have write rights to change files. Needs --tls.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// With --users: visitors without an account may read (list, get, status).
    #[arg(long, value_name = "RIGHTS", requires = "users")]
    anonymous: Option<Anonymous>,
    /// With --users and no --tls: allow logins anyway, passwords in clear.
    #[arg(long, requires = "users")]
    insecure_plaintext_login: bool,
    /// With --users: seconds a connection may take to log in.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    login_timeout: u64,
    /// With --users: seconds the first failed login waits before its answer;
    /// each further failure from the same address waits twice as long (up to 64x).
    #[arg(long, default_value_t = 0.5, value_name = "SECS", value_parser = seconds)]
    login_delay: f64,
    /// Print the shell completion script for SHELL and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<clap_complete::Shell>,
    /// Print the manual page (roff) and exit.
    #[arg(long, exclusive = true)]
    man: bool,
}

/// What visitors without an account may do.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Anonymous {
    /// List, download, status and chat; no changes.
    Read,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Add an account to a users file, or change its password and rights.
    /// The password is read from stdin when it is not a terminal, else asked
    /// for twice.
    Adduser {
        /// The users file (made, mode 0600, if missing).
        #[arg(long, value_name = "FILE")]
        users: PathBuf,
        /// The account's name (letters, digits, - _ .; up to 32).
        name: String,
        /// The account may change files (put, mkdir, rm, mv), not only read.
        #[arg(long)]
        write: bool,
    },
}

/// `--login-delay`: seconds, fractions allowed, 0 to 60.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.0..=60.0).contains(&secs) => Ok(secs),
        _ => Err("seconds from 0 to 60 (0.5, 2)".into()),
    }
}

/// Why the server could not start or run, and the exit status each gets.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The command line asks for something impossible: a missing folder, a
    /// port in use. Status 2.
    #[error("{0}")]
    Usage(String),
    /// The machine refused something it should give (threads, signals). Status 1.
    #[error("{0}")]
    Failed(String),
}

impl StartError {
    fn exit_code(&self) -> ExitCode {
        match self {
            StartError::Usage(_) => ExitCode::from(2),
            StartError::Failed(_) => ExitCode::from(1),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut out = std::io::stdout();
    if let Some(shell) = args.completions {
        clap_complete::generate(shell, &mut Args::command(), "file-server", &mut out);
        return ExitCode::SUCCESS;
    }
    if args.man {
        return match clap_mangen::Man::new(Args::command()).render(&mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    if let Some(Sub::Adduser { users, name, write }) = &args.command {
        return adduser(users, name, *write);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!, which panics when stderr is gone.
            let _ = writeln!(std::io::stderr(), "file-server: {e}");
            e.exit_code()
        }
    }
}

/// `file-server adduser`: reads the password and writes the account.
fn adduser(users: &std::path::Path, name: &str, write: bool) -> ExitCode {
    let fail = |message: String| {
        let _ = writeln!(std::io::stderr(), "file-server adduser: {message}");
        ExitCode::from(2)
    };
    if let Err(e) = accounts::check_name(name) {
        return fail(e.to_string());
    }
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password(format!("password for {name}: "));
        let again = rpassword::prompt_password("again: ");
        match (first, again) {
            (Ok(a), Ok(b)) if a == b => a,
            (Ok(_), Ok(_)) => return fail("the passwords differ; nothing changed".into()),
            (Err(e), _) | (_, Err(e)) => return fail(format!("cannot read the password: {e}")),
        }
    } else {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().read_line(&mut line) {
            return fail(format!("cannot read the password from stdin: {e}"));
        }
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    match accounts::add_user(users, name, &password, write) {
        Ok(added) => {
            let rights = if write { "read and write" } else { "read only" };
            let done = if added { "added" } else { "updated" };
            let _ = writeln!(std::io::stdout(), "{done} {name} ({rights}) in {}", users.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

fn init_logging() {
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
}

/// Shares the folder until a signal stops the server.
/// Open files a session may hold at once: its connection, two more handles
/// on it (writer, shutdown), and the file it sends or receives.
const FILES_PER_SESSION: u64 = 4;

/// Memory mappings a session's two threads take (stack and guard page each),
/// with room for their allocations.
const MAPPINGS_PER_SESSION: u64 = 5;

/// Files and mappings the server needs besides its sessions.
const RESERVED: u64 = 64;

/// Open files a web connection or a TFTP transfer holds at once: its
/// socket and the file it sends or receives.
const FILES_PER_DOOR_CONNECTION: u64 = 2;

/// Raises the soft limit on open files to the hard one, then checks that
/// every door can be full at once (`max_clients` sessions, and the web
/// side's and TFTP's own caps): a cap the system cannot honour is refused
/// now, not discovered by the client who finds it.
/// `--cluster`: this instance's membership, named `--instance` or HOST:PORT.
fn cluster(args: &Args, listener: &TcpListener) -> Result<Option<Arc<Cluster>>, StartError> {
    let Some(url) = &args.cluster else { return Ok(None) };
    let port = listener.local_addr().map_err(|e| StartError::Failed(e.to_string()))?.port();
    let host = || rustix::system::uname().nodename().to_string_lossy().into_owned();
    let instance = args.instance.clone().unwrap_or_else(|| format!("{}:{port}", host()));
    if instance.is_empty() || instance.contains(char::is_whitespace) {
        return Err(StartError::Usage(format!("--instance '{instance}': a name without spaces, please")));
    }
    let settings = ClusterSettings {
        url: url.clone(),
        instance,
        expiry: Duration::from_secs(args.cluster_expiry),
        strict: args.cluster_strict,
    };
    Cluster::new(settings).map(Some).map_err(StartError::Usage)
}

fn check_capacity(args: &Args) -> Result<(), StartError> {
    let max_clients = u64::from(args.max_clients);
    // Connections being set up run on session threads too.
    let threads = max_clients + u64::from(args.max_startups);
    let doors = args.http.map_or(0, |_| u64::from(args.http_max_connections))
        + args.tftp.map_or(0, |_| u64::from(args.tftp_max_transfers));
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut files = getrlimit(Resource::Nofile);
    if files.current < files.maximum {
        files.current = files.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, files) {
            tracing::debug!("cannot raise the open-file limit: {e}");
        }
    }
    let allowed = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let needed = threads * FILES_PER_SESSION + doors * FILES_PER_DOOR_CONNECTION + RESERVED;
    if needed > allowed {
        let with_doors = if doors > 0 { " with the web side's and TFTP's caps" } else { "" };
        return Err(StartError::Usage(format!(
            "--max-clients {max_clients}{with_doors} needs about {needed} open files, but this system allows \
             {allowed} (ulimit -n); lower them or raise the limit"
        )));
    }
    let mappings = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok());
    let needed = threads * MAPPINGS_PER_SESSION + RESERVED;
    match mappings {
        Some(allowed) if needed > allowed => Err(StartError::Usage(format!(
            "--max-clients {max_clients} needs about {needed} memory mappings, but this system allows {allowed} \
             (vm.max_map_count); lower --max-clients or raise the limit"
        ))),
        _ => Ok(()),
    }
}

/// The TLS identity to serve with, if TLS is on.
fn identity(args: &Args) -> Result<Option<Identity>, StartError> {
    let usage = |e: IdentityError| StartError::Usage(e.to_string());
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Identity::load(cert, key).map_err(usage)?,
        _ if args.tls => {
            let dir = args.state_dir.clone().or_else(default_state_dir).ok_or(IdentityError::NoStateDir);
            Identity::self_signed(&dir.map_err(usage)?).map_err(usage)?
        }
        _ => return Ok(None),
    };
    tracing::info!("TLS certificate {} sha256 {}", identity.cert_path.display(), identity.fingerprint);
    Ok(Some(identity))
}

/// The web side's URLs for people on the network: for each address of this
/// machine the listener takes (not loopback nor link-local when it listens
/// on all of them), `SCHEME://IP:PORT/`.
fn lan_urls(bound: SocketAddr, scheme: &str) -> Vec<String> {
    let url = |ip: IpAddr| format!("{scheme}://{}/", SocketAddr::new(ip, bound.port()));
    if !bound.ip().is_unspecified() {
        return vec![url(bound.ip())];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .iter()
        .filter(|i| !i.is_loopback() && !i.is_link_local())
        .map(if_addrs::Interface::ip)
        .filter(|ip| bound.is_ipv6() || ip.is_ipv4())
        .collect();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    ips.into_iter().map(url).collect()
}

/// `text` as a QR code in text (two rows of modules per line), with its
/// quiet zone; light modules drawn, as `qrencode -t UTF8` does, for the
/// light-on-dark terminals most people have.
fn qr_code(text: &str) -> String {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let mut art = code.render::<Dense1x2>();
            art.dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true);
            art.build() + "\n"
        }
        Err(e) => format!("(no QR code: {e})\n"),
    }
}

/// Listens on `bind` (an IP, or a name that resolves: the first of its
/// addresses that can be bound) and `port`.
fn listen(bind: &str, port: u16) -> Result<TcpListener, StartError> {
    let addrs: Vec<SocketAddr> = match bind.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (bind, port)
            .to_socket_addrs()
            .map_err(|e| StartError::Usage(format!("cannot resolve --bind {bind}: {e}")))?
            .collect(),
    };
    let mut last = None;
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(format!("cannot listen on {addr}: {e}")),
        }
    }
    Err(StartError::Usage(last.unwrap_or_else(|| format!("--bind {bind} has no addresses"))))
}

fn run(args: Args) -> Result<(), StartError> {
    init_logging();
    check_capacity(&args)?;
    let repo = Repo::open(&args.repo).map_err(|e| {
        StartError::Usage(format!("cannot share '{}': {e} (it must be an existing folder)", args.repo.display()))
    })?;
    let identity = identity(&args)?;
    let accounts = match &args.users {
        None => None,
        Some(_) if identity.is_none() && !args.insecure_plaintext_login => {
            return Err(StartError::Usage(
                "--users needs --tls, so that passwords never cross the network in clear \
                 (--insecure-plaintext-login overrides this)"
                    .into(),
            ))
        }
        Some(file) => {
            let loaded = Accounts::load(file).map_err(|e| StartError::Usage(e.to_string()))?;
            if let Some(mode) = accounts::loose_mode(file) {
                tracing::warn!(
                    "{} can be read by others (mode {mode:03o}): its password hashes can be guessed at offline; \
                     chmod 600 {}",
                    file.display(),
                    file.display()
                );
            }
            if loaded.is_empty() {
                return Err(StartError::Usage(format!(
                    "{} has no accounts; add one with file-server adduser --users {} NAME",
                    file.display(),
                    file.display()
                )));
            }
            tracing::info!("{} account(s) from {}", loaded.len(), file.display());
            Some(std::sync::Arc::new(loaded))
        }
    };
    let listener = listen(&args.bind, args.port)?;
    let http_listener = args.http.map(|port| listen(&args.bind, port)).transpose()?;
    let tftp_socket = match args.tftp {
        None => None,
        Some(port) => {
            let addr =
                SocketAddr::new(listener.local_addr().map_err(|e| StartError::Failed(e.to_string()))?.ip(), port);
            Some(UdpSocket::bind(addr).map_err(|e| StartError::Usage(format!("cannot listen on {addr} (UDP): {e}")))?)
        }
    };
    let config = Config {
        max_clients: args.max_clients as usize,
        allow_uploads: args.allow_uploads,
        max_upload_size: args.max_upload_size,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        line_timeout: Duration::from_secs(args.line_timeout),
        max_per_ip: args.max_per_ip as usize,
        grace: Duration::from_secs(args.grace),
        tls: identity.as_ref().map(|id| id.config.clone()),
        accounts,
        anonymous_read: matches!(args.anonymous, Some(Anonymous::Read)),
        login_timeout: Duration::from_secs(args.login_timeout),
        login_delay: Duration::from_secs_f64(args.login_delay),
        max_startups: args.max_startups as usize,
        proxy: args.proxy_protocol.then(|| Balancers::new(args.proxy_from.clone())),
        cluster: cluster(&args, &listener)?,
        max_rate_per_client: args.max_rate_per_client.filter(|r| *r > 0),
    };
    let failed = |e: std::io::Error| StartError::Failed(e.to_string());
    let web = http_listener.map(|listener| WebDoor {
        listener,
        limits: HttpLimits {
            max_connections: args.http_max_connections as usize,
            max_per_ip: args.http_max_per_ip as usize,
            hosts: args.http_host.clone(),
            keep_alive: Duration::from_secs(args.http_keep_alive),
        },
    });
    let tftp = tftp_socket.map(|socket| TftpDoor {
        socket,
        max_transfers: args.tftp_max_transfers as usize,
        max_per_ip: args.tftp_max_per_ip as usize,
        unheard_limit: Duration::from_secs(args.tftp_give_up),
    });
    let service = Service::new(listener, repo, config, web, tftp).map_err(failed)?;
    let local = service.local_addr().map_err(failed)?;
    let handle = service.shutdown_handle().map_err(failed)?;
    let signals = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        // Not eprintln!, which panics when stderr is gone (the terminal was
        // closed: SIGHUP), and then nothing would shut the server down.
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = writeln!(std::io::stderr(), "file-server: shutting down (again to quit at once)");
            handle.trigger();
        } else {
            let _ = writeln!(std::io::stderr(), "file-server: quitting now");
            std::process::exit(130);
        }
    })
    .map_err(|e| StartError::Failed(format!("cannot install the signal handler: {e}")))?;
    tracing::info!(
        "sharing '{}' on {local}, at most {} clients, uploads {}",
        args.repo.display(),
        args.max_clients,
        if args.allow_uploads { "on" } else { "off" }
    );
    let mut stdout = std::io::stdout();
    // One line a user can read out to others: where, and (with TLS) which
    // certificate, in the form `openssl x509 -noout -fingerprint -sha256` prints.
    match &identity {
        None => writeln!(stdout, "listening on {local}"),
        Some(id) => writeln!(stdout, "listening on {local} tls sha256 Fingerprint={}", id.fingerprint),
    }
    .ok();
    let mut urls = Vec::new();
    if let Some(addr) = service.web_addr().map_err(failed)? {
        let scheme = if identity.is_some() { "https" } else { "http" };
        let _ = writeln!(stdout, "http on {addr}");
        urls = lan_urls(addr, scheme);
        tracing::info!("web side on {scheme}://{addr}/");
    }
    if let Some(addr) = service.tftp_addr().map_err(failed)? {
        let _ = writeln!(stdout, "tftp on {addr}");
        let what = if args.allow_uploads { "reads and writes" } else { "reads only" };
        tracing::info!("TFTP on {addr}: {what}");
    }
    // For people: the web addresses (after the lines programs read).
    for url in &urls {
        let _ = writeln!(stdout, "  {url}");
    }
    if let (true, Some(first)) = (args.qr, urls.first()) {
        let _ = write!(stdout, "{}", qr_code(first));
    }
    let _ = stdout.flush();
    let announcement = if args.no_announce {
        None
    } else {
        let what = Announce {
            name: args.name.clone().unwrap_or_else(announce::host_name),
            line: local,
            web: service.web_addr().map_err(failed)?,
            fingerprint: identity.as_ref().map(|id| id.fingerprint.clone()),
        };
        // Not being found is no reason not to serve: said, and served.
        Announcement::start(&what).unwrap_or_else(|e| {
            tracing::warn!("not announced on the LAN: {e}");
            None
        })
    };
    let served = service.run().map_err(failed);
    drop(announcement);
    served
}
