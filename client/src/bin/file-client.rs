//! `file-client`: talk to a file-server. Parses the arguments and runs the
//! library's [`file_client::run`], which gives the exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use file_client::cli::Args;
use file_client::run;

fn main() -> ExitCode {
    let args = Args::parse();
    let mut out = std::io::stdout();
    if let Some(shell) = args.completions {
        clap_complete::generate(shell, &mut Args::command(), "file-client", &mut out);
        return ExitCode::SUCCESS;
    }
    if args.man {
        return match clap_mangen::Man::new(Args::command()).render(&mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(file_client::error::EXIT_IO),
        };
    }
    ExitCode::from(run(&args))
}
