//! `file-client`: talk to a file-server. Parses the arguments and runs the
//! library's [`file_client::run`], which gives the exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use file_client::cli::Args;
use file_client::run;

fn main() -> ExitCode {
    ExitCode::from(run(&Args::parse()))
}
