//! What a client sends: one line of UTF-8 per request, ended by LF or CRLF.
//!
//! The keyword is case-insensitive and the argument is the rest of the line
//! (surrounding whitespace removed), so names may contain spaces. A line that
//! is not a command is echoed back with ` ACK`.

use std::fmt;

use crate::digest::Digest;
use crate::text::escape;

/// One request line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `status`: uptime, clients, what each is doing, as text for people.
    Status,
    /// `info`: the same as `status`, as data for programs (see [`crate::status`]).
    Info,
    /// `list [dir]`: the folder's entries, sorted by name.
    List(String),
    /// `get <name>`: the file's bytes.
    Get(String),
    /// `resume <offset> <name>`: the file's bytes from `offset` on, with the
    /// whole file's hash, to complete a partial download.
    Resume {
        /// Bytes the client has already.
        offset: u64,
        /// The remote name.
        name: String,
    },
    /// `put [-f] [-c] [-m <secs>] <size> <blake3|-> <name>`: an upload of exactly `size` bytes
    /// follows once the server has answered `OK 0`.
    Put {
        /// Bytes the client will send.
        size: u64,
        /// BLAKE3 of those bytes, checked before the file becomes visible;
        /// `None` (`-`) when it comes after them, in `END ok blake3=<hex>`
        /// (framed uploads only).
        digest: Option<Digest>,
        /// Where to store it, relative to the share.
        name: String,
        /// `-f`: replace a file of that name, atomically.
        replace: bool,
        /// `-m <unix seconds>`: the modification time to give the stored file.
        modified: Option<u64>,
        /// `-c`: continue from what the server kept of an earlier, cut-short
        /// upload of the same bytes to the same name.
        resume: bool,
    },
    /// `mkdir <dir>`: make a folder.
    Mkdir(String),
    /// `rm <name>`: remove a file.
    Remove(String),
    /// `rmdir <dir>`: remove an empty folder.
    Rmdir(String),
    /// `rmtree <dir>`: remove a folder and everything in it.
    RemoveTree(String),
    /// `mv [-f] <from> <to>`: rename or move inside the share.
    Move {
        /// The name now.
        from: String,
        /// The new name.
        to: String,
        /// `-f`: replace a file of the new name.
        replace: bool,
    },
    /// `hash <name>`: the file's BLAKE3, as `b3sum` prints it.
    Hash(String),
    /// `name <nick>`: choose the name others see.
    Name(String),
    /// `say <text>`: send a line to every other connected client.
    Say(String),
    /// `login <name> <password>`: take an account's rights (servers with
    /// `--users`). The password is the rest of the line, trimmed.
    Login {
        /// The account's name.
        user: String,
        /// Its password.
        password: String,
    },
    /// `help`: one line per command.
    Help,
    /// `exit`: the server says goodbye and closes.
    Exit,
    /// `frames on|off`: from now on, a download's bytes come as `DATA`
    /// frames ended by `END`, and an upload's bytes are sent the same way, so
    /// either side can stop a transfer and keep the session (see
    /// [`crate::Header::Data`]).
    Frames(bool),
    /// `cancel`: stop the framed transfers asked for before this request.
    Cancel,
    /// Any other line: answered with the same text and ` ACK`.
    Echo(String),
}

/// A line that names a command but is not a valid use of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The command needs an argument and got none.
    #[error("missing argument: usage: {usage}")]
    MissingArgument {
        /// How the command is used.
        usage: &'static str,
    },
    /// The command takes no argument.
    #[error("'{command}' takes no argument")]
    UnexpectedArgument {
        /// The command as typed.
        command: &'static str,
    },
    /// A `put` line whose size or hash cannot be read.
    #[error("bad put line: usage: {usage}")]
    BadPut {
        /// How the command is used.
        usage: &'static str,
    },
    /// A name that starts with `"` and is not one quoted string.
    #[error("a name that starts with '\"' must be one quoted string (\\\" and \\\\ inside)")]
    BadQuotes,
}

impl RequestError {
    /// The error said once, for a reader who will see it after `usage:`
    /// (`say <text>`, not `missing argument: usage: say <text>`).
    pub fn usage(&self) -> String {
        match self {
            RequestError::MissingArgument { usage } | RequestError::BadPut { usage } => (*usage).to_string(),
            other => other.to_string(),
        }
    }
}

/// How `put` is written on the wire.
pub const PUT_USAGE: &str = "put [-f] [-c] [-m <unix secs>] <size> <blake3|-> <name>";

impl Request {
    /// Reads a request line (its line ending may still be attached).
    ///
    /// # Errors
    /// [`RequestError`] for a known command used wrongly; unknown text is
    /// never an error, it is an [`Request::Echo`].
    pub fn parse(line: &str) -> Result<Request, RequestError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        let (keyword, arg) = match trimmed.split_once(char::is_whitespace) {
            Some((k, a)) => (k, a.trim()),
            None => (trimmed, ""),
        };
        let no_arg = |command: &'static str, request: Request| {
            if arg.is_empty() {
                Ok(request)
            } else {
                Err(RequestError::UnexpectedArgument { command })
            }
        };
        match keyword.to_ascii_lowercase().as_str() {
            "status" => no_arg("status", Request::Status),
            "info" => no_arg("info", Request::Info),
            "help" => no_arg("help", Request::Help),
            "exit" => no_arg("exit", Request::Exit),
            "cancel" => no_arg("cancel", Request::Cancel),
            "frames" => match arg.to_ascii_lowercase().as_str() {
                "on" => Ok(Request::Frames(true)),
                "off" => Ok(Request::Frames(false)),
                _ => Err(RequestError::MissingArgument { usage: "frames on|off" }),
            },
            "list" => Ok(Request::List(unquote(arg).ok_or(RequestError::BadQuotes)?)),
            "get" if arg.is_empty() => Err(RequestError::MissingArgument { usage: "get <name>" }),
            "get" => one_name(arg, "get <name>").map(Request::Get),
            "resume" => {
                let bad = || RequestError::MissingArgument { usage: "resume <offset> <name>" };
                let (offset, name) = arg.split_once(char::is_whitespace).ok_or_else(bad)?;
                let offset = parse_count(offset).ok_or_else(bad)?;
                Ok(Request::Resume { offset, name: one_name(name.trim(), "resume <offset> <name>")? })
            }
            "put" => Self::parse_put(arg),
            "mkdir" => one_name(arg, "mkdir <dir>").map(Request::Mkdir),
            "rm" => one_name(arg, "rm <name>").map(Request::Remove),
            "rmdir" => one_name(arg, "rmdir <dir>").map(Request::Rmdir),
            "rmtree" => one_name(arg, "rmtree <dir>").map(Request::RemoveTree),
            "hash" => one_name(arg, "hash <name>").map(Request::Hash),
            "mv" => {
                let (replace, rest) = match arg.strip_prefix("-f") {
                    Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim_start()),
                    _ => (false, arg),
                };
                let bad = RequestError::MissingArgument { usage: "mv [-f] <from> <to>" };
                let (from, to) = two_names(rest).ok_or(bad)?;
                Ok(Request::Move { from, to, replace })
            }
            "name" if arg.is_empty() => Err(RequestError::MissingArgument { usage: "name <nick>" }),
            "name" => Ok(Request::Name(arg.to_string())),
            "login" => {
                let bad = || RequestError::MissingArgument { usage: "login <name> <password>" };
                let (user, password) = arg.split_once(char::is_whitespace).ok_or_else(bad)?;
                Ok(Request::Login { user: user.to_string(), password: password.trim_start().to_string() })
            }
            "say" if arg.is_empty() => Err(RequestError::MissingArgument { usage: "say <text>" }),
            "say" => Ok(Request::Say(arg.to_string())),
            _ => Ok(Request::Echo(line.to_string())),
        }
    }

    fn parse_put(arg: &str) -> Result<Request, RequestError> {
        let bad = RequestError::BadPut { usage: PUT_USAGE };
        let (mut replace, mut resume, mut modified, mut arg) = (false, false, None, arg);
        loop {
            if let Some(rest) = arg.strip_prefix("-f").filter(|r| r.starts_with(char::is_whitespace)) {
                replace = true;
                arg = rest.trim_start();
            } else if let Some(rest) = arg.strip_prefix("-c").filter(|r| r.starts_with(char::is_whitespace)) {
                resume = true;
                arg = rest.trim_start();
            } else if let Some(rest) = arg.strip_prefix("-m").filter(|r| r.starts_with(char::is_whitespace)) {
                let (secs, rest) = rest.trim_start().split_once(char::is_whitespace).ok_or_else(|| bad.clone())?;
                modified = Some(parse_count(secs).ok_or_else(|| bad.clone())?);
                arg = rest.trim_start();
            } else {
                break;
            }
        }
        let mut words = arg.splitn(3, char::is_whitespace);
        let (Some(size), Some(digest), Some(name)) = (words.next(), words.next(), words.next()) else {
            return Err(bad);
        };
        let size = parse_count(size).ok_or_else(|| bad.clone())?;
        let digest = match digest {
            "-" => None,
            hex => Some(hex.parse().map_err(|_| bad.clone())?),
        };
        let name = unquote(name.trim()).ok_or(RequestError::BadQuotes)?;
        if name.is_empty() {
            return Err(bad);
        }
        Ok(Request::Put { size, digest, name, replace, modified, resume })
    }

    /// The request line, with its `\n`.
    pub fn encode(&self) -> String {
        format!("{self}\n")
    }
}

/// A name argument as sent: as it is, or, when it starts with `"`, one
/// quoted string with `\"` and `\\` escapes (how a name that starts or ends
/// with a space, which the line's trimming would lose, is sent). `None` when
/// the quotes do not close, or something follows them.
fn unquote(arg: &str) -> Option<String> {
    let Some(quoted) = arg.strip_prefix('"') else { return Some(arg.to_string()) };
    let mut name = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(name),
            c => name.push(c),
        }
    }
    None
}

/// The one name a command takes, unquoted.
fn one_name(arg: &str, usage: &'static str) -> Result<String, RequestError> {
    match unquote(arg) {
        // `""` is no name either (found by fuzzing: it encoded as no argument).
        Some(name) if name.is_empty() => Err(RequestError::MissingArgument { usage }),
        Some(name) => Ok(name),
        None => Err(RequestError::BadQuotes),
    }
}

/// Two names: the first a word, or one quoted string when it holds a space
/// (or starts with `"` or `-`); the second the rest, as [`unquote`] reads it.
fn two_names(arg: &str) -> Option<(String, String)> {
    let (first, rest) = if let Some(quoted) = arg.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => name.push(chars.next()?.1),
                (i, '"') => break i + 1,
                (_, c) => name.push(c),
            }
        };
        (name, &quoted[end..])
    } else {
        let end = arg.find(char::is_whitespace)?;
        (arg[..end].to_string(), &arg[end..])
    };
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let second = unquote(rest.trim())?;
    (!first.is_empty() && !second.is_empty()).then_some((first, second))
}

/// The first of two names, as [`two_names`] reads it back.
fn quote_first(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(char::is_whitespace) || name.starts_with('-') {
        let escaped: String =
            name.chars().flat_map(|c| if matches!(c, '"' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
        return std::borrow::Cow::Owned(format!("\"{escaped}\""));
    }
    quote(name)
}

/// A name as [`unquote`] reads it back: quoted when it starts or ends with
/// whitespace or starts with `"`, else as it is.
fn quote(name: &str) -> std::borrow::Cow<'_, str> {
    let needs = name.starts_with('"') || name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace);
    if !needs {
        return std::borrow::Cow::Borrowed(name);
    }
    let escaped: String =
        name.chars().flat_map(|c| if matches!(c, '"' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    std::borrow::Cow::Owned(format!("\"{escaped}\""))
}

/// A byte count as the protocol writes it: decimal digits only (`u64::from_str`
/// would also take `+5`).
fn parse_count(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Request {
    /// The request line without its line ending; names are written as they
    /// are, so a client must not send names containing line breaks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Status => f.write_str("status"),
            Request::Info => f.write_str("info"),
            Request::List(dir) if dir.is_empty() => f.write_str("list"),
            Request::List(dir) => write!(f, "list {}", quote(dir)),
            Request::Get(name) => write!(f, "get {}", quote(name)),
            Request::Resume { offset, name } => write!(f, "resume {offset} {}", quote(name)),
            Request::Put { size, digest, name, replace, modified, resume } => {
                let force = if *replace { "-f " } else { "" };
                let force = if *resume { format!("{force}-c ") } else { force.to_string() };
                let time = modified.map(|secs| format!("-m {secs} ")).unwrap_or_default();
                let digest = digest.map_or_else(|| "-".to_string(), |d| d.to_string());
                write!(f, "put {force}{time}{size} {digest} {}", quote(name))
            }
            Request::Mkdir(dir) => write!(f, "mkdir {}", quote(dir)),
            Request::Remove(name) => write!(f, "rm {}", quote(name)),
            Request::Rmdir(dir) => write!(f, "rmdir {}", quote(dir)),
            Request::RemoveTree(dir) => write!(f, "rmtree {}", quote(dir)),
            Request::Hash(name) => write!(f, "hash {}", quote(name)),
            Request::Move { from, to, replace } => {
                let force = if *replace { "-f " } else { "" };
                write!(f, "mv {force}{} {}", quote_first(from), quote(to))
            }
            Request::Name(nick) => write!(f, "name {nick}"),
            Request::Login { user, password } => write!(f, "login {user} {password}"),
            Request::Say(text) => write!(f, "say {text}"),
            Request::Help => f.write_str("help"),
            Request::Exit => f.write_str("exit"),
            Request::Frames(on) => f.write_str(if *on { "frames on" } else { "frames off" }),
            Request::Cancel => f.write_str("cancel"),
            Request::Echo(text) => f.write_str(text),
        }
    }
}

impl Request {
    /// A short description for logs and `status`: the command with its name
    /// escaped, never the upload's hash. `info` reads as `status`: it is the
    /// same question, and what `file-client` asks when its user types `status`.
    pub fn summary(&self) -> String {
        match self {
            Request::Info => "status".to_string(),
            Request::Put { size, name, .. } => format!("put {} ({size} bytes)", escape(name)),
            Request::Echo(_) => "echo".to_string(),
            Request::Say(_) => "say".to_string(),
            // Never the password, in a log or a status line.
            Request::Login { user, .. } => format!("login {}", escape(user)),
            other => escape(&other.to_string()).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest([0xab; 32])
    }

    #[test]
    fn every_request_round_trips() {
        let cases = [
            Request::Status,
            Request::Info,
            Request::List(String::new()),
            Request::List("docs".into()),
            Request::Get("a file with spaces.txt".into()),
            Request::Get("docs/a.txt".into()),
            Request::Resume { offset: 12345, name: "big file.iso".into() },
            Request::Get(" leading and trailing ".into()),
            Request::Get("\"quoted\" \\ name".into()),
            Request::List(" spaced dir ".into()),
            Request::Put {
                size: 1,
                digest: Some(digest()),
                name: "tr ".into(),
                replace: false,
                modified: Some(1_700_000_000),
                resume: true,
            },
            Request::Resume { offset: 1, name: " x".into() },
            Request::Login { user: "alice".into(), password: "correct horse battery".into() },
            Request::Put { size: 0, digest: None, name: "empty".into(), replace: false, modified: None, resume: false },
            Request::Put {
                size: 1 << 33,
                digest: Some(digest()),
                name: "big name.iso".into(),
                replace: true,
                modified: Some(9),
                resume: false,
            },
            Request::Mkdir("new dir".into()),
            Request::Remove("a b.txt".into()),
            Request::Rmdir("d".into()),
            Request::RemoveTree(" odd ".into()),
            Request::Hash("x".into()),
            Request::Move { from: "a b.txt".into(), to: "docs/c d.txt".into(), replace: false },
            Request::Move { from: "-f".into(), to: "\"q\" ".into(), replace: true },
            Request::Move { from: "plain".into(), to: "other".into(), replace: false },
            Request::Name("alice".into()),
            Request::Say("hello, everyone!".into()),
            Request::Help,
            Request::Exit,
            Request::Frames(true),
            Request::Frames(false),
            Request::Cancel,
            Request::Echo("Hello Server!".into()),
        ];
        for r in cases {
            assert_eq!(Request::parse(&r.encode()), Ok(r.clone()), "{r:?}");
        }
    }

    #[test]
    fn keywords_are_case_insensitive_and_crlf_is_accepted() {
        assert_eq!(Request::parse("GET x.txt\r\n"), Ok(Request::Get("x.txt".into())));
        assert_eq!(Request::parse("Status\r\n"), Ok(Request::Status));
        assert_eq!(Request::parse("  list   docs  "), Ok(Request::List("docs".into())));
    }

    #[test]
    fn other_lines_are_echoes() {
        assert_eq!(Request::parse("Hello Server!\n"), Ok(Request::Echo("Hello Server!".into())));
        assert_eq!(Request::parse("getter x"), Ok(Request::Echo("getter x".into())));
        assert_eq!(Request::parse(""), Ok(Request::Echo(String::new())));
    }

    #[test]
    fn misused_commands_are_typed_errors() {
        assert!(matches!(Request::parse("get"), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("get   "), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("name"), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("resume 12"), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("resume x name"), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("resume +5 name"), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("say  "), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("status now"), Err(RequestError::UnexpectedArgument { .. })));
        assert!(matches!(Request::parse("exit please"), Err(RequestError::UnexpectedArgument { .. })));
        assert!(matches!(Request::parse("cancel it"), Err(RequestError::UnexpectedArgument { .. })));
        assert!(matches!(Request::parse("frames"), Err(RequestError::MissingArgument { .. })));
        assert!(matches!(Request::parse("frames maybe"), Err(RequestError::MissingArgument { .. })));
        let plus = format!("put +5 {} name", digest());
        for bad in ["put", "put 12", "put x abc name", "put 12 nothex name", &format!("put 12 {}", digest()), &plus] {
            assert!(matches!(Request::parse(bad), Err(RequestError::BadPut { .. })), "{bad}");
        }
    }

    #[test]
    fn quoted_names_keep_their_spaces_and_bad_quotes_are_errors() {
        assert_eq!(Request::parse("get \"tr \""), Ok(Request::Get("tr ".into())));
        assert_eq!(Request::parse("get a\"b"), Ok(Request::Get("a\"b".into())), "a quote inside is plain");
        for bad in ["get \"open", "get \"a\" b", "get \"a\\"] {
            assert_eq!(Request::parse(bad), Err(RequestError::BadQuotes), "{bad}");
        }
    }

    #[test]
    fn file_management_requests_as_typed_with_nc() {
        let mv = |from: &str, to: &str, replace| Request::Move { from: from.into(), to: to.into(), replace };
        assert_eq!(Request::parse("mv a.txt docs/b c.txt"), Ok(mv("a.txt", "docs/b c.txt", false)));
        assert_eq!(Request::parse("mv -f \"a b\" c"), Ok(mv("a b", "c", true)));
        for bad in ["mv", "mv a", "mv \"a b\"", "mv \"a\"b c", "rm", "mkdir  ", "rm \"\"", "get \"\"", "resume 1 \"\""]
        {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Request::parse("RM x y"), Ok(Request::Remove("x y".into())));
    }

    #[test]
    fn summary_escapes_names() {
        assert_eq!(Request::Get("a\x1bb".into()).summary(), "get a\\x1bb");
    }
}
