//! The `file-server` command line: start-up failures are one line and exit 2.

use std::net::TcpListener;
use std::process::{Command, Output};

fn file_server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_file-server")).args(args).output().expect("run file-server")
}

#[test]
fn a_missing_repo_is_one_line_and_exit_2_before_binding() {
    let out = file_server(&["--repo", "/nonexistent/share", "--port", "0", "--bind", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing on stdout: no 'listening on'");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'/nonexistent/share'") && err.contains("must be an existing folder"), "{err}");
}

#[test]
fn a_repo_that_is_a_file_is_refused() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = file_server(&["--repo", file.path().to_str().unwrap(), "--port", "0", "--bind", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn a_port_in_use_names_the_address_and_exits_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let repo = tempfile::tempdir().unwrap();
    let out = file_server(&["--repo", repo.path().to_str().unwrap(), "--port", &port, "--bind", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
}

#[test]
fn bad_option_values_are_usage_errors() {
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path().to_str().unwrap();
    for bad in [["--max-upload-size", "10X"], ["--max-clients", "0"], ["--idle-timeout", "0"], ["--bind", "nowhere"]] {
        let out = file_server(&["--repo", repo, "--port", "0", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn a_cap_the_system_cannot_serve_is_refused_at_start() {
    let repo = tempfile::tempdir().unwrap();
    let out = file_server(&["--repo", repo.path().to_str().unwrap(), "--port", "0", "--max-clients", "100000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "it never listened");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("file-server: --max-clients 100000 needs about "), "{err}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_options() {
    let out = file_server(&["--completions", "zsh"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("#compdef file-server") && script.contains("--max-per-ip"), "{script}");
    let out = file_server(&["--man"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH file-server 1"));
}

#[test]
fn a_bind_name_that_does_not_resolve_is_exit_2() {
    let repo = tempfile::tempdir().unwrap();
    let out = file_server(&["--bind", "no-such-host.invalid", "--port", "0", "--repo", repo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("file-server: cannot resolve --bind no-such-host.invalid"));
}
