//! Which hosts a request may name. A page on another site can make a
//! visitor's browser send requests here under its own name (DNS rebinding:
//! `evil.example` made to resolve to this machine), and read the answers as
//! that site's. Requests are answered only when their `Host` is an address
//! of this machine, `localhost`, the machine's host name (or its `.local`
//! mDNS name), or a name given with `--http-host`; others get `421`.

use std::net::IpAddr;

/// The names (lower case) a request may give besides this machine's addresses.
pub struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// `localhost`, this machine's host name and its `.local` name, and `extra`.
    pub fn new(extra: &[String]) -> Hosts {
        let mut names = vec!["localhost".to_string()];
        let host = rustix::system::uname().nodename().to_string_lossy().to_ascii_lowercase();
        if !host.is_empty() {
            let short = host.split('.').next().unwrap_or(&host).to_string();
            names.push(format!("{short}.local"));
            names.push(short);
            names.push(host);
        }
        names.extend(extra.iter().map(|n| normalise(n)));
        names.sort();
        names.dedup();
        Hosts { names }
    }

    /// Whether a request with `Host: host` on a connection that reached
    /// `local` is for this server.
    pub fn allows(&self, host: &str, local: IpAddr) -> bool {
        let name = normalise(without_port(host));
        match name.parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                ip.is_loopback() || ip == local.to_canonical() || is_this_machines(ip)
            }
            Err(_) => self.names.contains(&name),
        }
    }
}

/// A name as compared: lower case, without the root's trailing dot.
fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `host:port`, `[v6]:port` or `[v6]` without the port and brackets.
fn without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether `ip` is an address of one of this machine's interfaces now.
fn is_this_machines(ip: IpAddr) -> bool {
    if_addrs::get_if_addrs().unwrap_or_default().iter().any(|i| i.ip().to_canonical() == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machines_names_and_addresses_pass_and_others_do_not() {
        let hosts = Hosts::new(&["Files.Example.".to_string()]);
        let local: IpAddr = "192.0.2.7".parse().unwrap();
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:80",
            "[::1]:8080",
            "192.0.2.7",
            "files.example",
            "files.example:443",
        ] {
            assert!(hosts.allows(ok, local), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "192.0.2.99", "localhost.evil.example", "", "[::2]"] {
            assert!(!hosts.allows(bad, local), "{bad}");
        }
        let name = rustix::system::uname().nodename().to_string_lossy().to_ascii_lowercase();
        let short = name.split('.').next().unwrap().to_string();
        assert!(hosts.allows(&format!("{short}.local:8080"), local));
    }
}
