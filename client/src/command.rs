//! What the user types at the `file-client` prompt or passes with `-c`,
//! parsed into a [`Command`]. This is the client's language, not the wire's:
//! `put` takes a local path here and becomes `put <size> <blake3> <name>` on
//! the wire.

use std::path::PathBuf;

use common::Request;

use crate::error::ClientError;

/// One line of user input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Sent to the server as it is; the reply body is printed.
    Remote(Request),
    /// `list [dir]`: the reply is formatted as a table.
    List(String),
    /// `get [-f] <name>`.
    Get {
        /// Overwrite an existing local file.
        force: bool,
        /// The remote name.
        name: String,
    },
    /// `put <local> [remote]`.
    Put {
        /// The file to send.
        local: PathBuf,
        /// The name on the server; by default the local file's name.
        remote: Option<String>,
    },
    /// `help`: the client's own command list.
    Help,
    /// `exit`, `quit` or `bye`.
    Exit,
    /// A blank line or a `#` comment.
    Nothing,
}

/// The client's `help` text.
pub const HELP: &str = "\
status                 server uptime, connected clients and what each is doing
list [dir]             files and folders on the server
get [-f] <name>        download into the download folder (-f: overwrite)
put <local> [remote]   upload a local file (quote names with spaces: put \"a b.txt\")
name <nick>            choose the name others see
say <text>             send a line to everyone else connected
help                   this list
exit | quit | bye      leave
anything else          sent to the server, which echoes it with \" ACK\"
";

impl Command {
    /// Parses one line of user input.
    ///
    /// # Errors
    /// [`ClientError::Usage`] when a command is used wrongly.
    pub fn parse(line: &str) -> Result<Command, ClientError> {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(Command::Nothing);
        }
        if trimmed.contains(['\n', '\r']) {
            return Err(ClientError::Usage("a command is one line".into()));
        }
        let (keyword, arg) = trimmed.split_once(char::is_whitespace).map_or((trimmed, ""), |(k, a)| (k, a.trim()));
        match keyword.to_ascii_lowercase().as_str() {
            "exit" | "quit" | "bye" => Ok(Command::Exit),
            "help" | "?" => Ok(Command::Help),
            "list" | "ls" => Ok(Command::List(unquote(arg))),
            "get" => {
                let (force, name) = match arg.split_once(char::is_whitespace) {
                    Some(("-f", rest)) => (true, rest.trim()),
                    _ if arg == "-f" => (true, ""),
                    _ => (false, arg),
                };
                if name.is_empty() {
                    return Err(ClientError::Usage("get [-f] <name>".into()));
                }
                Ok(Command::Get { force, name: unquote(name) })
            }
            "put" => {
                let words = split_words(arg).ok_or_else(|| ClientError::Usage("put: unbalanced quotes".into()))?;
                match words.as_slice() {
                    [local] => Ok(Command::Put { local: local.into(), remote: None }),
                    [local, remote] => Ok(Command::Put { local: local.into(), remote: Some(remote.clone()) }),
                    _ => Err(ClientError::Usage("put <local> [remote] (quote names with spaces)".into())),
                }
            }
            _ => Request::parse(trimmed).map(Command::Remote).map_err(|e| ClientError::Usage(e.to_string())),
        }
    }
}

/// Removes one pair of surrounding quotes, so `get "a b.txt"` works as well as `get a b.txt`.
fn unquote(text: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    text.to_string()
}

/// Splits on whitespace, keeping quoted parts (`"..."` or `'...'`) together
/// and honouring `\` before a space or quote. `None` for unbalanced quotes.
fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                word.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        Command::parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    #[test]
    fn client_commands() {
        assert_eq!(parse("  "), Command::Nothing);
        assert_eq!(parse("# comment"), Command::Nothing);
        assert_eq!(parse("QUIT"), Command::Exit);
        assert_eq!(parse("bye"), Command::Exit);
        assert_eq!(parse("ls docs"), Command::List("docs".into()));
        assert_eq!(parse("get a b.txt"), Command::Get { force: false, name: "a b.txt".into() });
        assert_eq!(parse("get -f \"a b.txt\""), Command::Get { force: true, name: "a b.txt".into() });
        assert_eq!(parse("put x.bin"), Command::Put { local: "x.bin".into(), remote: None });
        assert_eq!(
            parse("put 'my file.txt' docs/your\\ file.txt"),
            Command::Put { local: "my file.txt".into(), remote: Some("docs/your file.txt".into()) }
        );
    }

    #[test]
    fn other_lines_go_to_the_server() {
        assert_eq!(parse("status"), Command::Remote(Request::Status));
        assert_eq!(parse("Hello Server!"), Command::Remote(Request::Echo("Hello Server!".into())));
    }

    #[test]
    fn misuse_is_a_usage_error() {
        for bad in ["get", "get -f", "put", "put a b c", "put \"open", "status now"] {
            assert!(matches!(Command::parse(bad), Err(ClientError::Usage(_))), "{bad}");
        }
    }
}
