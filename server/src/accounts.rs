//! Accounts (`--users FILE`): names with Argon2 password hashes and the
//! right to read or also write; checking a login so that an unknown name
//! and a wrong password take the same time; and [`Throttle`], which makes an
//! address that keeps guessing wait longer each time.
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
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
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
        let (account, phc) = match self.by_name.get(name) {
            Some((account, phc)) => (Some(account), phc.as_str()),
            None => (None, self.decoy.as_str()),
        };
        let matches = PasswordHash::new(phc)
            .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok());
        account.filter(|_| matches).cloned()
    }
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

/// Failed logins per address, and how long the next answer waits: an
/// address that keeps failing waits twice as long each time (from `base`,
/// up to 64 × `base`); other addresses are not slowed. An address's count
/// is forgotten after [`Throttle::FORGET`] without failures, or on a login.
pub struct Throttle {
    base: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    /// How long an address's failures are remembered.
    pub const FORGET: Duration = Duration::from_secs(15 * 60);
    /// Addresses remembered at most; beyond, the quiet ones are forgotten first.
    const MAX_ADDRESSES: usize = 65_536;

    /// A throttle whose first wait is `base`.
    pub fn new(base: Duration) -> Throttle {
        Throttle { base, failures: Mutex::new(HashMap::new()) }
    }

    /// Counts a failure from `ip`; how long to wait before answering it.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= Self::MAX_ADDRESSES {
            failures.retain(|_, (_, last)| now.duration_since(*last) < Self::FORGET);
        }
        let entry = failures.entry(ip.to_canonical()).or_insert((0, now));
        if now.duration_since(entry.1) >= Self::FORGET {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        self.base * 2u32.pow(entry.0.saturating_sub(1).min(6))
    }

    /// A login from `ip` succeeded: its count starts over.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().remove(&ip.to_canonical());
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
    fn an_address_that_keeps_failing_waits_longer_and_others_do_not() {
        let throttle = Throttle::new(Duration::from_millis(100));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let waits: Vec<u128> = (0..9).map(|_| throttle.failed(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 6400, 6400, 6400]);
        assert_eq!(throttle.failed(b), Duration::from_millis(100));
        throttle.succeeded(a);
        assert_eq!(throttle.failed(a), Duration::from_millis(100));
    }
}
