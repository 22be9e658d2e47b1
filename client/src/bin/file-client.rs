//! `file-client`: talk to a file-server.

use std::cell::RefCell;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use common::text::escape;
use file_client::complete::Completion;
use file_client::connection::EventSink;
use file_client::error::{EXIT_IO, EXIT_OK, EXIT_USAGE};
use file_client::progress::ProgressMode;
use file_client::session::{Opener, Settings};
use file_client::{ClientError, Connection, Flow, Session};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};

/// Connect to a file-server: list, get and put files, chat with who is online.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Exit status: 0 ok, 1 connection or I/O error, 2 usage error, 3 server full, \
                  4 a command failed on the server."
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
    /// Display name to take on connect (as the `name` command).
    #[arg(long, value_name = "NICK")]
    name: Option<String>,
    /// `status` and `list` print JSON, one object per line.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long, short = 'q', conflicts_with = "progress")]
    quiet: bool,
    /// Progress bars even when stderr is not a terminal.
    #[arg(long)]
    progress: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.download_dir.is_dir() {
        eprintln!("file-client: download folder '{}' does not exist", args.download_dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let code =
        if args.commands.is_empty() && io::stdin().is_terminal() { run_interactive(&args) } else { run_batch(&args) };
    ExitCode::from(code)
}

/// An event as both modes show it: one escaped line.
fn event_line(text: &str) -> String {
    format!("{}\n", escape(text.trim_end_matches('\n')))
}

/// Makes the event sink for each (re)connection.
type SinkFactory = Box<dyn Fn() -> EventSink>;

/// Connects and, with `--name`, takes the name; reports failures itself.
fn connect(args: &Args, sinks: SinkFactory) -> Result<Session, u8> {
    let (addr, timeout) = (args.addr.clone(), Duration::from_secs(args.timeout));
    let mut opener: Opener =
        Box::new(move |previous| Connection::open(&addr, timeout, sinks().skipping_departure_of(previous)));
    let (conn, greeting) = match opener(None) {
        Ok(opened) => opened,
        Err(ClientError::Full) => {
            eprintln!("Server is full");
            return Err(ClientError::Full.exit_code());
        }
        Err(e) => {
            eprintln!("file-client: {e}");
            return Err(e.exit_code());
        }
    };
    let progress = match (args.quiet, args.progress) {
        (true, _) => ProgressMode::Never,
        (_, true) => ProgressMode::Always,
        _ => ProgressMode::Auto,
    };
    let settings = Settings { download_dir: args.download_dir.clone(), progress, json: args.json };
    let mut session = Session::new(conn, greeting, settings, opener);
    if let Some(nick) = &args.name {
        if let Err(e) = session.execute(&format!("name {}", file_client::command::quote_word(nick)), &mut io::sink()) {
            eprintln!("{e}");
            return Err(e.exit_code());
        }
    }
    Ok(session)
}

/// `-c` commands, or commands from a stdin that is not a terminal; the first
/// failure ends the run with its status. Events print in order with replies.
fn run_batch(args: &Args) -> u8 {
    let sinks: SinkFactory = Box::new(|| {
        EventSink::InBand(Box::new(|text| {
            let mut out = io::stdout().lock();
            let _ = out.write_all(event_line(text).as_bytes());
            let _ = out.flush();
        }))
    });
    let mut session = match connect(args, sinks) {
        Ok(session) => session,
        Err(code) => return code,
    };
    let lines: Box<dyn Iterator<Item = io::Result<String>>> = if args.commands.is_empty() {
        Box::new(io::stdin().lock().lines())
    } else {
        Box::new(args.commands.clone().into_iter().map(Ok))
    };
    // Replies go straight to the file descriptor: `cat` of a large file
    // should not pass through the line-buffered stdout. Everything written
    // is flushed per command, so events printed through stdout stay in order.
    let mut stdout: Box<dyn Write> = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::stdout()),
    };
    for line in lines {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("file-client: cannot read commands: {e}");
                return EXIT_IO;
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
    let _ = session.execute("exit", &mut io::sink());
    EXIT_OK
}

/// A prompt with line editing, history and completion; events appear above
/// it as they arrive. Errors are reported and the session goes on.
fn run_interactive(args: &Args) -> u8 {
    let config = Config::builder().completion_type(CompletionType::List).auto_add_history(true).build();
    let mut editor: Editor<Completion, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("file-client: cannot use the terminal: {e}");
            return EXIT_IO;
        }
    };
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let printer: Arc<Mutex<dyn ExternalPrinter + Send>> = match editor.create_external_printer() {
        Ok(printer) => Arc::new(Mutex::new(printer)),
        Err(e) => {
            eprintln!("file-client: cannot use the terminal: {e}");
            return EXIT_IO;
        }
    };
    let sinks: SinkFactory = Box::new(move || {
        let printer = Arc::clone(&printer);
        EventSink::Direct(Box::new(move |text| {
            if let Ok(mut printer) = printer.lock() {
                let _ = printer.print(event_line(text));
            }
        }))
    });
    let session = match connect(args, sinks) {
        Ok(session) => Rc::new(RefCell::new(session)),
        Err(code) => return code,
    };
    // Ctrl+C during a command cancels its transfer; at the prompt the
    // terminal is in raw mode and rustyline sees it as a key instead.
    let interrupted = session.borrow().interrupt_flag();
    if let Err(e) = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst)) {
        eprintln!("file-client: cannot handle Ctrl+C: {e}");
    }
    editor.set_helper(Some(Completion::new(Rc::clone(&session))));
    let mut stdout = io::stdout();
    let code = loop {
        let prompt = session.borrow().prompt();
        match editor.readline(&prompt) {
            Ok(line) => match session.borrow_mut().execute(&line, &mut stdout) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit) => break EXIT_OK,
                Err(e) if e.ends_session() => {
                    eprintln!("{e}");
                    break e.exit_code();
                }
                Err(e) => eprintln!("{e}"),
            },
            // Ctrl+C at the prompt clears the line.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => {
                let _ = session.borrow_mut().execute("exit", &mut io::sink());
                break EXIT_OK;
            }
            Err(e) => {
                eprintln!("file-client: cannot read input: {e}");
                break EXIT_IO;
            }
        }
    };
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    code
}

/// `$XDG_DATA_HOME/file-client/history`, else `~/.local/share/file-client/history`.
fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("file-client").join("history"))
}
