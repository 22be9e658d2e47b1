//! Commands as values: an [`Op`] (a wire [`Request`], or what another door
//! needs that is not one) and the [`Caller`] (the server's shared state and
//! the session asking) go in, an [`Outcome`] comes out as typed data: a listing
//! as entries, the status as a [`Status`], a file to send, an upload to
//! receive. Nothing here touches a connection or words a reply for a wire,
//! so every command is tested against a temporary share alone, and every
//! door (the line protocol, the web side, TFTP) runs the same commands and
//! encodes their outcomes its own way. Who may do what is checked once, in
//! [`apply`].
//!
//! Every failure becomes a [`Refusal`], made in one place from the errors of
//! names, the share and the request parser.
//!
//! # Layout
//! - this file: [`apply`], [`Outcome`], [`Refusal`], and the commands that only talk
//!   (`help`, `exit`, echo).
//! - [`files`]: `list`, `get`, `resume`, `put` on the share.
//! - [`manage`]: `mkdir`, `rm`, `rmdir`, `rmtree`, `mv`, `hash`.
//! - [`people`]: `status`, `info`, `name`, `say`.
//! - [`login`]: `login`, and what a session may do before it (`--users`).

pub mod files;
pub mod login;
pub mod manage;
pub mod people;

use common::text::escape;
use common::{Code, Header, ListEntry, PathError, Request, RequestError, Status};

use crate::config::Shared;
use crate::presence::{NameTaken, SessionInfo};
use crate::repo::RepoError;

pub use files::{FileReply, Incoming, PlainFile};

/// Every operation a door performs: the line protocol's requests, and what
/// the other doors need that is not a wire request.
pub enum Op {
    /// A request of the line protocol (which the web side maps its own onto).
    Request(Request),
    /// A file's bytes without their hash (a TFTP read, a file in an archive):
    /// whoever may `get` may.
    ReadPlain(String),
    /// One folder of a tree being archived: what `list` shows, less folders
    /// reached through a symbolic link, so a walk never loops.
    ArchiveFolder(String),
    /// An upload announced otherwise than by a `put` line (an HTTP `PUT`, a
    /// TFTP write): `put`'s rules.
    Upload {
        /// What is known of the bytes to come.
        announced: files::Announced,
        /// The share path.
        name: String,
    },
    /// What a path is (and, with `children`, what a folder holds), with the
    /// hashes known without reading: WebDAV's `PROPFIND`. `list`'s rights.
    Describe {
        /// The share path ("" for the top).
        path: String,
        /// A folder's entries too.
        children: bool,
    },
    /// A copy of a file or folder: WebDAV's `COPY`. `mv`'s rights.
    Copy {
        /// What is copied.
        from: String,
        /// Its new name.
        to: String,
        /// A folder with all in it (else an empty folder).
        recursive: bool,
        /// An existing `to` goes first.
        replace: bool,
    },
}

impl From<Request> for Op {
    fn from(request: Request) -> Op {
        Op::Request(request)
    }
}

/// The `help` reply.
pub const HELP: &str = "\
status                      uptime, connected clients and what each is doing
info                        the same as status, as key=value records for programs
list [dir]                  files and folders with size and modification time
get <name>                  download a file; the reply carries its BLAKE3 hash
resume <offset> <name>      the rest of a file from byte <offset>, with the whole file's hash
put [-f] [-c] [-m <secs>] <size> <blake3|-> <name>  upload; -f replaces, -c goes on from a cut-short one,
                            -m sets its time; - : the hash comes after the bytes (END ok blake3=, framed)
mkdir <dir>                 make a folder (needs --allow-uploads, as every change below)
rm <name>                   remove a file
rmdir <dir>                 remove an empty folder
rmtree <dir>                remove a folder and everything in it
mv [-f] <from> <to>         rename or move; -f replaces a file at <to>; quote a <from> with spaces
hash <name>                 the file's BLAKE3 as b3sum prints it
name <nick>                 choose the name others see (letters, digits, - _ .; up to 32)
say <text>                  send a line to every other connected client
frames on|off               transfers in DATA frames ended by END, so either side can stop one
cancel                      stop the framed downloads asked for before this line
help                        this list
login <name> <password>     log in to an account (servers started with --users)
exit                        say goodbye and close the connection
anything else               echoed back with \" ACK\"
";

/// Who runs a command: the server's shared state and the session asking.
#[derive(Clone, Copy)]
pub struct Caller<'a, 'w> {
    /// The settings, the share, who is connected.
    pub shared: &'a Shared,
    /// The session the request came from.
    pub session: &'a SessionInfo,
    /// Whether the client still wants the answer: false once it has sent
    /// `cancel` (a long command, like hashing a big file, stops then).
    pub wanted: &'w dyn Fn() -> bool,
}

/// What a command answers.
pub enum Outcome<'a> {
    /// Success: `OK` with these header fields and body.
    Ok {
        /// `key=value` pairs for the header.
        fields: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// The request was refused; the session goes on.
    Refused(Refusal),
    /// A file to send: the header, then its bytes.
    File(FileReply),
    /// An upload may begin: the client is told to go ahead, the front end
    /// reads the announced bytes into [`Incoming`], whose `finish` gives the
    /// final reply.
    Receive(Box<Incoming<'a>>),
    /// A folder's entries (`list`).
    Listing(Vec<ListEntry>),
    /// Who is connected and what each is doing: `status` (for people) or
    /// `info` (`records`: for programs).
    Status {
        /// The state.
        status: Box<Status>,
        /// Asked as `info`: sent as `key=value` records.
        records: bool,
    },
    /// A file's bytes without a hash ([`Op::ReadPlain`]).
    Plain(PlainFile),
    /// A path's entry, then (a folder's, when asked) its children's, and
    /// beside each its hash when known ([`Op::Describe`]).
    Described {
        /// The path's own entry.
        this: crate::repo::Described,
        /// A folder's entries, read as they are sent (when asked for).
        children: Option<crate::repo::Entries>,
    },
    /// A refusal, then the session ends for `reason` (too many failed logins).
    Ended {
        /// What the client is told.
        refusal: Refusal,
        /// Why the session ends, for the log.
        reason: &'static str,
    },
    /// A last text reply, then the session ends for `reason`.
    Close {
        /// The reply's body.
        body: String,
        /// Why the session ends, for the log.
        reason: &'static str,
    },
}

impl Outcome<'_> {
    /// `OK` with a text body and no fields.
    pub fn text(body: impl Into<String>) -> Outcome<'static> {
        Outcome::Ok { fields: Vec::new(), body: body.into().into_bytes() }
    }
}

/// A refused request: the code and the sentence of its `ERR` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of failure.
    pub code: Code,
    /// One line for the user; says what failed and on what.
    pub message: String,
    /// For a `429`: seconds until trying again may succeed (HTTP's `Retry-After`).
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into(), retry_after: None }
    }

    /// The same, saying when to try again.
    pub fn with_retry_after(mut self, secs: u64) -> Refusal {
        self.retry_after = Some(secs);
        self
    }

    /// A name that breaks the naming rules, quoted as the client sent it.
    pub fn bad_name(err: &PathError, name: &str) -> Refusal {
        Refusal::new(err.code(), format!("{err}: '{}'", escape(name)))
    }

    /// The `ERR` header.
    pub fn header(&self) -> Header {
        Header::err(self.code, &self.message)
    }
}

impl From<RepoError> for Refusal {
    fn from(err: RepoError) -> Refusal {
        Refusal::new(err.code(), err.to_string())
    }
}

impl From<RequestError> for Refusal {
    fn from(err: RequestError) -> Refusal {
        Refusal::new(Code::BadRequest, err.to_string())
    }
}

impl From<NameTaken> for Refusal {
    fn from(err: NameTaken) -> Refusal {
        Refusal::new(Code::Exists, err.to_string())
    }
}

impl<'a> From<Refusal> for Outcome<'a> {
    fn from(refusal: Refusal) -> Outcome<'a> {
        Outcome::Refused(refusal)
    }
}

/// Runs one request for `caller`.
pub fn apply<'a>(op: impl Into<Op>, caller: Caller<'a, '_>) -> Outcome<'a> {
    let op = op.into();
    if let Some(refusal) = login::admitted(&op, caller) {
        return Outcome::Refused(refusal);
    }
    let request = match op {
        Op::Request(request) => request,
        Op::ReadPlain(name) => return files::open_plain(caller, &name).unwrap_or_else(Outcome::Refused),
        Op::ArchiveFolder(dir) => return files::archive_folder(caller, &dir).unwrap_or_else(Outcome::Refused),
        Op::Upload { announced, name } => return files::put(caller, announced, &name).unwrap_or_else(Outcome::Refused),
        Op::Describe { path, children } => {
            return files::describe(caller, &path, children).unwrap_or_else(Outcome::Refused)
        }
        Op::Copy { from, to, recursive, replace } => {
            return manage::copy(caller, &from, &to, recursive, replace).unwrap_or_else(Outcome::Refused)
        }
    };
    let outcome = match request {
        Request::Status => Ok(people::status(caller)),
        Request::Info => Ok(people::info(caller)),
        Request::List(dir) => files::list(caller, &dir),
        Request::Get(name) => files::get(caller, &name, 0),
        Request::Resume { offset, name } => files::get(caller, &name, offset),
        Request::Put { size, digest, name, replace, modified, resume } => {
            let check = digest.map_or(files::Check::After, files::Check::Before);
            files::put(caller, files::Announced { size, check, replace, modified, resume }, &name)
        }
        Request::Mkdir(dir) => manage::make_dir(caller, &dir),
        Request::Remove(name) => manage::remove(caller, &name),
        Request::Rmdir(dir) => manage::remove_dir(caller, &dir, false),
        Request::RemoveTree(dir) => manage::remove_dir(caller, &dir, true),
        Request::Move { from, to, replace } => manage::rename(caller, &from, &to, replace),
        Request::Hash(name) => manage::hash(caller, &name),
        Request::Name(nick) => people::rename(caller, &nick),
        Request::Say(text) => people::say(caller, &text),
        Request::Login { user, password } => login::login(caller, &user, &password),
        Request::Help => Ok(Outcome::text(HELP)),
        Request::Exit => Ok(Outcome::Close { body: "bye\n".into(), reason: "exit" }),
        Request::Echo(text) => Ok(Outcome::text(format!("{text} ACK\n"))),
        // How bytes travel is the front end's business: the line protocol's
        // session answers these itself and never brings them here.
        Request::Frames(_) | Request::Cancel => {
            Err(Refusal::new(Code::BadRequest, "frames and cancel belong to the line protocol"))
        }
    };
    outcome.unwrap_or_else(Outcome::Refused)
}

/// Parses a request line and runs it; a line that misuses a command is refused.
pub fn apply_line<'a>(line: &str, caller: Caller<'a, '_>) -> Outcome<'a> {
    match Request::parse(line) {
        Ok(request) => apply(request, caller),
        Err(e) => Outcome::Refused(e.into()),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A server's shared state on a temporary share, with sessions that have
    //! no connection: enough to run any command.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use crossbeam_channel::{unbounded, Receiver};

    use super::{Caller, Outcome};
    use crate::config::{Config, Shared};
    use crate::presence::{Notice, Registration};
    use crate::repo::Repo;
    use crate::transport::Closer;

    /// A share in a temporary folder and the server state around it.
    pub struct Bench {
        pub dir: tempfile::TempDir,
        pub shared: Shared,
    }

    impl Bench {
        pub fn new(config: Config) -> Bench {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repo::open(dir.path()).unwrap();
            if config.allow_uploads {
                repo.prepare_uploads().unwrap();
            }
            Bench { shared: Shared::new(config, repo).expect("shared state"), dir }
        }

        pub fn add(&self, name: &str, content: &[u8]) {
            let path = self.dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }

        /// A registered session and the notices it receives.
        pub fn join(&self, port: u16) -> (Registration, Receiver<Notice>) {
            let (tx, rx) = unbounded();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            (Arc::clone(&self.shared.presence).register(addr, Closer::default(), tx), rx)
        }

        pub fn caller<'a>(&'a self, session: &'a Registration) -> Caller<'a, 'a> {
            Caller { shared: &self.shared, session, wanted: &|| true }
        }
    }

    /// The body of an `OK` reply as text; panics on any other reply.
    pub fn ok_text(reply: Outcome<'_>) -> String {
        match reply {
            Outcome::Ok { body, .. } => String::from_utf8(body).unwrap(),
            Outcome::Refused(r) => panic!("refused: {} {}", r.code, r.message),
            _ => panic!("not a text reply"),
        }
    }

    /// The entries of a listing; panics on any other reply.
    pub fn listing(reply: Outcome<'_>) -> Vec<common::ListEntry> {
        match reply {
            Outcome::Listing(entries) => entries,
            Outcome::Refused(r) => panic!("refused: {} {}", r.code, r.message),
            _ => panic!("not a listing"),
        }
    }

    /// The refusal of a reply; panics on any other reply.
    pub fn refused(reply: Outcome<'_>) -> (u16, String) {
        match reply {
            Outcome::Refused(r) => (r.code.number(), r.message),
            _ => panic!("not refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{ok_text, refused, Bench};
    use super::*;
    use crate::config::Config;

    #[test]
    fn echo_help_and_exit() {
        let bench = Bench::new(Config::default());
        let (me, _) = bench.join(1);
        assert_eq!(ok_text(apply_line("Hello Server!", bench.caller(&me))), "Hello Server! ACK\n");
        assert_eq!(ok_text(apply_line("HELP", bench.caller(&me))), HELP);
        match apply_line("exit", bench.caller(&me)) {
            Outcome::Close { body, reason } => assert_eq!((body.as_str(), reason), ("bye\n", "exit")),
            _ => panic!("exit must close"),
        };
    }

    #[test]
    fn a_misused_command_is_refused_with_its_usage() {
        let bench = Bench::new(Config::default());
        let (me, _) = bench.join(1);
        assert_eq!(refused(apply_line("status please", bench.caller(&me))), (400, "'status' takes no argument".into()));
        assert_eq!(refused(apply_line("get", bench.caller(&me))), (400, "missing argument: usage: get <name>".into()));
    }
}
