//! `file-client` at its prompt in a pseudo-terminal.

use std::path::Path;
use std::process::Command;

use crate::{binary, TEST_TIMEOUT};

/// `file-client ADDR` in a pseudo-terminal, in `dir`, with `home` as its
/// home (where it keeps its history).
pub fn pty_client(addr: &str, dir: &Path, home: &Path) -> rexpect::session::PtySession {
    pty_client_with(addr, dir, home, &[])
}

/// [`pty_client`] with more arguments.
pub fn pty_client_with(addr: &str, dir: &Path, home: &Path, extra: &[&str]) -> rexpect::session::PtySession {
    let mut command = Command::new(binary("file-client"));
    command.arg(addr).args(extra).current_dir(dir).env("HOME", home).env_remove("XDG_DATA_HOME").env("TERM", "xterm");
    rexpect::session::spawn_command(command, Some(TEST_TIMEOUT.as_millis() as u64)).expect("spawn file-client in a pty")
}

/// Waits until `prompt` is drawn and the line editor reads keys: keys sent
/// before that may be dropped as the terminal switches mode.
pub fn ready(pty: &mut rexpect::session::PtySession, prompt: &str) {
    pty.exp_string(prompt).expect("prompt");
    // The end of rustyline's synchronized redraw of the prompt.
    pty.exp_string("\x1b[?2026l").expect("prompt drawn");
}

/// Types `keys` (Tab, arrows, text) without pressing Enter.
pub fn type_keys(pty: &mut rexpect::session::PtySession, keys: &str) {
    pty.send(keys).expect("send keys");
    pty.flush().expect("flush keys");
}
