//! What the user types at the `file-client` prompt or passes with `-c`,
//! parsed into a [`Command`]. This is the client's language, not the wire's:
//! names are words with shell-like quoting (`get "a b.txt" c.txt`), globs are
//! expanded by the client, and `put` takes local paths.

use common::Request;

use crate::error::ClientError;

/// One line of user input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Sent to the server as it is; the reply body is printed.
    Remote(Request),
    /// `status`: printed as text, or JSON with `--json`.
    Status,
    /// `list [-b] [dir]`: a table (sizes in bytes with `-b`, else human on
    /// a terminal), or JSON lines with `--json`.
    List {
        /// The remote folder.
        dir: String,
        /// Sizes in bytes even on a terminal.
        bytes: bool,
    },
    /// `get [-f] [-c] <name|glob>...`.
    Get {
        /// Whole folders (`-r`).
        recursive: bool,
        /// Overwrite existing local files.
        force: bool,
        /// Resume from `<name>.fc-part` files.
        resume: bool,
        /// With `-r`: `--delete`, `-n`.
        mirror: Mirror,
        /// Remote names or globs.
        names: Vec<String>,
    },
    /// `cat <name>...`: files to standard output.
    Cat(Vec<String>),
    /// `put [-f] <local> [remote]` or `put [-f] <local|glob>...`.
    Put {
        /// Whole folders (`-r`).
        recursive: bool,
        /// Replace remote files of the same name.
        force: bool,
        /// Go on from what the server kept of a cut-short upload (`-c`).
        resume: bool,
        /// With `-r`: `--delete`, `-n`.
        mirror: Mirror,
        /// Local files or globs.
        locals: Vec<String>,
        /// The remote name, for a single file.
        remote: Option<String>,
    },
    /// `mkdir [-p] <dir>`: with `-p`, the folders on the way too, and no
    /// error when it exists.
    Mkdir {
        /// Make the parents; an existing folder is fine.
        parents: bool,
        /// The folder.
        dir: String,
    },
    /// `rm [-r] <name>...`: files, or with `-r` folders and all in them.
    Rm {
        /// Folders too, with everything in them.
        recursive: bool,
        /// Remote names.
        names: Vec<String>,
    },
    /// `rmdir <dir>...`: empty folders.
    Rmdir(Vec<String>),
    /// `mv [-f] <from> <to>`.
    Mv {
        /// Replace a file at `to`.
        force: bool,
        /// The name now.
        from: String,
        /// The new name.
        to: String,
    },
    /// `hash <name|glob>...`: BLAKE3 lines as `b3sum` prints them.
    Hash(Vec<String>),
    /// `cd [dir]`: the remote folder names are relative to (the share's top without an argument).
    Cd(Option<String>),
    /// `pwd`: the remote folder.
    Pwd,
    /// `lls [dir]`: list a local folder.
    Lls(Option<String>),
    /// `lcd [dir]`: change the local folder (home without an argument).
    Lcd(Option<String>),
    /// `lpwd`: print the local folder.
    Lpwd,
    /// `help [command]`.
    Help(Option<String>),
    /// `exit`, `quit` or `bye`.
    Exit,
    /// A blank line or a `#` comment.
    Nothing,
}

/// How a `put` stores its file.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutHow {
    /// Replace a remote file of the name (`-f`).
    pub replace: bool,
    /// Go on from what the server kept of a cut-short attempt (`-c`).
    pub resume: bool,
}

/// One entry of the `help` table.
pub struct CommandHelp {
    /// The command's name.
    pub name: &'static str,
    /// How it is written.
    pub usage: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// One example.
    pub example: &'static str,
}

/// Every command, for `help` and tab completion.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "status",
        usage: "status",
        summary: "server uptime, clients connected / cap, what each is doing, who left recently",
        example: "status",
    },
    CommandHelp {
        name: "list",
        usage: "list [-b] [dir]",
        summary: "files and folders on the server, with size and modification time (also: ls; -l, -a, -h are taken); -b: sizes in bytes",
        example: "list docs",
    },
    CommandHelp {
        name: "get",
        usage: "get [-r] [-f] [-c] <name|glob>... | get <name> <local>",
        summary: "download into the local folder, verified with BLAKE3; -r whole folders (identical files skipped; --delete removes what the server lacks, -n only says what it would do); -f overwrites, -c resumes a .fc-part file",
        example: "get -c \"big file.iso\" docs/*.txt",
    },
    CommandHelp {
        name: "cat",
        usage: "cat <name|glob>...",
        summary: "write remote files to standard output (checked with BLAKE3 at the end)",
        example: "cat notes.txt",
    },
    CommandHelp {
        name: "put",
        usage: "put [-r] [-f] [-c] <local> [remote] | put [-f] [-c] <local|glob>... [folder]",
        summary: "upload local files (the server must allow uploads), into a remote folder when the last name is one; -r whole folders (--delete removes what is not here, -n only says); -f replaces remote files atomically; -c goes on from a cut-short upload",
        example: "put notes.txt docs/notes.txt",
    },
    CommandHelp {
        name: "mkdir",
        usage: "mkdir [-p] <dir>",
        summary: "make a folder on the server (as every change, it needs --allow-uploads there); -p the folders on the way too, and no error if it exists",
        example: "mkdir photos",
    },
    CommandHelp {
        name: "rm",
        usage: "rm [-r] <name|glob>...",
        summary: "remove files; -r removes folders with everything in them",
        example: "rm old.log",
    },
    CommandHelp { name: "rmdir", usage: "rmdir <dir>...", summary: "remove empty folders", example: "rmdir empty" },
    CommandHelp {
        name: "mv",
        usage: "mv [-f] <from> <to>",
        summary: "rename or move inside the share; -f replaces a file at <to>",
        example: "mv draft.txt docs/final.txt",
    },
    CommandHelp {
        name: "hash",
        usage: "hash <name|glob>...",
        summary: "BLAKE3 of remote files, as b3sum prints it (check with b3sum -c)",
        example: "hash big.iso",
    },
    CommandHelp {
        name: "cd",
        usage: "cd [dir]",
        summary: "the remote folder names are relative to (/ is the share's top; cd alone goes there)",
        example: "cd docs",
    },
    CommandHelp { name: "pwd", usage: "pwd", summary: "print the remote folder", example: "pwd" },
    CommandHelp {
        name: "name",
        usage: "name <nick>",
        summary: "choose the name others see (letters, digits, - _ .; up to 32)",
        example: "name alice",
    },
    CommandHelp {
        name: "say",
        usage: "say <text>",
        summary: "send a line to everyone else connected",
        example: "say the build is on the share",
    },
    CommandHelp { name: "lls", usage: "lls [dir]", summary: "list a local folder", example: "lls ~/Downloads" },
    CommandHelp {
        name: "lcd",
        usage: "lcd [dir]",
        summary: "change the local folder, where downloads go (home without an argument)",
        example: "lcd ~/Downloads",
    },
    CommandHelp { name: "lpwd", usage: "lpwd", summary: "print the local folder", example: "lpwd" },
    CommandHelp {
        name: "help",
        usage: "help [command]",
        summary: "this list, or one command in detail",
        example: "help get",
    },
    CommandHelp { name: "exit", usage: "exit", summary: "leave (also: quit, bye, Ctrl+D)", example: "exit" },
];

/// The `help` text: every command, or one in detail.
pub fn help_text(command: Option<&str>) -> Result<String, ClientError> {
    match command {
        None => {
            let mut out = String::new();
            for c in COMMANDS {
                out.push_str(&help_row(c.usage, c.summary));
            }
            out.push_str(&help_row("anything else", "sent to the server, which echoes it with \" ACK\""));
            Ok(out)
        }
        Some(name) => {
            let wanted = canonical(name);
            let c = COMMANDS
                .iter()
                .find(|c| c.name == wanted)
                .ok_or_else(|| ClientError::Usage(format!("help: no command '{}'", common::text::escape(name))))?;
            Ok(format!("usage: {}\n{}\nexample: {}\n", c.usage, c.summary, c.example))
        }
    }
}

/// Width of the usage column of `help`; the whole table fits 80 columns.
const USAGE_WIDTH: usize = 30;

/// One `help` row: the usage, then the summary wrapped beside it (below it
/// when the usage is wider than its column).
fn help_row(usage: &str, summary: &str) -> String {
    let mut lines = vec![String::new()];
    for word in summary.split(' ') {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > 80 - USAGE_WIDTH - 2 {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    let mut out = String::new();
    let mut rest = lines.iter();
    if usage.len() < USAGE_WIDTH {
        let first = rest.next().map_or("", String::as_str);
        out.push_str(&format!("{usage:<USAGE_WIDTH$}  {first}\n"));
    } else {
        out.push_str(&format!("{usage}\n"));
    }
    for line in rest {
        out.push_str(&format!("{:USAGE_WIDTH$}  {line}\n", ""));
    }
    out
}

fn canonical(keyword: &str) -> String {
    match keyword.to_ascii_lowercase().as_str() {
        "ls" => "list".into(),
        "rename" => "mv".into(),
        "quit" | "bye" => "exit".into(),
        "?" => "help".into(),
        other => other.to_string(),
    }
}

/// How a tree copy (`get -r`, `put -r`) treats the destination, as
/// `rsync --delete` and `lftp mirror -e`: with `delete`, what the source does
/// not have goes, so the destination equals the source; with `dry_run`
/// (`-n`), nothing is done, and what would be is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mirror {
    /// `--delete`: remove what the source does not have.
    pub delete: bool,
    /// `-n`, `--dry-run`: say what would be copied and removed; change nothing.
    pub dry_run: bool,
}

impl Mirror {
    /// Takes `--delete` and `--dry-run` out of `words` (before the names).
    fn take(words: &mut Vec<String>) -> Mirror {
        let mut mirror = Mirror::default();
        words.retain(|w| match w.as_str() {
            "--delete" => {
                mirror.delete = true;
                false
            }
            "--dry-run" => {
                mirror.dry_run = true;
                false
            }
            _ => true,
        });
        mirror
    }

    /// A usage error unless it goes with `-r`.
    fn needs_recursive(self, recursive: bool, verb: &str) -> Result<Mirror, ClientError> {
        if (self.delete || self.dry_run) && !recursive {
            return Err(ClientError::Usage(format!("{verb}: --delete and -n go with -r (whole folders)")));
        }
        Ok(self)
    }
}

/// Every word that begins a command here or on the server.
const KEYWORDS: &[&str] = &[
    "status", "info", "list", "ls", "get", "cat", "put", "mkdir", "rm", "rmdir", "rmtree", "mv", "rename", "hash",
    "name", "say", "help", "login", "exit", "quit", "bye", "lls", "lcd", "lpwd", "cd", "pwd", "resume", "cancel",
];

/// The command `word` is one slip from (a letter wrong, missing, extra, or
/// two swapped), if any: `gte` → `get`, `lsit` → `list`, `names` → `name`.
fn near_command(word: &str) -> Option<&'static str> {
    // Two letters are too short to tell a slip from a word ("re", "ok").
    if word.len() < 3 || KEYWORDS.contains(&word) {
        return None;
    }
    KEYWORDS.iter().copied().find(|command| slips(word, command) == 1)
}

/// The optimal-string-alignment distance between `a` and `b` (edits, a
/// swap of two neighbours counting as one).
fn slips(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// File commands of sftp, lftp and the shell that file-client does not
/// have, with what it offers instead. Typed here they would only be echoed
/// by the server, which looks like success.
const FOREIGN: &[(&str, &str)] = &[
    ("cp", "files cannot be copied on the server"),
    ("mget", "get takes several names and globs: get *.txt"),
    ("mput", "put takes several files and globs: put *.txt"),
    ("reget", "get -c resumes a download"),
    ("reput", "put -c goes on with a cut-short upload"),
    ("chmod", "the server keeps no permissions"),
    ("chown", "the server keeps no owners"),
    ("chgrp", "the server keeps no groups"),
    ("ln", "links cannot be made from here"),
    ("symlink", "links cannot be made from here"),
    ("df", "free space is not reported"),
    ("lmkdir", "make local folders in a shell"),
    ("lrm", "remove local files in a shell"),
    ("lumask", "there is no local umask setting"),
    ("del", "rm removes files"),
    ("delete", "rm removes files"),
    ("dir", "list shows a folder"),
    ("open", "give the server's address on the command line: file-client HOST:PORT"),
];

/// True when a word holds glob characters.
pub fn is_glob(word: &str) -> bool {
    word.contains(['*', '?', '['])
}

impl Command {
    /// True for commands that talk to the server.
    pub fn needs_server(&self) -> bool {
        !matches!(
            self,
            Command::Nothing | Command::Help(_) | Command::Lls(_) | Command::Lcd(_) | Command::Lpwd | Command::Pwd
        )
    }

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
        if trimmed.starts_with('!') {
            return Err(ClientError::Unsupported(
                "'!' runs nothing here: there are no shell escapes; type help".into(),
            ));
        }
        let lower = keyword.to_ascii_lowercase();
        if let Some((word, instead)) = FOREIGN.iter().find(|(word, _)| *word == lower) {
            return Err(ClientError::Unsupported(format!(
                "'{word}' is not a file-client command: {instead}; type help"
            )));
        }
        let words = || split_words(arg).ok_or_else(|| ClientError::Usage("unbalanced quotes".into()));
        let at_most_one = |usage: &str| -> Result<Option<String>, ClientError> {
            let mut w = words()?;
            match w.len() {
                0 | 1 => Ok(w.pop()),
                _ => Err(ClientError::Usage(usage.to_string())),
            }
        };
        match canonical(keyword).as_str() {
            "exit" => Ok(Command::Exit),
            "help" => Ok(Command::Help(at_most_one("help [command]")?)),
            "status" if arg.is_empty() => Ok(Command::Status),
            "list" => {
                // ls's usual flags: -l (the listing is long already), -a
                // (hidden names are never shared), -h (sizes for people are
                // the default on a terminal), -b (sizes in bytes).
                let mut w = words()?;
                let mut bytes = false;
                while let Some(flags) = w.first().and_then(|f| f.strip_prefix('-')).filter(|f| !f.is_empty()) {
                    for flag in flags.chars() {
                        match flag {
                            'b' => bytes = true,
                            'l' | 'a' | 'h' | 'A' => {}
                            other => {
                                return Err(ClientError::Usage(format!(
                                    "list: no -{other} (list [-b] [-l] [-a] [-h] [dir])"
                                )))
                            }
                        }
                    }
                    w.remove(0);
                }
                match w.len() {
                    0 | 1 => Ok(Command::List { dir: w.pop().unwrap_or_default(), bytes }),
                    _ => Err(ClientError::Usage("list [-b] [dir]".into())),
                }
            }
            "lls" => Ok(Command::Lls(at_most_one("lls [dir]")?)),
            "lcd" => Ok(Command::Lcd(at_most_one("lcd [dir]")?)),
            "lpwd" if arg.is_empty() => Ok(Command::Lpwd),
            "get" => Self::parse_get(words()?),
            "cat" => match words()? {
                names if names.is_empty() => Err(ClientError::Usage("cat <name|glob>...".into())),
                names => Ok(Command::Cat(names)),
            },
            "put" => Self::parse_put(words()?),
            "mkdir" => match words()?.as_slice() {
                [flag, dir] if flag == "-p" => Ok(Command::Mkdir { parents: true, dir: dir.clone() }),
                [dir] if !dir.starts_with('-') => Ok(Command::Mkdir { parents: false, dir: dir.clone() }),
                _ => Err(ClientError::Usage("mkdir [-p] <dir>".into())),
            },
            "rm" => Self::parse_rm(words()?),
            "rmdir" => match words()? {
                dirs if dirs.is_empty() => Err(ClientError::Usage("rmdir <dir>...".into())),
                dirs => Ok(Command::Rmdir(dirs)),
            },
            "mv" => Self::parse_mv(words()?),
            "hash" => match words()? {
                names if names.is_empty() => Err(ClientError::Usage("hash <name|glob>...".into())),
                names => Ok(Command::Hash(names)),
            },
            "cd" => Ok(Command::Cd(at_most_one("cd [dir]")?)),
            "pwd" if arg.is_empty() => Ok(Command::Pwd),
            _ => match Request::parse(trimmed).map_err(|e| ClientError::Usage(e.usage()))? {
                // Text the server would only echo, one slip from a command:
                // a typo, not a message (a script must not "succeed" on it).
                Request::Echo(_) => match near_command(&lower) {
                    Some(near) => Err(ClientError::Usage(format!(
                        "unknown command '{}': did you mean '{near}'?",
                        common::text::escape(keyword)
                    ))),
                    None => Ok(Command::Remote(Request::parse(trimmed).map_err(|e| ClientError::Usage(e.usage()))?)),
                },
                request => Ok(Command::Remote(request)),
            },
        }
    }

    fn parse_get(mut words: Vec<String>) -> Result<Command, ClientError> {
        let mut mirror = Mirror::take(&mut words);
        let (mut force, mut resume, mut recursive) = (false, false, false);
        let mut names = Vec::new();
        let mut flags_done = false;
        for word in words {
            match word.as_str() {
                "--" if !flags_done => flags_done = true,
                flag if !flags_done && flag.starts_with('-') && flag.len() > 1 => {
                    for c in flag[1..].chars() {
                        match c {
                            'f' => force = true,
                            'c' => resume = true,
                            'r' => recursive = true,
                            'n' => mirror.dry_run = true,
                            _ => {
                                return Err(ClientError::Usage(format!(
                                    "get: unknown option -{c}; get [-r] [-f] [-c] [--delete] [-n] <name>..."
                                )))
                            }
                        }
                    }
                }
                _ => {
                    flags_done = true;
                    names.push(word);
                }
            }
        }
        if names.is_empty() {
            return Err(ClientError::Usage("get [-f] [-c] <name|glob>...".into()));
        }
        let mirror = mirror.needs_recursive(recursive, "get")?;
        Ok(Command::Get { recursive, force, resume, mirror, names })
    }

    fn parse_put(mut words: Vec<String>) -> Result<Command, ClientError> {
        let usage = "put [-r] [-f] [-c] [--delete] [-n] <local> [remote] | put [-f] [-c] <local|glob>...";
        let mut mirror = Mirror::take(&mut words);
        let (flags, mut words) = split_flags(words, usage, &['f', 'r', 'c', 'n'])?;
        let (force, recursive, resume) = (flags.contains(&'f'), flags.contains(&'r'), flags.contains(&'c'));
        mirror.dry_run |= flags.contains(&'n');
        let mirror = mirror.needs_recursive(recursive, "put")?;
        match words.len() {
            0 => Err(ClientError::Usage(usage.into())),
            2 if !words.iter().any(|w| is_glob(w)) => {
                let remote = words.pop();
                Ok(Command::Put { recursive, force, resume, mirror, locals: words, remote })
            }
            _ => Ok(Command::Put { recursive, force, resume, mirror, locals: words, remote: None }),
        }
    }

    fn parse_rm(words: Vec<String>) -> Result<Command, ClientError> {
        let (flags, names) = split_flags(words, "rm [-r] <name|glob>...", &['r', 'f'])?;
        if names.is_empty() {
            return Err(ClientError::Usage("rm [-r] <name|glob>...".into()));
        }
        Ok(Command::Rm { recursive: flags.contains(&'r'), names })
    }

    fn parse_mv(words: Vec<String>) -> Result<Command, ClientError> {
        let usage = "mv [-f] <from> <to>";
        let (flags, mut names) = split_flags(words, usage, &['f'])?;
        if names.len() != 2 {
            return Err(ClientError::Usage(usage.into()));
        }
        let to = names.pop().expect("two names");
        let from = names.pop().expect("two names");
        Ok(Command::Mv { force: flags.contains(&'f'), from, to })
    }
}

/// Leading `-x` flags (any of `allowed`, combinable: `-rf`) and the words
/// after them; `--` ends the flags.
fn split_flags(words: Vec<String>, usage: &str, allowed: &[char]) -> Result<(Vec<char>, Vec<String>), ClientError> {
    let mut flags = Vec::new();
    let mut rest = words.into_iter().peekable();
    while let Some(word) = rest.peek() {
        if word == "--" {
            rest.next();
            break;
        }
        if !word.starts_with('-') || word.len() < 2 {
            break;
        }
        for c in word[1..].chars() {
            if !allowed.contains(&c) {
                return Err(ClientError::Usage(format!("unknown option -{c}; {usage}")));
            }
            flags.push(c);
        }
        rest.next();
    }
    Ok((flags, rest.collect()))
}

/// Splits on whitespace, keeping quoted parts (`"..."` or `'...'`) together
/// and honouring `\` before a space or quote. `None` for unbalanced quotes.
pub fn split_words(text: &str) -> Option<Vec<String>> {
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

/// Quotes a name for the command line when it needs it (spaces, quotes,
/// backslashes), so that [`split_words`] gives it back unchanged.
pub fn quote_word(word: &str) -> String {
    let special = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\');
    if !word.is_empty() && !word.contains(special) {
        word.to_string()
    } else if !word.contains('\'') {
        format!("'{word}'")
    } else if !word.contains('"') {
        format!("\"{word}\"")
    } else {
        word.chars().flat_map(|c| if special(c) { vec!['\\', c] } else { vec![c] }).collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_slip_from_a_command_is_refused_with_a_hint_and_other_text_still_echoes() {
        for (typed, near) in
            [("gte a.txt", "get"), ("lsit", "list"), ("names", "name"), ("stauts", "status"), ("hepl", "help")]
        {
            match Command::parse(typed) {
                Err(ClientError::Usage(message)) => {
                    assert!(message.ends_with(&format!("did you mean '{near}'?")), "{typed}: {message}")
                }
                other => panic!("{typed}: {other:?}"),
            }
        }
        for echoed in ["hello there", "who", "clear", "x", "re", "ok computer"] {
            assert!(matches!(Command::parse(echoed), Ok(Command::Remote(Request::Echo(_)))), "{echoed}");
        }
        assert_eq!(super::slips("abc", "acb"), 1);
        assert_eq!(super::slips("hello", "help"), 2);
    }

    use super::*;

    fn parse(line: &str) -> Command {
        Command::parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn get(force: bool, resume: bool, names: &[&str]) -> Command {
        let names = names.iter().map(|s| s.to_string()).collect();
        Command::Get { recursive: false, force, resume, mirror: Mirror::default(), names }
    }

    #[test]
    fn client_commands() {
        assert_eq!(parse("  "), Command::Nothing);
        assert_eq!(parse("# comment"), Command::Nothing);
        assert_eq!(parse("QUIT"), Command::Exit);
        assert_eq!(parse("bye"), Command::Exit);
        assert_eq!(parse("ls docs"), Command::List { dir: "docs".into(), bytes: false });
        assert_eq!(parse("list \"my docs\""), Command::List { dir: "my docs".into(), bytes: false });
        assert_eq!(parse("ls -b"), Command::List { dir: String::new(), bytes: true });
        assert_eq!(parse("ls -la docs"), Command::List { dir: "docs".into(), bytes: false });
        assert_eq!(parse("ls -l -b"), Command::List { dir: String::new(), bytes: true });
        assert!(matches!(Command::parse("ls -z"), Err(ClientError::Usage(_))));
        assert_eq!(parse("mkdir -p a/b/c"), Command::Mkdir { parents: true, dir: "a/b/c".into() });
        let mirror = Mirror { delete: true, dry_run: true };
        let get = Command::Get { recursive: true, force: false, resume: false, mirror, names: vec!["m".into()] };
        assert_eq!(parse("get -r --delete -n m"), get);
        assert_eq!(parse("get --delete --dry-run -r m"), get);
        assert!(matches!(Command::parse("get --delete m"), Err(ClientError::Usage(_))), "--delete goes with -r");
        assert!(matches!(
            parse("put -rn --delete m"),
            Command::Put { mirror: Mirror { delete: true, dry_run: true }, .. }
        ));
        assert!(matches!(Command::parse("mkdir -x a"), Err(ClientError::Usage(_))));
        assert_eq!(parse("status"), Command::Status);
        assert_eq!(parse("help get"), Command::Help(Some("get".into())));
        assert_eq!(parse("lcd"), Command::Lcd(None));
        assert_eq!(parse("lls /tmp"), Command::Lls(Some("/tmp".into())));
        assert_eq!(parse("lpwd"), Command::Lpwd);
        assert_eq!(parse("cat 'a b' c"), Command::Cat(vec!["a b".into(), "c".into()]));
    }

    #[test]
    fn get_takes_flags_and_several_quoted_names() {
        assert_eq!(parse("get a.txt"), get(false, false, &["a.txt"]));
        assert_eq!(parse("get -f \"a b.txt\" c"), get(true, false, &["a b.txt", "c"]));
        assert_eq!(parse("get -fc x"), get(true, true, &["x"]));
        assert_eq!(parse("get -c -- -odd"), get(false, true, &["-odd"]));
        assert_eq!(parse("get docs/*.txt"), get(false, false, &["docs/*.txt"]));
        assert_eq!(parse("get a\\ b"), get(false, false, &["a b"]));
    }

    #[test]
    fn put_takes_a_remote_name_or_many_files() {
        let put = |locals: &[&str], remote: Option<&str>| Command::Put {
            recursive: false,
            force: false,
            resume: false,
            mirror: Mirror::default(),
            locals: locals.iter().map(|s| s.to_string()).collect(),
            remote: remote.map(str::to_string),
        };
        assert_eq!(parse("put x.bin"), put(&["x.bin"], None));
        assert_eq!(parse("put 'my file.txt' docs/your\\ file.txt"), put(&["my file.txt"], Some("docs/your file.txt")));
        assert_eq!(parse("put *.log"), put(&["*.log"], None));
        assert_eq!(parse("put a b c"), put(&["a", "b", "c"], None));
    }

    #[test]
    fn other_lines_go_to_the_server() {
        assert_eq!(parse("say hi"), Command::Remote(Request::Say("hi".into())));
        assert_eq!(parse("Hello Server!"), Command::Remote(Request::Echo("Hello Server!".into())));
    }

    #[test]
    fn file_commands_of_other_tools_are_refused_not_echoed() {
        for foreign in ["mget *", "!ls", "lrm x", "chmod 600 x", "DEL x"] {
            assert!(matches!(Command::parse(foreign), Err(ClientError::Unsupported(_))), "{foreign}");
        }
        assert_eq!(parse("rmxyz"), Command::Remote(Request::Echo("rmxyz".into())));
        assert_eq!(parse("rm -r a 'b c'"), Command::Rm { recursive: true, names: vec!["a".into(), "b c".into()] });
        assert_eq!(parse("rename a b"), Command::Mv { force: false, from: "a".into(), to: "b".into() });
        assert_eq!(parse("mv -f a 'b c'"), Command::Mv { force: true, from: "a".into(), to: "b c".into() });
        assert_eq!(parse("cd"), Command::Cd(None));
        assert!(Command::parse("mv a").is_err() && Command::parse("rm -x a").is_err());
    }

    #[test]
    fn misuse_is_a_usage_error() {
        for bad in ["get", "get -f", "get -x a", "cat", "put", "put \"open", "status now", "list a b", "help a b"] {
            assert!(matches!(Command::parse(bad), Err(ClientError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn help_knows_every_command_and_fits_80_columns() {
        let help = help_text(None).unwrap();
        assert!(help.lines().count() >= COMMANDS.len());
        assert!(help.lines().all(|l| l.chars().count() <= 80), "{help}");
        assert!(help.starts_with(&format!("{:<30}  server uptime,", "status")), "{help}");
        assert!(help.contains("get [-r] [-f] [-c] <name|glob>... | get <name> <local>\n"), "{help}");
        assert!(help_text(Some("ls")).unwrap().starts_with("usage: list [-b] [dir]\n"));
        assert!(help_text(Some("nope")).is_err());
    }

    #[test]
    fn quoting_round_trips_through_splitting() {
        for word in ["plain", "a b", "it's", "back\\slash", "\"q\"", "both ' and \"", ""] {
            assert_eq!(split_words(&quote_word(word)), Some(vec![word.to_string()]), "{word}");
        }
    }
}
