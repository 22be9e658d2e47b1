//! The settings that shape every session, and [`Shared`], what every
//! session of a server reaches: the settings, the shared folder, who is
//! connected, and whether shutdown has begun. Commands see the server only
//! through it.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{Accounts, PasswordChecks, Penalties};
use crate::presence::Presence;
use crate::repo::Repo;
use crate::shutdown::Stopping;

/// Settings that shape every session.
#[derive(Clone)]
pub struct Config {
    /// Sessions admitted at once; the next connection is refused.
    pub max_clients: usize,
    /// Whether `put` is allowed.
    pub allow_uploads: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload_size: u64,
    /// A client silent this long (and with no transfer moving) is disconnected.
    pub idle_timeout: Duration,
    /// A request line must be complete this long after its first byte.
    pub line_timeout: Duration,
    /// Sessions one address may hold at once; 0 is no limit.
    pub max_per_ip: usize,
    /// How long transfers may go on after a shutdown signal.
    pub grace: Duration,
    /// Serve TLS with these settings (certificate and key) instead of plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `--users`: sessions log in to an account before anything else.
    pub accounts: Option<Arc<Accounts>>,
    /// `--anonymous read`: with accounts, visitors who have not logged in may read.
    pub anonymous_read: bool,
    /// With accounts (and no anonymous reading), a session must have logged
    /// in this long after it was admitted, else it is closed.
    pub login_timeout: Duration,
    /// How long every answer to a login takes at least, and the first
    /// penalty after a failed one; it doubles with each further failure from
    /// the same source or on the same account (see [`Penalties`]).
    pub login_delay: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_clients: 3,
            allow_uploads: false,
            max_upload_size: 1 << 30,
            idle_timeout: Duration::from_secs(300),
            line_timeout: Duration::from_secs(10),
            max_per_ip: 0,
            grace: Duration::from_secs(10),
            tls: None,
            accounts: None,
            anonymous_read: false,
            login_timeout: Duration::from_secs(10),
            login_delay: Duration::from_millis(500),
        }
    }
}

/// What every session shares.
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// The shared folder.
    pub repo: Repo,
    /// Who is connected.
    pub presence: Arc<Presence>,
    /// Set once shutdown has begun.
    pub stopping: Stopping,
    /// Failed logins per source and per account.
    pub penalties: Penalties,
    /// Where passwords are checked (with accounts): a thread per core at most.
    pub password_checks: Option<PasswordChecks>,
}

impl Shared {
    /// The state for a server with `config` sharing `repo`, nobody connected yet.
    ///
    /// # Errors
    /// With accounts, when the password-checking threads cannot be started.
    pub fn new(config: Config, repo: Repo) -> std::io::Result<Shared> {
        let (presence, penalties) = (Arc::new(Presence::new(config.max_clients)), Penalties::new(config.login_delay));
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let password_checks = config.accounts.as_ref().map(|_| PasswordChecks::new(cores)).transpose()?;
        Ok(Shared { presence, config, repo, stopping: Stopping::default(), penalties, password_checks })
    }
}
