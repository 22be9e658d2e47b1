//! The `file-client` command line without a server: failures to start are
//! one line with a documented exit status.

use std::net::TcpListener;
use std::process::{Command, Output};

fn file_client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_file-client")).args(args).output().expect("run file-client")
}

#[test]
fn no_server_is_exit_1_naming_the_address() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = file_client(&[&addr, "-c", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("file-client: cannot connect to {addr}: ")), "{err}");
}

#[test]
fn an_unknown_host_is_exit_1() {
    let out = file_client(&["no-such-host.invalid:1", "-c", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to no-such-host.invalid:1"));
}

#[test]
fn usage_errors_are_exit_2() {
    assert_eq!(file_client(&["--no-such-flag"]).status.code(), Some(2));
    let out = file_client(&["127.0.0.1:1", "--download-dir", "/nonexistent/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'/nonexistent/dir' does not exist"));
    // (`HOST:abc` is a download of `abc`, as scp reads it; a port too big is a typo.)
    let out = file_client(&["127.0.0.1:99999"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "file-client: usage: bad port '99999' in '127.0.0.1:99999'\n");
    let out = file_client(&["--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a whole number of seconds, at least 1"));
}

#[test]
fn completions_and_the_manual_page_come_from_the_options() {
    let out = file_client(&["--completions", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F") && script.contains("--download-dir"), "{script}");
    let out = file_client(&["--man"]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH file-client 1") && page.contains("download\\-dir"), "{page}");
}
