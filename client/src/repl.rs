//! The prompt: line editing, history and completion (rustyline); events
//! appear above the line being typed as they arrive. A failed command is
//! reported and the session goes on, unless the connection is gone.

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rustyline::config::{Behavior, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};

use crate::cli::{connect, event_line, Args, SinkFactory};
use crate::complete::Completion;
use crate::connection::EventSink;
use crate::error::{ClientError, EXIT_IO, EXIT_OK};
use crate::session::{Flow, Session};

/// Runs the prompt until the user leaves; the exit status.
pub fn run(args: &Args) -> u8 {
    // The prompt talks to the terminal itself, so stdout may be a pipe
    // (`file-client | tee log`): only stdin has to be a terminal.
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .behavior(Behavior::PreferTerm)
        .build();
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
    let json = args.json;
    let sinks: SinkFactory = Box::new(move || {
        let printer = Arc::clone(&printer);
        EventSink::Direct(Box::new(move |event| {
            if let Ok(mut printer) = printer.lock() {
                let _ = printer.print(event_line(event, json));
            }
        }))
    });
    let session = match connect(args, sinks) {
        Ok(session) => Rc::new(RefCell::new(session)),
        Err(code) => return code,
    };
    let code = prompt_loop(&mut editor, &session);
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Only this session's lines are added: two sessions at once both
        // keep theirs (saving would overwrite the other's).
        let _ = editor.append_history(path);
    }
    code
}

/// Reads and runs lines until `exit`, Ctrl+D or a lost connection.
fn prompt_loop(editor: &mut Editor<Completion, DefaultHistory>, session: &Rc<RefCell<Session>>) -> u8 {
    // Ctrl+C during a command cancels its transfer; at the prompt the
    // terminal is in raw mode and rustyline sees it as a key instead.
    let interrupted = session.borrow().interrupt_flag();
    if let Err(e) = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst)) {
        eprintln!("file-client: cannot handle Ctrl+C: {e}");
    }
    editor.set_helper(Some(Completion::new(Rc::clone(session))));
    let mut stdout = io::stdout();
    loop {
        let prompt = session.borrow().prompt();
        match editor.readline(&prompt) {
            // Several pasted lines come as one: each runs, in order.
            Ok(text) => {
                for line in text.lines() {
                    if let Some(code) = run_line(session, line, &mut stdout) {
                        return code;
                    }
                }
            }
            // Ctrl+C at the prompt clears the line.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => {
                let _ = session.borrow_mut().execute("exit", &mut io::sink());
                return EXIT_OK;
            }
            Err(e) => {
                eprintln!("file-client: cannot read input: {e}");
                return EXIT_IO;
            }
        }
    }
}

/// Runs one line and reports its failure; the exit status once the session is over.
fn run_line(session: &Rc<RefCell<Session>>, line: &str, stdout: &mut io::Stdout) -> Option<u8> {
    match session.borrow_mut().execute(line, stdout) {
        Ok(Flow::Continue) => None,
        Ok(Flow::Exit) | Err(ClientError::OutputClosed) => Some(EXIT_OK),
        // A lost connection, or one that cannot be made again now: the
        // prompt goes on, and the next command tries again.
        Err(e @ (ClientError::Connection(_) | ClientError::Connect { .. } | ClientError::NotAdmitted(_))) => {
            eprintln!("{e}; the next command reconnects");
            None
        }
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

/// `$XDG_DATA_HOME/file-client/history`, else `~/.local/share/file-client/history`.
fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("file-client").join("history"))
}
