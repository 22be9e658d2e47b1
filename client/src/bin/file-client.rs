//! `file-client`: talk to a file-server. Parses the arguments and runs the
//! library's [`file_client::cli::run`], which gives the exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use file_client::cli::{run, Args};

fn main() -> ExitCode {
    ExitCode::from(run(&Args::parse()))
}
