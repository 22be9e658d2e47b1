//! Accounts (`--users FILE`): names with Argon2 password hashes and the
//! right to read or also write; checking a login so that an unknown name
//! and a wrong password take the same time; [`Penalties`], which make a
//! source or an account that keeps failing wait longer each time, refused at
//! once while it waits; and [`PasswordChecks`], the few threads every
//! password check runs on.
//!
//! The file has one account a line, `NAME:RIGHTS:PHC`, where RIGHTS is
//! `read` or `write` and PHC the Argon2id hash as a PHC string
//! (`$argon2id$v=19$m=...`). `file-server adduser` writes it; lines starting
//! with `#` are comments.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::PasswordHasher;
use argon2::Argon2;
use parking_lot::Mutex;

/// One account as a session holds it once logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's name.
    pub name: String,
    /// May change the share (put, mkdir, rm, mv...), not only read it.
    pub write: bool,
}

impl Account {
    /// Its rights in words, for replies and logs.
    pub fn rights(&self) -> &'static str {
        if self.write {
            "read and write"
        } else {
            "read only"
        }
    }
}

/// The accounts of `--users`, loaded at start.
pub struct Accounts {
    by_name: HashMap<String, (Account, String)>,
    /// The hash of a password nobody knows, checked for unknown names so
    /// that they take as long as a wrong password.
    decoy: String,
}

/// Why the users file cannot be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// It cannot be read or written.
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
    /// A line is not `NAME:RIGHTS:PHC`.
    #[error("{path} line {line}: {reason}")]
    Bad { path: PathBuf, line: usize, reason: String },
    /// A name or password that cannot be an account's.
    #[error("{0}")]
    Invalid(String),
}

/// Hashes `password` as Argon2id with a fresh salt: a PHC string.
///
/// # Errors
/// When the system gives no randomness for the salt.
pub fn hash_password(password: &str) -> Result<String, AccountsError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AccountsError::Invalid(format!("cannot hash the password: {e}")))
}

/// An account name: the rules of display names (letters, digits, `-`, `_`,
/// `.`; at most 32), so that it can be one.
///
/// # Errors
/// Saying which rule it breaks.
pub fn check_name(name: &str) -> Result<(), AccountsError> {
    common::validate_nick(name).map_err(|e| AccountsError::Invalid(format!("{e}: '{}'", common::text::escape(name))))
}

/// A password for an account: not empty, no control characters, and no
/// spaces at either end (the protocol's `login` line trims them).
///
/// # Errors
/// Saying which rule it breaks.
pub fn check_password(password: &str) -> Result<(), AccountsError> {
    if password.is_empty() {
        return Err(AccountsError::Invalid("the password is empty".into()));
    }
    if password.trim() != password {
        return Err(AccountsError::Invalid("the password starts or ends with a space".into()));
    }
    if password.chars().any(char::is_control) {
        return Err(AccountsError::Invalid("the password holds a control character".into()));
    }
    Ok(())
}

impl Accounts {
    /// Reads the users file.
    ///
    /// # Errors
    /// When it cannot be read or a line is not an account.
    pub fn load(path: &Path) -> Result<Accounts, AccountsError> {
        let text = fs::read_to_string(path).map_err(|source| AccountsError::File { path: path.into(), source })?;
        let mut by_name = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| AccountsError::Bad { path: path.into(), line: i + 1, reason };
            let (account, phc) = parse_line(line).map_err(bad)?;
            by_name.insert(account.name.clone(), (account, phc));
        }
        Ok(Accounts { by_name, decoy: hash_password("\u{0}never a password\u{0}")? })
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when the file holds no account.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// True when `name` is an account's (display names of others may not take it).
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The account `name` when `password` is its password. Takes one
    /// Argon2 check whether or not the name exists.
    pub fn check(&self, name: &str, password: &str) -> Option<Account> {
        self.check_in(name, password, &mut Vec::new())
    }

    /// [`Accounts::check`], with `memory` as Argon2's working memory (grown
    /// to what the hash asks, 19 MiB by default, and kept by the caller for
    /// the next check: memory freed and asked for again was seen to grow
    /// the server by that much per check).
    pub fn check_in(&self, name: &str, password: &str, memory: &mut Vec<argon2::Block>) -> Option<Account> {
        let (account, phc) = match self.by_name.get(name) {
            Some((account, phc)) => (Some(account), phc.as_str()),
            None => (None, self.decoy.as_str()),
        };
        let matches = PasswordHash::new(phc).is_ok_and(|hash| verify(password, &hash, memory));
        account.filter(|_| matches).cloned()
    }
}

/// The users file's permission bits when its group or others may read or
/// write it (it should be 0600, as `adduser` makes it); `None` when they may
/// not, or it cannot be seen.
pub fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Whether `password` hashes to `phc`, computed in `memory` (the argon2
/// crate's own check, with the working memory the caller keeps).
fn verify(password: &str, phc: &PasswordHash, memory: &mut Vec<argon2::Block>) -> bool {
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let (Ok(algorithm), Ok(params)) =
        (argon2::Algorithm::try_from(phc.algorithm.as_str()), argon2::Params::try_from(phc))
    else {
        return false;
    };
    let Ok(version) = phc.version.map(argon2::Version::try_from).transpose() else { return false };
    memory.resize(params.block_count(), argon2::Block::new());
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    argon2.hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, &mut memory[..]).is_ok()
        // Output's comparison takes the same time wherever the bytes differ.
        && argon2::password_hash::phc::Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// `NAME:RIGHTS:PHC` as an account and its hash.
fn parse_line(line: &str) -> Result<(Account, String), String> {
    let mut parts = line.splitn(3, ':');
    let (Some(name), Some(rights), Some(phc)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not NAME:RIGHTS:HASH".into());
    };
    check_name(name).map_err(|e| e.to_string())?;
    let write = match rights {
        "read" => false,
        "write" => true,
        other => return Err(format!("rights '{}' are neither read nor write", common::text::escape(other))),
    };
    PasswordHash::new(phc).map_err(|e| format!("not a PHC password hash: {e}"))?;
    Ok((Account { name: name.to_string(), write }, phc.to_string()))
}

/// Adds the account `name` to the users file (made, mode 0600, if missing)
/// or updates its password and rights; the file is replaced atomically.
/// True when it was added, false when updated.
///
/// # Errors
/// When the name or password breaks the rules, or the file cannot be
/// read or written.
pub fn add_user(path: &Path, name: &str, password: &str, write: bool) -> Result<bool, AccountsError> {
    check_name(name)?;
    check_password(password)?;
    let file_error = |source| AccountsError::File { path: path.into(), source };
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(e)),
    };
    let rights = if write { "write" } else { "read" };
    let entry = format!("{name}:{rights}:{}", hash_password(password)?);
    let mut added = true;
    let mut lines: Vec<String> = old
        .lines()
        .map(|line| {
            if line.split(':').next() == Some(name) {
                added = false;
                entry.clone()
            } else {
                line.to_string()
            }
        })
        .collect();
    if added {
        lines.push(entry);
    }
    let tmp = path.with_extension("tmp");
    let mut out =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(file_error)?;
    out.write_all((lines.join("\n") + "\n").as_bytes()).and_then(|()| out.sync_all()).map_err(file_error)?;
    fs::rename(&tmp, path).map_err(file_error)?;
    Ok(added)
}

/// Failed logins, remembered per source (an IPv4 address, or an IPv6 /64)
/// and per account name, so that guessing costs the guesser, not the server.
///
/// Each failure raises its source's and its account's level by one and
/// penalises both for `base × 2^(level−1)` (up to 64 × `base`); a level
/// decays by one for each [`Penalties::DECAY`] without failures. While a
/// source is penalised, or already has a login being checked, its next
/// attempt is refused at once ([`Penalties::begin`] gives the wait), with no
/// password check and no slot held. The same holds for an account, except
/// from a source that has logged in to it before: a guesser spread over many
/// addresses slows the account down for strangers, not for its owner. A
/// success clears nothing: the levels only decay.
pub struct Penalties {
    base: Duration,
    state: Mutex<PenaltyState>,
}

#[derive(Default)]
struct PenaltyState {
    sources: HashMap<IpAddr, Record>,
    accounts: HashMap<String, Record>,
    /// Sources that logged in to an account, and when.
    known: HashMap<(IpAddr, String), Instant>,
    /// Sources that logged in to any account, and when last.
    known_sources: HashMap<IpAddr, Instant>,
}

/// One source's or account's failures.
#[derive(Clone, Copy)]
struct Record {
    level: u32,
    /// The last failure (levels decay from it).
    last: Instant,
    /// Refused at once until then.
    until: Instant,
    /// A login is being checked now.
    checking: bool,
    /// The last attempt refused at once (penalised, or one under way).
    refused: Option<Instant>,
}

impl Record {
    fn new(now: Instant) -> Record {
        Record { level: 0, last: now, until: now, checking: false, refused: None }
    }

    /// Neither failed nor refused for a while: behaves as its owner would.
    fn quiet(&self, now: Instant) -> bool {
        self.level(now) == 0 && self.refused.is_none_or(|t| now.duration_since(t) >= Penalties::DECAY)
    }

    /// The level once decay is counted.
    fn level(&self, now: Instant) -> u32 {
        let steps = now.duration_since(self.last).as_secs() / Penalties::DECAY.as_secs();
        self.level.saturating_sub(u32::try_from(steps).unwrap_or(u32::MAX))
    }

    /// How long an attempt must wait, if at all: a penalty, or a check under way.
    fn wait(&self, now: Instant, base: Duration) -> Option<Duration> {
        if now < self.until {
            return Some(self.until - now);
        }
        self.checking.then_some(base)
    }

    fn fail(&mut self, now: Instant, base: Duration) {
        self.level = self.level(now).saturating_add(1);
        self.last = now;
        self.until = now + base * 2u32.pow(self.level.saturating_sub(1).min(6));
    }

    /// Nothing left to remember.
    fn forgotten(&self, now: Instant) -> bool {
        !self.checking && now >= self.until && self.quiet(now)
    }
}

/// A login being checked: holds its source's and account's turn until
/// dropped, and says how it ended with [`Attempt::failed`] or [`Attempt::succeeded`].
pub struct Attempt<'a> {
    penalties: &'a Penalties,
    source: IpAddr,
    account: String,
    /// The account gate was passed as a known source (its turn not held).
    known: bool,
}

impl Penalties {
    /// How long a level takes to decay by one.
    pub const DECAY: Duration = Duration::from_secs(60);
    /// How long a source is remembered as having logged in to an account.
    const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Sources, accounts and known pairs remembered at most each; beyond,
    /// those with nothing left to hold are forgotten first.
    const MAX_ENTRIES: usize = 65_536;

    /// Penalties whose first step is `base`.
    pub fn new(base: Duration) -> Penalties {
        Penalties { base, state: Mutex::new(PenaltyState::default()) }
    }

    /// The step penalties are counted in, and the time every answer to a
    /// login takes at least (successes and failures alike).
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The source an address counts as: itself, or its /64 for IPv6 (one
    /// machine commonly holds a whole /64).
    pub fn source(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
            v4 => v4,
        }
    }

    /// Whether `ip`'s source has logged in to some account before (within
    /// the time it is remembered) and has no failed login of late (its level
    /// has decayed to nothing, and none refused for a minute): such an
    /// address gets a place to log in even while strangers take every other
    /// one. An address that guesses, even one that also logs in to an
    /// account of its own, loses that.
    pub fn is_known(&self, ip: IpAddr) -> bool {
        let (now, source) = (Instant::now(), Self::source(ip));
        let state = self.state.lock();
        let logged_in =
            state.known_sources.get(&source).is_some_and(|since| now.duration_since(*since) < Self::KNOWN_FOR);
        logged_in && state.sources.get(&source).is_none_or(|r| r.quiet(now))
    }

    /// Begins a login from `ip` to `account`, or says how long to wait
    /// before trying again (the source or the account is penalised, or has
    /// a login being checked).
    ///
    /// # Errors
    /// The wait, when the attempt may not be made now.
    pub fn begin(&self, ip: IpAddr, account: &str) -> Result<Attempt<'_>, Duration> {
        let (now, source) = (Instant::now(), Self::source(ip));
        let mut state = self.state.lock();
        let state = &mut *state;
        if state.sources.len() >= Self::MAX_ENTRIES || state.accounts.len() >= Self::MAX_ENTRIES {
            state.sources.retain(|_, r| !r.forgotten(now));
            state.accounts.retain(|_, r| !r.forgotten(now));
        }
        let known = state
            .known
            .get(&(source, account.to_string()))
            .is_some_and(|since| now.duration_since(*since) < Self::KNOWN_FOR);
        let by_source = state.sources.get(&source).and_then(|r| r.wait(now, self.base));
        let by_account = if known { None } else { state.accounts.get(account).and_then(|r| r.wait(now, self.base)) };
        if let Some(wait) = by_source.max(by_account) {
            state.sources.entry(source).or_insert_with(|| Record::new(now)).refused = Some(now);
            return Err(wait);
        }
        state.sources.entry(source).or_insert_with(|| Record::new(now)).checking = true;
        if !known {
            state.accounts.entry(account.to_string()).or_insert_with(|| Record::new(now)).checking = true;
        }
        Ok(Attempt { penalties: self, source, account: account.to_string(), known })
    }
}

impl Attempt<'_> {
    /// The password was wrong (or the name unknown): both the source and the
    /// account are penalised.
    pub fn failed(self) {
        let (now, base) = (Instant::now(), self.penalties.base);
        let mut state = self.penalties.state.lock();
        if let Some(r) = state.sources.get_mut(&self.source) {
            r.fail(now, base);
        }
        let account = state.accounts.entry(self.account.clone()).or_insert_with(|| Record::new(now));
        account.fail(now, base);
    }

    /// The login succeeded: its source is known to the account from now on.
    pub fn succeeded(self) {
        let now = Instant::now();
        let mut state = self.penalties.state.lock();
        if state.known.len() >= Penalties::MAX_ENTRIES {
            state.known.retain(|_, since| now.duration_since(*since) < Penalties::KNOWN_FOR);
            if state.known.len() >= Penalties::MAX_ENTRIES {
                state.known.clear();
            }
            state.known_sources.retain(|_, since| now.duration_since(*since) < Penalties::KNOWN_FOR);
            if state.known_sources.len() >= Penalties::MAX_ENTRIES {
                state.known_sources.clear();
            }
        }
        state.known.insert((self.source, self.account.clone()), now);
        state.known_sources.insert(self.source, now);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut state = self.penalties.state.lock();
        if let Some(r) = state.sources.get_mut(&self.source) {
            r.checking = false;
        }
        if !self.known {
            if let Some(r) = state.accounts.get_mut(&self.account) {
                r.checking = false;
            }
        }
    }
}

/// Password checks run here, on a fixed set of threads (at most one per
/// core): each Argon2 check takes 19 MiB while it runs, so however many
/// logins arrive at once, memory stays bounded (and the threads' memory is
/// reused rather than grown).
pub struct PasswordChecks {
    jobs: Option<crossbeam_channel::Sender<Check>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

/// One check: the accounts, the name and password, and where the answer goes.
struct Check {
    accounts: std::sync::Arc<Accounts>,
    name: String,
    password: String,
    answer: crossbeam_channel::Sender<Option<Account>>,
}

impl PasswordChecks {
    /// Checks waiting for a thread at most; beyond, a login is told to try again.
    const QUEUE: usize = 64;

    /// `threads` checking threads (at least one).
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn new(threads: usize) -> io::Result<PasswordChecks> {
        let (jobs, queue) = crossbeam_channel::bounded::<Check>(Self::QUEUE);
        let workers = (0..threads.max(1))
            .map(|i| {
                let queue = queue.clone();
                std::thread::Builder::new().name(format!("password-{i}")).spawn(move || {
                    // Argon2's working memory, the same for every check on this thread.
                    let mut memory = Vec::new();
                    for check in queue {
                        let _ = check.answer.send(check.accounts.check_in(&check.name, &check.password, &mut memory));
                    }
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(PasswordChecks { jobs: Some(jobs), workers })
    }

    /// The account `name` when `password` is its password, checked on one of
    /// the threads; `None` for a wrong password or an unknown name, and
    /// `Err` when too many checks wait already (try again shortly).
    ///
    /// # Errors
    /// When the queue is full or the checks have stopped.
    pub fn check(
        &self,
        accounts: &std::sync::Arc<Accounts>,
        name: &str,
        password: &str,
    ) -> Result<Option<Account>, ChecksBusy> {
        let (answer, answered) = crossbeam_channel::bounded(1);
        let check = Check {
            accounts: std::sync::Arc::clone(accounts),
            name: name.to_string(),
            password: password.to_string(),
            answer,
        };
        self.jobs.as_ref().ok_or(ChecksBusy)?.try_send(check).map_err(|_| ChecksBusy)?;
        answered.recv().map_err(|_| ChecksBusy)
    }
}

/// Too many password checks wait already.
#[derive(Debug, thiserror::Error)]
#[error("too many logins are being checked")]
pub struct ChecksBusy;

impl Drop for PasswordChecks {
    fn drop(&mut self) {
        // Closing the queue stops the threads once they are done.
        drop(self.jobs.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_written_hashed_and_logins_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        assert!(add_user(&file, "alice", "correct horse", true).unwrap());
        assert!(add_user(&file, "bob", "hunter2", false).unwrap());
        let text = fs::read_to_string(&file).unwrap();
        assert!(!text.contains("correct horse") && !text.contains("hunter2"), "never in clear");
        assert!(text.contains("alice:write:$argon2id$"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

        let accounts = Accounts::load(&file).unwrap();
        assert_eq!(accounts.check("alice", "correct horse"), Some(Account { name: "alice".into(), write: true }));
        assert_eq!(accounts.check("alice", "correct horsE"), None);
        assert_eq!(accounts.check("carol", "correct horse"), None);
        assert_eq!(accounts.check("bob", "hunter2").map(|a| a.write), Some(false));

        // Updating keeps one line per account.
        assert!(!add_user(&file, "bob", "new one", true).unwrap());
        let accounts = Accounts::load(&file).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts.check("bob", "hunter2"), None);
        assert!(accounts.check("bob", "new one").is_some_and(|a| a.write));
    }

    #[test]
    fn bad_names_passwords_and_lines_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        assert!(add_user(&file, "a b", "pw", false).is_err());
        assert!(add_user(&file, "ok", " pw", false).is_err());
        assert!(add_user(&file, "ok", "", false).is_err());
        fs::write(&file, "alice:admin:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA\n").unwrap();
        let err = Accounts::load(&file).err().unwrap().to_string();
        assert!(err.contains("line 1") && err.contains("admin"), "{err}");
    }

    #[test]
    fn a_source_is_refused_while_penalised_or_checking_and_levels_double() {
        let penalties = Penalties::new(Duration::from_millis(100));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = penalties.begin(a, "alice").expect("a first attempt goes ahead");
        assert!(penalties.begin(a, "bob").is_err(), "one check at a time per source");
        assert!(penalties.begin(b, "alice").is_err(), "and per account, for strangers");
        first.failed();
        let wait = penalties.begin(a, "carol").err().expect("penalised");
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100), "{wait:?}");
        let wait = penalties.begin(b, "alice").err().expect("the account too");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        penalties.begin(b, "bob").expect("other sources and accounts go ahead").failed();
        // The level doubles the penalty: 100, 200, 400 ms ... up to 64 ×.
        let mut state = penalties.state.lock();
        let now = Instant::now();
        let r = state.sources.get_mut(&a).unwrap();
        r.until = now;
        r.fail(now, Duration::from_millis(100));
        assert_eq!(r.level, 2);
        assert_eq!(r.until - now, Duration::from_millis(200));
        for _ in 0..10 {
            r.fail(now, Duration::from_millis(100));
        }
        assert_eq!(r.until - now, Duration::from_millis(6400));
        // A minute without failures takes a level off.
        assert_eq!(r.level(now + Penalties::DECAY), r.level - 1);
    }

    #[test]
    fn a_known_source_passes_the_account_gate_and_a_success_clears_nothing() {
        let penalties = Penalties::new(Duration::from_millis(200));
        let (home, guesser): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.9.9".parse().unwrap());
        penalties.begin(home, "alice").unwrap().succeeded();
        penalties.begin(guesser, "alice").unwrap().failed();
        assert!(penalties.begin("10.0.0.3".parse().unwrap(), "alice").is_err(), "strangers wait");
        penalties.begin(home, "alice").expect("the owner's address is not held back").succeeded();
        assert!(penalties.is_known(home) && !penalties.is_known(guesser));
        // A guesser that logs in to an account of its own is not known while it guesses...
        let mut state = penalties.state.lock();
        state.known_sources.insert(Penalties::source(guesser), Instant::now());
        drop(state);
        assert!(!penalties.is_known(guesser));
        // ...nor one whose tries are only ever refused at once.
        let prober: IpAddr = "10.0.7.7".parse().unwrap();
        penalties.begin(prober, "bob").unwrap().succeeded();
        assert!(penalties.is_known(prober));
        assert!(penalties.begin(prober, "alice").is_err(), "alice is penalised for strangers");
        assert!(!penalties.is_known(prober));
        // The guesser's own account's success does not clear its failures.
        assert!(penalties.begin(guesser, "mallory").is_err());
    }

    #[test]
    fn ipv6_sources_are_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(Penalties::source(a), Penalties::source(b));
        assert_ne!(Penalties::source(a), Penalties::source("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(Penalties::source("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn checks_run_on_the_pool_and_a_full_queue_says_busy() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        add_user(&file, "alice", "pw one", true).unwrap();
        let accounts = std::sync::Arc::new(Accounts::load(&file).unwrap());
        let checks = PasswordChecks::new(1).unwrap();
        assert_eq!(checks.check(&accounts, "alice", "pw one").unwrap().map(|a| a.name), Some("alice".into()));
        assert_eq!(checks.check(&accounts, "alice", "pw two").unwrap(), None);
    }
}
