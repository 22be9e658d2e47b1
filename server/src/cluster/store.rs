//! The Redis side of a cluster: one command connection (behind a lock,
//! opened again after a failure), the keys, and the scripts that take and
//! renew places atomically against Redis's own clock.
//!
//! Keys (every instance on one Redis, one database):
//! - `file-share:sessions` — sorted set: every session place held, as
//!   `INSTANCE/N`, scored by the time (ms, Redis's clock) it expires unless
//!   renewed; `file-share:sessions:ip:IP` — the same, for one address.
//! - `file-share:instances` — set of instance names ever seen;
//!   `file-share:status:INSTANCE` — its `info` body, expiring.
//! - `file-share:name:NAME` — who holds a display name (lower case), expiring.
//! - `file-share:next-client` — the counter `ClientNN` names come from.
//! - `file-share:departed` — list: the last departures, newest first.
//! - channel `file-share:events` — every notice and chat line, in one order.

use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use redis::{Connection, RedisResult, Script};

/// The session places.
pub const SESSIONS: &str = "file-share:sessions";
/// Every instance name seen.
pub const INSTANCES: &str = "file-share:instances";
/// The counter behind `ClientNN` names.
pub const NEXT_CLIENT: &str = "file-share:next-client";
/// The last departures.
pub const DEPARTED: &str = "file-share:departed";
/// The channel notices travel on.
pub const EVENTS: &str = "file-share:events";

/// The places one address holds.
pub fn sessions_of(ip: IpAddr) -> String {
    format!("{SESSIONS}:ip:{}", ip.to_canonical())
}

/// An instance's status snapshot.
pub fn status_of(instance: &str) -> String {
    format!("file-share:status:{instance}")
}

/// Who holds a display name.
pub fn name_key(name: &str) -> String {
    format!("file-share:name:{}", name.to_ascii_lowercase())
}

/// Takes a place when the total and the address's share allow: 0 taken, 1
/// full, 2 the address's share reached. Expired places (of an instance that
/// died) are dropped first.
/// KEYS: total, address. ARGV: max, per-address max (0: none), member, ttl ms.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 1 end
if tonumber(ARGV[2]) > 0 and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 2 end
local expires = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], expires, ARGV[3])
redis.call('ZADD', KEYS[2], expires, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
";

/// Renews (or, after Redis lost them, registers again) places held.
/// KEYS: total, then each place's address key. ARGV: ttl ms, then each place's member.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[1])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[1], expires, ARGV[i])
  redis.call('ZADD', KEYS[i], expires, ARGV[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return #KEYS - 1
";

/// Deletes a key only while it still holds the value given.
const DELETE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// What [`Store::acquire`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The place is held.
    Yes,
    /// Every place is taken.
    Full,
    /// The address holds its share.
    AddressFull,
}

/// The command connection to Redis.
pub struct Store {
    client: redis::Client,
    conn: Mutex<Option<Connection>>,
    timeout: Duration,
    acquire: Script,
    renew: Script,
    delete_if: Script,
}

impl Store {
    /// A store at `url` (`redis://HOST:PORT[/DB]`); nothing is dialled yet.
    ///
    /// # Errors
    /// When the URL is not one.
    pub fn new(url: &str, timeout: Duration) -> RedisResult<Store> {
        Ok(Store {
            client: redis::Client::open(url)?,
            conn: Mutex::new(None),
            timeout,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            delete_if: Script::new(DELETE_IF),
        })
    }

    /// A new connection of its own (the subscriber's).
    ///
    /// # Errors
    /// When Redis cannot be reached within the timeout.
    pub fn connection(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// Runs `f` on the command connection, dialling it first if needed; a
    /// failure drops the connection, so the next call dials again.
    ///
    /// # Errors
    /// What Redis or the connection said.
    pub fn run<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        let mut conn = self.conn.lock();
        if conn.is_none() {
            *conn = Some(self.connection()?);
        }
        let result = f(conn.as_mut().expect("dialled above"));
        if result.is_err() {
            *conn = None;
        }
        result
    }

    /// Takes a place `member` for `ip` under `max` and `per_ip` (0: no
    /// per-address limit), expiring after `ttl` unless renewed.
    ///
    /// # Errors
    /// What Redis or the connection said.
    pub fn acquire(&self, ip: IpAddr, member: &str, max: usize, per_ip: usize, ttl: Duration) -> RedisResult<Taken> {
        let code: i64 = self.run(|c| {
            self.acquire
                .key(SESSIONS)
                .key(sessions_of(ip))
                .arg(max)
                .arg(per_ip)
                .arg(member)
                .arg(ttl.as_millis() as u64)
                .invoke(c)
        })?;
        Ok(match code {
            0 => Taken::Yes,
            2 => Taken::AddressFull,
            _ => Taken::Full,
        })
    }

    /// Gives a place back.
    ///
    /// # Errors
    /// What Redis or the connection said.
    pub fn release(&self, ip: IpAddr, member: &str) -> RedisResult<()> {
        self.run(|c| redis::pipe().zrem(SESSIONS, member).zrem(sessions_of(ip), member).query::<()>(c))
    }

    /// Renews every place in `held` (address, member) for another `ttl`.
    ///
    /// # Errors
    /// What Redis or the connection said.
    pub fn renew(&self, held: &[(IpAddr, String)], ttl: Duration) -> RedisResult<()> {
        if held.is_empty() {
            return Ok(());
        }
        self.run(|c| {
            let mut invocation = self.renew.key(SESSIONS);
            invocation.arg(ttl.as_millis() as u64);
            for (ip, member) in held {
                invocation.key(sessions_of(*ip)).arg(member);
            }
            invocation.invoke::<i64>(c).map(drop)
        })
    }

    /// Deletes `key` if it still holds `value`.
    ///
    /// # Errors
    /// What Redis or the connection said.
    pub fn delete_if(&self, key: &str, value: &str) -> RedisResult<()> {
        self.run(|c| self.delete_if.key(key).arg(value).invoke::<i64>(c).map(drop))
    }
}
