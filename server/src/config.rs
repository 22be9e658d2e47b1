//! The settings that shape every session, and [`Shared`], what every
//! session of a server reaches: the settings, the shared folder, who is
//! connected, and whether shutdown has begun. Commands see the server only
//! through it.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{Accounts, PasswordChecks, Penalties};
use crate::cluster::Cluster;
use crate::presence::Presence;
use crate::proxy::Balancers;
use crate::repo::Repo;
use crate::shutdown::Stopping;
use crate::slots::{Cap, Caps};

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
    /// Connections being set up at once (a TLS handshake, or the wait for a
    /// login on a server where one is needed), across the line protocol and
    /// the web side, before they take a session's place (`--max-startups`).
    pub max_startups: usize,
    /// How long every answer to a login takes at least, and the first
    /// penalty after a failed one; it doubles with each further failure from
    /// the same source or on the same account (see [`Penalties`]).
    pub login_delay: Duration,
    /// `--proxy-protocol --proxy-from`: the balancers whose connections
    /// begin with a PROXY header naming the real client.
    pub proxy: Option<Balancers>,
    /// `--cluster`: the instances sharing one Redis act as one server (one
    /// session cap, one status, one chat).
    pub cluster: Option<Arc<Cluster>>,
    /// `--max-rate-per-client`: each download and upload goes no faster
    /// (bytes a second), so one client cannot fill the uplink for everyone.
    pub max_rate_per_client: Option<u64>,
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
            max_startups: 10,
            proxy: None,
            cluster: None,
            max_rate_per_client: None,
        }
    }
}

impl Config {
    /// A session must log in before it may do anything (accounts, and no
    /// `--anonymous read`).
    pub fn login_required(&self) -> bool {
        self.accounts.is_some() && !self.anonymous_read
    }
}

/// Connections one address may have being set up at once (a share of
/// [`Config::max_startups`]).
pub const STARTUPS_PER_ADDRESS: usize = 3;

/// What every session shares.
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// The shared folder.
    pub repo: Repo,
    /// Who is connected.
    pub presence: Arc<Presence>,
    /// Set once shutdown has begun.
    pub stopping: Arc<Stopping>,
    /// Failed logins per source and per account.
    pub penalties: Penalties,
    /// Where passwords are checked (with accounts): a thread per core at most.
    pub password_checks: Option<PasswordChecks>,
    /// Connections being set up (TLS handshake, login), on every door.
    pub startups: Caps,
    /// Per-connection log lines at the default level, a few a second.
    pub connection_log: crate::logs::Burst,
    /// As many again, for addresses that have logged in before
    /// ([`Penalties::is_known`]) when strangers hold every startup place.
    pub known_startups: Caps,
}

impl Shared {
    /// A place for a connection from `ip` to be set up in: among the
    /// startups, or, when strangers hold them all, among the known
    /// addresses' when `ip` has logged in before.
    ///
    /// # Errors
    /// Which cap is reached.
    pub fn startup_place(&self, ip: std::net::IpAddr) -> Result<crate::slots::Place, crate::slots::Over> {
        self.startups.try_acquire(ip).or_else(|over| {
            if self.penalties.is_known(ip) {
                self.known_startups.try_acquire(ip)
            } else {
                Err(over)
            }
        })
    }

    /// The state for a server with `config` sharing `repo`, nobody connected yet.
    ///
    /// # Errors
    /// With accounts, when the password-checking threads cannot be started.
    pub fn new(config: Config, repo: Repo) -> std::io::Result<Shared> {
        let presence = Arc::new(match &config.cluster {
            Some(cluster) => Presence::with_bus(config.max_clients, cluster.bus()),
            None => Presence::new(config.max_clients),
        });
        if let Some(cluster) = &config.cluster {
            cluster.attach(&presence);
        }
        let penalties = Penalties::new(config.login_delay);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let password_checks = config.accounts.as_ref().map(|_| PasswordChecks::new(cores)).transpose()?;
        let startups = Caps::new(config.max_startups, STARTUPS_PER_ADDRESS);
        let known_startups = Caps::new(config.max_startups, STARTUPS_PER_ADDRESS);
        let stopping = Arc::new(Stopping::default());
        let connection_log = crate::logs::Burst::new();
        Ok(Shared {
            presence,
            config,
            repo,
            stopping,
            penalties,
            password_checks,
            startups,
            known_startups,
            connection_log,
        })
    }
}
