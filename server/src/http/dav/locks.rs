//! WebDAV locks (class 2) and the `If:` header. A lock is the web side's
//! own (in memory, one table per server, shared by its connections): it
//! binds WebDAV clients, which must show its token (in `If:`) to change what
//! it covers; it expires unless refreshed. The line protocol and TFTP do not
//! see locks, as Apache's mod_dav's locks bind DAV clients alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The longest a lock is granted for (a client asking `Infinite` gets this).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A lock's timeout when the client asks none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// One lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// `opaquelocktoken:…`.
    pub token: String,
    /// The share path it was taken on ("" for the top).
    pub root: String,
    /// Depth infinity: everything below `root` too.
    pub infinite: bool,
    /// Exclusive (else shared).
    pub exclusive: bool,
    /// What the client said of who holds it (`owner`, as text).
    pub owner: String,
    /// As granted.
    pub timeout: Duration,
    expires: Instant,
}

impl Lock {
    /// Whether it covers `path`: its root, or below it with depth infinity.
    pub fn covers(&self, path: &str) -> bool {
        self.root == path || (self.infinite && is_below(path, &self.root))
    }

    /// Seconds left.
    pub fn seconds_left(&self) -> u64 {
        self.expires.saturating_duration_since(Instant::now()).as_secs()
    }
}

/// Whether `path` is strictly below `dir` ("" is the top).
pub fn is_below(path: &str, dir: &str) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Why a lock is not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Another lock conflicts.
    Conflict(String),
}

/// The server's locks.
#[derive(Debug, Default)]
pub struct Locks {
    table: Mutex<HashMap<String, Lock>>,
    made: AtomicU64,
}

impl Locks {
    /// Takes a lock on `root`, unless one conflicts: an exclusive lock
    /// conflicts with any other over the same resources, a shared one with
    /// exclusive ones.
    ///
    /// # Errors
    /// [`Refused::Conflict`] with the conflicting lock's root.
    pub fn lock(
        &self,
        root: &str,
        infinite: bool,
        exclusive: bool,
        owner: &str,
        timeout: Duration,
    ) -> Result<Lock, Refused> {
        let mut table = self.table.lock();
        purge(&mut table);
        let overlaps = |other: &Lock| other.covers(root) || (infinite && is_below(&other.root, root));
        if let Some(other) = table.values().find(|other| overlaps(other) && (exclusive || other.exclusive)) {
            return Err(Refused::Conflict(other.root.clone()));
        }
        let timeout = timeout.min(MAX_TIMEOUT);
        let lock = Lock {
            token: self.new_token(),
            root: root.to_string(),
            infinite,
            exclusive,
            owner: owner.to_string(),
            timeout,
            expires: Instant::now() + timeout,
        };
        table.insert(lock.token.clone(), lock.clone());
        Ok(lock)
    }

    /// Refreshes the lock `token` that covers `path`.
    pub fn refresh(&self, token: &str, path: &str, timeout: Duration) -> Option<Lock> {
        let mut table = self.table.lock();
        purge(&mut table);
        let lock = table.get_mut(token).filter(|l| l.covers(path))?;
        lock.timeout = timeout.min(MAX_TIMEOUT);
        lock.expires = Instant::now() + lock.timeout;
        Some(lock.clone())
    }

    /// Removes the lock `token` if it covers `path`; whether it did.
    pub fn unlock(&self, token: &str, path: &str) -> bool {
        let mut table = self.table.lock();
        purge(&mut table);
        if table.get(token).is_some_and(|l| l.covers(path)) {
            table.remove(token);
            return true;
        }
        false
    }

    /// The locks covering `path`.
    pub fn covering(&self, path: &str) -> Vec<Lock> {
        let mut table = self.table.lock();
        purge(&mut table);
        table.values().filter(|l| l.covers(path)).cloned().collect()
    }

    /// The locks a change to `path` (and, with `tree`, to all below it) must
    /// show the tokens of.
    pub fn in_the_way(&self, path: &str, tree: bool) -> Vec<Lock> {
        let mut table = self.table.lock();
        purge(&mut table);
        table.values().filter(|l| l.covers(path) || (tree && is_below(&l.root, path))).cloned().collect()
    }

    /// Whether `token` is a lock now.
    pub fn exists(&self, token: &str) -> bool {
        let mut table = self.table.lock();
        purge(&mut table);
        table.contains_key(token)
    }

    /// Drops the locks on `path` and below: a resource deleted or moved
    /// away loses its locks (RFC 4918: locks do not move with it).
    pub fn remove_tree(&self, path: &str) {
        self.table.lock().retain(|_, l| !(l.root == path || is_below(&l.root, path)));
    }

    fn new_token(&self) -> String {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let seed = format!("{n} {:?} {}", Instant::now(), std::process::id());
        let hex = blake3::hash(seed.as_bytes()).to_hex();
        format!("opaquelocktoken:{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
    }
}

fn purge(table: &mut HashMap<String, Lock>) {
    let now = Instant::now();
    table.retain(|_, l| l.expires > now);
}

/// A lock's timeout as asked (`Timeout: Second-600, Infinite`): the first
/// the server understands.
pub fn asked_timeout(header: Option<&str>) -> Duration {
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .find_map(|t| match t.trim() {
            "Infinite" => Some(MAX_TIMEOUT),
            t => t.strip_prefix("Second-").and_then(|s| s.parse().ok()).map(Duration::from_secs),
        })
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// One condition of an `If:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Not`.
    pub not: bool,
    /// A state token (`<opaquelocktoken:…>`) or an entity tag (`["…"]`).
    pub what: Check,
}

/// What a condition checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A lock token.
    Token(String),
    /// An entity tag, quotes included.
    ETag(String),
}

/// One list of an `If:` header: for the request's resource (no tag) or for
/// the resource its tag names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The resource it is about (a URL or path), when tagged.
    pub resource: Option<String>,
    /// All must hold.
    pub conditions: Vec<Condition>,
}

/// Reads an `If:` header (RFC 4918 §10.4).
///
/// # Errors
/// When it is not one (`400`).
pub fn parse_if(header: &str) -> Result<Vec<List>, String> {
    let mut lists = Vec::new();
    let mut rest = header.trim();
    let mut resource = None;
    while !rest.is_empty() {
        if let Some(tagged) = rest.strip_prefix('<') {
            let end = tagged.find('>').ok_or("an unclosed resource tag")?;
            resource = Some(tagged[..end].to_string());
            rest = tagged[end + 1..].trim_start();
            continue;
        }
        let body = rest.strip_prefix('(').ok_or("a list must be in parentheses")?;
        let end = body.find(')').ok_or("an unclosed list")?;
        let mut conditions = Vec::new();
        let mut items = body[..end].trim();
        while !items.is_empty() {
            let (not, item) = match items.strip_prefix("Not") {
                Some(after) => (true, after.trim_start()),
                None => (false, items),
            };
            let (what, after) = if let Some(token) = item.strip_prefix('<') {
                let close = token.find('>').ok_or("an unclosed state token")?;
                (Check::Token(token[..close].to_string()), &token[close + 1..])
            } else if let Some(tag) = item.strip_prefix('[') {
                let close = tag.find(']').ok_or("an unclosed entity tag")?;
                (Check::ETag(tag[..close].to_string()), &tag[close + 1..])
            } else {
                return Err("a condition is a <state token> or an [entity tag]".into());
            };
            conditions.push(Condition { not, what });
            items = after.trim_start();
        }
        if conditions.is_empty() {
            return Err("an empty list".into());
        }
        lists.push(List { resource: resource.clone(), conditions });
        rest = body[end + 1..].trim_start();
    }
    if lists.is_empty() {
        return Err("no list".into());
    }
    Ok(lists)
}

/// The lock tokens an `If:` header submits (wherever they appear).
pub fn submitted_tokens(lists: &[List]) -> Vec<&str> {
    lists
        .iter()
        .flat_map(|l| &l.conditions)
        .filter_map(|c| match &c.what {
            Check::Token(t) if !c.not => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_conflict_cover_refresh_and_go() {
        let locks = Locks::default();
        let a = locks.lock("docs", true, true, "alice", Duration::from_secs(60)).unwrap();
        assert!(a.token.starts_with("opaquelocktoken:") && a.token.len() == 16 + 36);
        assert_eq!(
            locks.lock("docs/x.txt", false, false, "bob", DEFAULT_TIMEOUT),
            Err(Refused::Conflict("docs".into()))
        );
        assert_eq!(locks.lock("", true, false, "bob", DEFAULT_TIMEOUT), Err(Refused::Conflict("docs".into())));
        assert!(locks.lock("docsx", false, true, "bob", DEFAULT_TIMEOUT).is_ok(), "a sibling with the same prefix");
        assert_eq!(locks.covering("docs/a/b").len(), 1);
        assert!(locks
            .refresh(&a.token, "docs/a", Duration::from_secs(99999))
            .is_some_and(|l| l.timeout == MAX_TIMEOUT));
        assert!(!locks.unlock(&a.token, "elsewhere"));
        assert!(locks.unlock(&a.token, "docs/a"));
        let s1 = locks.lock("f", false, false, "a", DEFAULT_TIMEOUT).unwrap();
        assert!(locks.lock("f", false, false, "b", DEFAULT_TIMEOUT).is_ok(), "shared locks share");
        assert!(locks.lock("f", false, true, "c", DEFAULT_TIMEOUT).is_err());
        assert_eq!(locks.in_the_way("", true).len(), 3, "a tree holds every lock below");
        let gone = locks.lock("g", false, true, "a", Duration::ZERO).unwrap();
        assert!(!locks.exists(&gone.token), "expired at once");
        assert!(locks.exists(&s1.token));
    }

    #[test]
    fn if_headers_are_read() {
        let lists =
            parse_if(r#"(<opaquelocktoken:a> ["etag"]) (Not <urn:x>) </docs/f> (<opaquelocktoken:b>)"#).unwrap();
        assert_eq!(lists.len(), 3);
        assert_eq!(lists[0].conditions[1].what, Check::ETag("\"etag\"".into()));
        assert!(lists[1].conditions[0].not && lists[1].resource.is_none());
        assert_eq!(lists[2].resource.as_deref(), Some("/docs/f"));
        assert_eq!(submitted_tokens(&lists), ["opaquelocktoken:a", "opaquelocktoken:b"]);
        for bad in ["", "()", "(<a", "<x> ", "(x)", "(<a>"] {
            assert!(parse_if(bad).is_err(), "{bad}");
        }
        assert_eq!(asked_timeout(Some("Second-30, Infinite")), Duration::from_secs(30));
        assert_eq!(asked_timeout(Some("Infinite")), MAX_TIMEOUT);
        assert_eq!(asked_timeout(None), DEFAULT_TIMEOUT);
    }
}
