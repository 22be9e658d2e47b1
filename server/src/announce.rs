//! Being found on the LAN (mDNS / DNS-SD, with the `mdns-sd` crate: a
//! thread, no async runtime): the line protocol as `_fileshare._tcp`, and
//! the web side (when it runs) as `_http._tcp` and `_webdav._tcp` (`_https`
//! and `_webdavs` with TLS), under the share's name (`--name`, by default
//! the host name). The `_fileshare` TXT record says the protocol version,
//! whether TLS is on and the certificate's fingerprint. A server bound to
//! loopback alone is not announced; `--no-announce` turns it off. mDNS can
//! be forged by anyone on the LAN: what it says is a hint, never trust.

use std::net::{IpAddr, SocketAddr};

use mdns_sd::{ServiceDaemon, ServiceInfo};

/// The service type of the line protocol.
pub const SERVICE: &str = "_fileshare._tcp.local.";

/// What to announce.
#[derive(Debug, Clone)]
pub struct Announce {
    /// The share's name, as people see it.
    pub name: String,
    /// Where the line protocol listens.
    pub line: SocketAddr,
    /// Where the web side listens, if it runs.
    pub web: Option<SocketAddr>,
    /// The TLS certificate's fingerprint, when TLS is on.
    pub fingerprint: Option<String>,
}

/// The announcements being made; dropping it says goodbye (the records are
/// withdrawn) and stops the mDNS thread.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
}

impl Announcement {
    /// Starts announcing; `Ok(None)` for a server bound to loopback alone.
    ///
    /// # Errors
    /// When the mDNS thread cannot start or a record cannot be made.
    pub fn start(what: &Announce) -> Result<Option<Announcement>, String> {
        if what.line.ip().is_loopback() {
            return Ok(None);
        }
        let daemon = ServiceDaemon::new().map_err(|e| format!("cannot start mDNS: {e}"))?;
        let host = format!("{}.local.", host_name());
        let tls = what.fingerprint.is_some();
        let mut properties = vec![
            ("proto", common::PROTOCOL_VERSION.to_string()),
            ("tls", if tls { "yes" } else { "no" }.to_string()),
            ("name", what.name.clone()),
        ];
        if let Some(fp) = &what.fingerprint {
            properties.push(("fp", fp.clone()));
        }
        let mut services = vec![(SERVICE.to_string(), what.line, properties)];
        if let Some(web) = what.web {
            let (http, dav) = if tls {
                ("_https._tcp.local.", "_webdavs._tcp.local.")
            } else {
                ("_http._tcp.local.", "_webdav._tcp.local.")
            };
            for ty in [http, dav] {
                services.push((ty.to_string(), web, vec![("path", "/".to_string())]));
            }
        }
        let mut fullnames = Vec::new();
        for (ty, addr, properties) in services {
            let info = service_info(&ty, &what.name, &host, addr, &properties)?;
            fullnames.push(info.get_fullname().to_string());
            daemon.register(info).map_err(|e| format!("cannot announce {ty}: {e}"))?;
        }
        tracing::info!("announced on the LAN as '{}' ({})", what.name, fullnames.join(", "));
        Ok(Some(Announcement { daemon, fullnames }))
    }
}

/// One service record: on the bound address, or (bound to every address)
/// on each of the machine's, as the interfaces come and go.
fn service_info(
    ty: &str,
    name: &str,
    host: &str,
    addr: SocketAddr,
    properties: &[(&str, String)],
) -> Result<ServiceInfo, String> {
    let ips: Vec<IpAddr> = if addr.ip().is_unspecified() { Vec::new() } else { vec![addr.ip()] };
    let properties: Vec<(&str, &str)> = properties.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let info = ServiceInfo::new(ty, name, host, ips.as_slice(), addr.port(), properties.as_slice())
        .map_err(|e| format!("cannot describe {ty}: {e}"))?;
    Ok(if addr.ip().is_unspecified() { info.enable_addr_auto() } else { info })
}

impl Drop for Announcement {
    fn drop(&mut self) {
        for fullname in &self.fullnames {
            if let Ok(done) = self.daemon.unregister(fullname) {
                let _ = done.recv_timeout(std::time::Duration::from_secs(1));
            }
        }
        let _ = self.daemon.shutdown();
    }
}

/// This machine's host name (`uname -n`), the default name of its share.
pub fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}
