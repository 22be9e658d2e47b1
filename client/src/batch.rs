//! Batch mode: `-c` commands, or commands from a stdin that is not a
//! terminal. The first failure ends the run with its status, as `sftp -b`
//! does; events print in order with the replies.

use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;

use crate::cli::{connect, event_line, Args, SinkFactory};
use crate::connection::EventSink;
use crate::error::{ClientError, EXIT_IO, EXIT_OK};
use crate::session::Flow;

/// Runs the commands; the exit status.
pub fn run(args: &Args) -> u8 {
    let json = args.json;
    let sinks: SinkFactory = Box::new(move || {
        EventSink::InBand(Box::new(move |event| {
            let mut out = io::stdout().lock();
            let _ = out.write_all(event_line(event, json).as_bytes());
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
            // `file-client -c 'cat big' | head`: nobody reads on; a normal end.
            Err(ClientError::OutputClosed) => return EXIT_OK,
            Err(e) => {
                eprintln!("{e}");
                if args.json {
                    // On stdout too, where a program reads: every line one object.
                    let _ = stdout.write_all(crate::render::json_line(&e.json()).as_bytes());
                }
                return e.exit_code();
            }
        }
    }
    let _ = session.execute("exit", &mut io::sink());
    EXIT_OK
}
