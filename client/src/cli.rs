//! The command line: [`Args`], and [`connect`], which opens the session the
//! prompt ([`crate::repl`]) or the batch runner ([`crate::batch`]) then
//! drives; [`crate::run`] picks which.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::text::escape;
use common::{Code, Event};

use crate::command::quote_word;
use crate::connection::{Connection, Dial, EventSink, Login};
use crate::discover;
use crate::error::ClientError;
use crate::link::Opener;
use crate::progress::ProgressMode;
use crate::session::Session;
use crate::settings::Settings;
use crate::trust::{self, Trust};

/// Connect to a file-server: list, get and put files, chat with who is online.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "file-client",
    version,
    about,
    after_help = "Bookmarks: named servers in ~/.config/file-client/config.toml \
                  ($XDG_CONFIG_HOME/file-client/config.toml), e.g. [hosts.work] address = \"nas:12345\", \
                  tls = true, user, fingerprint, download_dir; then: file-client work.\n\
                  Exit status: 0 ok, 1 connection or I/O error, 2 usage error, 3 server full, \
                  4 a command failed on the server, 5 server identity or login refused."
)]
pub struct Args {
    /// Server address: [USER@]HOST, HOST:PORT, IP or [IPv6]:PORT, or the name
    /// of a server announced on the LAN. With USER@, logs in to that account:
    /// the password from FILE_CLIENT_PASSWORD, else asked for. Without it: on
    /// a terminal, the servers heard on the LAN to pick from; else
    /// 127.0.0.1:12345.
    pub addr: Option<String>,
    /// One-shot use, as scp and ssh: `HOST[:PORT]:PATH [LOCAL]` downloads,
    /// `LOCAL... HOST[:PORT]:PATH` uploads (folders with -r), `HOST COMMAND
    /// ARGS...` runs one command.
    #[arg(value_name = "MORE", trailing_var_arg = true)]
    pub rest: Vec<String>,
    /// Transfers go at most this fast, bytes a second (K, M, G: powers of
    /// 1024), as curl --limit-rate and sftp -l.
    #[arg(long, value_name = "RATE", value_parser = |s: &str| common::text::parse_size(s))]
    pub limit_rate: Option<u64>,
    /// With a one-shot copy: whole folders (get -r, put -r).
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// List the servers announced on the LAN (mDNS) within 1.5 s: name,
    /// address, TLS and fingerprint (one JSON object each with --json), and exit.
    #[arg(long, conflicts_with_all = ["addr", "commands"])]
    pub discover: bool,
    /// Run this command, then exit (repeatable; the first failure stops the run).
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    pub commands: Vec<String>,
    /// Folder that downloads are written to.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub download_dir: PathBuf,
    /// Seconds to wait for the connection and for a reply that stops coming.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = whole_seconds)]
    pub timeout: u64,
    /// Display name to take on connect (as the `name` command).
    #[arg(long, value_name = "NICK")]
    pub name: Option<String>,
    /// `status` and `list` print JSON, one object per line.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short = 'q', conflicts_with = "progress")]
    pub quiet: bool,
    /// Progress bars even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Connect over TLS; a server seen for the first time is shown and
    /// remembered once accepted (known_servers), like ssh.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: accept only the certificate with this SHA-256 fingerprint
    /// (as the server prints it).
    #[arg(long, value_name = "HEX", requires = "tls", value_parser = fingerprint)]
    pub fingerprint: Option<String>,
    /// With --tls: remember a server not seen before without asking.
    #[arg(long, requires = "tls")]
    pub accept_new: bool,
    /// Log in (USER@HOST) without --tls, the password in clear.
    #[arg(long)]
    pub insecure_plaintext_login: bool,
    /// Print the shell completion script for SHELL and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,
    /// Print the manual page (roff) and exit.
    #[arg(long, exclusive = true)]
    pub man: bool,
}

/// `--timeout`: a whole number of seconds, at least 1.
fn whole_seconds(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(secs) if secs >= 1 => Ok(secs),
        _ => Err("a whole number of seconds, at least 1".into()),
    }
}

/// `--fingerprint`: 32 hex pairs, colons optional.
fn fingerprint(text: &str) -> Result<String, String> {
    common::tls::parse_fingerprint(text).ok_or_else(|| "64 hex digits, colons optional (AB:CD:...)".into())
}

/// An event as both modes show it: one escaped line, or with `--json` one
/// object (`type` `event`, its fields, its `text`).
pub fn event_line(event: &Event, json: bool) -> String {
    let text = event.text.trim_end_matches('\n');
    if json {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), "event".into());
        for (key, value) in &event.fields {
            if key != "type" && key != "text" {
                object.insert(key.clone(), value.clone().into());
            }
        }
        object.insert("text".into(), text.into());
        return crate::render::json_line(&serde_json::Value::Object(object));
    }
    format!("{}\n", escape(text))
}

/// Makes the event sink for each (re)connection.
pub type SinkFactory = Box<dyn Fn() -> EventSink>;

/// Connects and, with `--name`, takes the name; reports failures itself and
/// gives the exit status.
pub fn connect(args: &Args, sinks: SinkFactory) -> Result<Session, u8> {
    let mut args = args.clone();
    let given = match args.addr.clone() {
        Some(addr) => addr,
        None => pick_server(&mut args)?,
    };
    let args = &args;
    let (login, addr) = match given.split_once('@') {
        Some((user, host)) => match login(user, host, args) {
            Ok(login) => (Some(login), host.to_string()),
            Err(e) => {
                eprintln!("file-client: {e}");
                return Err(e.exit_code());
            }
        },
        None => (None, given.clone()),
    };
    // A name only the LAN's announcements know: their address, and TLS if announced.
    let (addr, announced_tls) = announced(&addr, args).unwrap_or((addr, false));
    let mut args = args.clone();
    args.tls |= announced_tls;
    let args = &args;
    let dial = Dial {
        addr,
        login,
        timeout: Duration::from_secs(args.timeout),
        tls: args.tls.then(|| Trust {
            known_servers: trust::default_known_servers(),
            pinned: args.fingerprint.clone(),
            accept_new: args.accept_new,
        }),
    };
    let progress = match (args.quiet, args.progress) {
        (true, _) => ProgressMode::Never,
        (_, true) => ProgressMode::Always,
        _ => ProgressMode::Auto,
    };
    let mut opener: Opener =
        Box::new(move |previous| Connection::open(&dial, sinks().skipping_departure_of(previous), progress));
    let mut opened = opener(None);
    if let Err(ClientError::UnknownServer { server, fingerprint }) = &opened {
        if ask_to_trust(server, fingerprint) {
            opened = opener(None);
        }
    }
    let (conn, greeting) = match opened {
        Ok(opened) => opened,
        // The server's own words for a refusal (`Server is full`).
        Err(ClientError::NotAdmitted(message)) => {
            eprintln!("{message}");
            return Err(ClientError::NotAdmitted(message).exit_code());
        }
        Err(e) => {
            eprintln!("file-client: {e}");
            return Err(e.exit_code());
        }
    };
    let terminal = std::io::stdout().is_terminal();
    let settings = Settings {
        download_dir: args.download_dir.clone(),
        progress,
        json: args.json,
        terminal,
        limit_rate: args.limit_rate.filter(|r| *r > 0),
    };
    let mut session = Session::new(conn, greeting, settings, opener);
    if let Some(nick) = &args.name {
        match session.take_name(nick) {
            Ok(()) => {}
            // Taken by someone else for now: connected all the same.
            Err(ClientError::Remote { code: Code::Exists, message }) => {
                eprintln!("{message}; you are {} (name {} to try again)", session.name(), quote_word(nick));
            }
            Err(e) => {
                eprintln!("{e}");
                return Err(e.exit_code());
            }
        }
    }
    Ok(session)
}

/// The account to log in to from `USER@HOST`.
fn login(user: &str, host: &str, args: &Args) -> Result<Login, ClientError> {
    if user.is_empty() {
        return Err(ClientError::Usage(format!("no account name before '@{}'", escape(host))));
    }
    if !args.tls && !args.insecure_plaintext_login {
        return Err(ClientError::Usage(
            "logging in needs --tls, so that the password never crosses the network in clear \
             (--insecure-plaintext-login sends it anyway)"
                .into(),
        ));
    }
    // Three tries where a person types the password, as ssh; one otherwise.
    let asked = std::env::var_os("FILE_CLIENT_PASSWORD").is_none() && std::io::stdin().is_terminal();
    Ok(Login::new(user, host, Arc::new(ask_password)).with_tries(if asked { 3 } else { 1 }))
}

/// The password of `user` at `host`: `FILE_CLIENT_PASSWORD` if set, else
/// asked for on the terminal without echo; never from the command line.
fn ask_password(user: &str, host: &str) -> Result<String, ClientError> {
    if let Ok(password) = std::env::var("FILE_CLIENT_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Usage(format!(
            "no password for {user}: set FILE_CLIENT_PASSWORD (no terminal to ask on)"
        )));
    }
    rpassword::prompt_password(format!("password for {user}@{host}: "))
        .map_err(|e| ClientError::Local(format!("cannot read the password: {e}")))
}

/// The servers announced on the LAN, heard for [`discover::LISTEN`]: what
/// `--discover` prints. How many were heard.
///
/// # Errors
/// As [`discover::discover`].
pub fn list_servers(json: bool) -> Result<usize, ClientError> {
    let found = discover::discover(discover::LISTEN)?;
    for server in &found {
        if json {
            print!("{}", crate::render::json_line(&server.json()));
        } else {
            println!("{}", server.describe());
        }
    }
    if found.is_empty() && !json {
        eprintln!("no file-server heard on the LAN (servers bound to 127.0.0.1 or started with --no-announce are not announced)");
    }
    Ok(found.len())
}

/// No address given: on a terminal, the servers heard on the LAN to pick
/// from (their TLS as announced); else, or with none heard, 127.0.0.1:12345.
fn pick_server(args: &mut Args) -> Result<String, u8> {
    const LOCAL: &str = "127.0.0.1:12345";
    if !std::io::stdin().is_terminal() || !args.commands.is_empty() {
        return Ok(LOCAL.into());
    }
    let found = discover::discover(discover::LISTEN).unwrap_or_default();
    if found.is_empty() {
        eprintln!("no file-server heard on the LAN; trying {LOCAL}");
        return Ok(LOCAL.into());
    }
    eprintln!("file-servers on the LAN (announced, so unverified: check a fingerprint before trusting it):");
    for (i, server) in found.iter().enumerate() {
        eprintln!("  {}. {}", i + 1, server.describe());
    }
    eprint!("connect to [1-{}, or an address]: ", found.len());
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return Err(crate::error::EXIT_USAGE);
    }
    let answer = answer.trim();
    let chosen = answer.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| found.get(i));
    match chosen {
        Some(server) => {
            args.tls |= server.tls;
            server.addr().map(|a| a.to_string()).ok_or(crate::error::EXIT_USAGE)
        }
        None if answer.is_empty() => Err(crate::error::EXIT_USAGE),
        None => Ok(answer.to_string()),
    }
}

/// A name no resolver knows, looked up among the servers announced on the
/// LAN: its address and whether it announced TLS, and a note of what was found.
fn announced(addr: &str, args: &Args) -> Option<(String, bool)> {
    let bare = !addr.contains(':') && addr.parse::<std::net::IpAddr>().is_err();
    if !bare || crate::transport::resolve(addr).is_ok() {
        return None;
    }
    let server = discover::find(addr).ok().flatten()?;
    let dial = server.addr()?;
    let tls = match (&server.fingerprint, server.tls) {
        (Some(fp), _) => {
            format!(", TLS, announced fingerprint {fp} (mDNS can be forged: compare it with the server's)")
        }
        (None, true) => ", TLS".into(),
        (None, false) => String::new(),
    };
    if !args.json {
        eprintln!("'{}' is announced on the LAN at {dial}{tls}", escape(addr));
    }
    Some((dial.to_string(), server.tls))
}

/// On a terminal, shows a TLS server not seen before and asks whether to
/// trust it, as ssh does; remembers it if so. False in batch mode (no
/// terminal to ask on) and when the user says no.
fn ask_to_trust(server: &str, fingerprint: &str) -> bool {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    eprintln!("The server {server} is not known yet. Its certificate's SHA-256 fingerprint is");
    eprintln!("  {fingerprint}");
    eprintln!("Compare it with the one the server printed when it started (listening on ...).");
    eprint!("Trust it and remember it? [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() || !answer.trim().eq_ignore_ascii_case("y") {
        return false;
    }
    match trust::default_known_servers() {
        Some(file) => match trust::remember(&file, server, fingerprint) {
            Ok(()) => {
                eprintln!("remembered {server} in {}", file.display());
                true
            }
            Err(e) => {
                eprintln!("file-client: cannot remember {server} in {}: {e}", file.display());
                false
            }
        },
        None => {
            eprintln!("file-client: no home folder to remember servers in (set HOME or XDG_DATA_HOME)");
            false
        }
    }
}
