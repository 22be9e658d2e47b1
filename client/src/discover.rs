//! Finding servers on the LAN (mDNS / DNS-SD, `_fileshare._tcp`, with the
//! `mdns-sd` crate): `file-client --discover` lists them, `file-client` with
//! no address on a terminal offers them to pick from, and `file-client NAME`
//! connects to one by its name. What mDNS says can be forged by anyone on
//! the LAN: the address is a hint, and a fingerprint learned this way is
//! shown but never trusted (trust stays with `--fingerprint`, known_servers
//! and the question on first use).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};

use crate::error::ClientError;

/// The service type servers announce.
pub const SERVICE: &str = "_fileshare._tcp.local.";

/// How long to listen for announcements.
pub const LISTEN: Duration = Duration::from_millis(1500);

/// A server heard on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its share's name.
    pub name: String,
    /// Its addresses, IPv4 first.
    pub addrs: Vec<IpAddr>,
    /// Its port.
    pub port: u16,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// Its certificate's fingerprint, as announced (unverified).
    pub fingerprint: Option<String>,
}

impl Found {
    /// The address to dial: the first IPv4 one, else the first.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addrs.first().map(|ip| SocketAddr::new(*ip, self.port))
    }

    /// One line for people: name, address, TLS and fingerprint.
    pub fn describe(&self) -> String {
        let addr = self.addr().map_or_else(|| "?".to_string(), |a| a.to_string());
        let tls = match (&self.fingerprint, self.tls) {
            (Some(fp), _) => format!("tls  {fp}"),
            (None, true) => "tls".into(),
            (None, false) => "plain".into(),
        };
        format!("{}  {addr}  {tls}", common::text::escape(&self.name))
    }

    /// The same as a JSON object (`type` `server`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "server",
            "name": self.name,
            "address": self.addr().map(|a| a.to_string()),
            "tls": self.tls,
            "fingerprint": self.fingerprint,
        })
    }
}

/// The servers heard within `wait`, by name.
///
/// # Errors
/// [`ClientError::Local`] when mDNS cannot be started (no network).
pub fn discover(wait: Duration) -> Result<Vec<Found>, ClientError> {
    let failed = |e: mdns_sd::Error| ClientError::Local(format!("cannot listen for servers on the LAN (mDNS): {e}"));
    let daemon = ServiceDaemon::new().map_err(failed)?;
    let events = daemon.browse(SERVICE).map_err(failed)?;
    let deadline = Instant::now() + wait;
    let mut found = BTreeMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else { break };
        if let ServiceEvent::ServiceResolved(info) = event {
            let props = &info.txt_properties;
            let instance = info.fullname.strip_suffix(&format!(".{SERVICE}")).unwrap_or(&info.fullname).to_string();
            let name = props.get_property_val_str("name").unwrap_or(&instance).to_string();
            let mut addrs: Vec<IpAddr> = info.addresses.iter().map(|a| a.to_ip_addr()).collect();
            addrs.sort_by_key(|ip| (ip.is_ipv6(), *ip));
            let server = Found {
                name,
                addrs,
                port: info.port,
                tls: props.get_property_val_str("tls") == Some("yes"),
                fingerprint: props.get_property_val_str("fp").and_then(common::tls::parse_fingerprint),
            };
            found.insert(info.fullname.clone(), server);
        }
    }
    let _ = daemon.shutdown();
    Ok(found.into_values().collect())
}

/// The server heard announcing `name` (ignoring case), if any.
///
/// # Errors
/// As [`discover`].
pub fn find(name: &str) -> Result<Option<Found>, ClientError> {
    Ok(discover(LISTEN)?.into_iter().find(|f| f.name.eq_ignore_ascii_case(name)))
}
