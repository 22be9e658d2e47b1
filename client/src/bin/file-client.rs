//! `file-client`: talk to a file-server.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::text::escape;
use file_client::error::{EXIT_OK, EXIT_USAGE};
use file_client::{ClientError, Connection, Flow, Session};

/// Connect to a file-server: list, get and put files, see who is online.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Exit status: 0 ok, 1 connection or I/O error, 2 usage error, 3 server full, 4 a command failed on the server."
)]
struct Args {
    /// Server address: HOST, HOST:PORT, IP or [IPv6]:PORT.
    #[arg(default_value = "127.0.0.1:12345")]
    addr: String,
    /// Run this command, then exit (repeatable; the first failure stops the run).
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    commands: Vec<String>,
    /// Folder that downloads are written to.
    #[arg(long, value_name = "DIR", default_value = ".")]
    download_dir: PathBuf,
    /// Seconds to wait for the connection and for a reply that stops coming.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.download_dir.is_dir() {
        eprintln!("file-client: download folder '{}' does not exist", args.download_dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let on_event = Box::new(|text: &str| {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{}", escape(text.trim_end_matches('\n')));
        let _ = stdout.flush();
    });
    let (conn, greeting) = match Connection::open(&args.addr, Duration::from_secs(args.timeout), on_event) {
        Ok(opened) => opened,
        Err(ClientError::Full) => {
            eprintln!("Server is full");
            return ExitCode::from(ClientError::Full.exit_code());
        }
        Err(e) => {
            eprintln!("file-client: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let mut session = Session::new(conn, greeting, args.download_dir);
    let stdin = io::stdin();
    let code = if !args.commands.is_empty() {
        run_batch(&mut session, args.commands.into_iter().map(Ok))
    } else if stdin.is_terminal() {
        run_interactive(&mut session, stdin.lock())
    } else {
        run_batch(&mut session, stdin.lock().lines())
    };
    ExitCode::from(code)
}

/// Runs commands in order; the first failure ends the run with its status.
fn run_batch(session: &mut Session, lines: impl Iterator<Item = io::Result<String>>) -> u8 {
    let mut stdout = io::stdout();
    for line in lines {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("file-client: cannot read commands: {e}");
                return ClientError::Local(String::new()).exit_code();
            }
        };
        match session.execute(&line, &mut stdout) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => return EXIT_OK,
            Err(e) => {
                eprintln!("{e}");
                return e.exit_code();
            }
        }
    }
    say_goodbye(session);
    EXIT_OK
}

/// A prompt on a terminal: errors are reported and the session goes on.
fn run_interactive(session: &mut Session, mut input: impl BufRead) -> u8 {
    let mut stdout = io::stdout();
    let mut line = String::new();
    loop {
        print!("{}", session.prompt());
        let _ = stdout.flush();
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => {
                println!();
                say_goodbye(session);
                return EXIT_OK;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("file-client: cannot read input: {e}");
                return ClientError::Local(String::new()).exit_code();
            }
        }
        match session.execute(&line, &mut stdout) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => return EXIT_OK,
            Err(e) if e.ends_session() => {
                eprintln!("{e}");
                return e.exit_code();
            }
            Err(e) => eprintln!("{e}"),
        }
    }
}

fn say_goodbye(session: &mut Session) {
    let _ = session.execute("exit", &mut io::sink());
}
