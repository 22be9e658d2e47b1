//! Dialling the server: its address resolved, a TCP connection, and TLS over
//! it (`--tls`, the server's identity checked by [`crate::trust`]). The
//! [`Transport`] that results is the one the server uses too (`common`);
//! [`crate::connection`] does not tell plain from TLS.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::TlsStream;
use common::DEFAULT_PORT;

use crate::error::ClientError;
use crate::trust::{self, Judgement, Trust};

pub use common::transport::{is_timeout, Transport};

/// `addr` as `known_servers` names it, `HOST:PORT` (`[IPv6]:PORT`), and the
/// host alone (for the certificate's name).
///
/// # Errors
/// As [`resolve`], for a port that is not one.
pub fn server_key(addr: &str) -> Result<(String, String), ClientError> {
    let bare = |host: &str| host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let (host, port) = if addr.parse::<std::net::IpAddr>().is_ok() {
        (bare(addr), DEFAULT_PORT)
    } else {
        match addr.rsplit_once(':') {
            Some((host, port)) => {
                let port = port.parse::<u16>().map_err(|_| ClientError::Usage(format!("bad port in '{addr}'")))?;
                (bare(host), port)
            }
            None => (bare(addr), DEFAULT_PORT),
        }
    };
    let key = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok((key, host))
}

/// Turns `host`, `host:port`, `1.2.3.4`, `[::1]:port` or `::1` into addresses.
///
/// # Errors
/// [`ClientError::Connect`] when the name does not resolve.
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let fail = |reason: String| ClientError::Connect { addr: addr.to_string(), reason };
    // `host:port` with a port that is not one is a typing error, not a
    // host that cannot be found (a bare IPv6 address has several colons).
    if let Some((host, port)) = addr.rsplit_once(':') {
        if (!host.contains(':') || host.ends_with(']')) && port.parse::<u16>().is_err() {
            let port = common::text::escape(port);
            return Err(ClientError::Usage(format!("bad port '{port}' in '{}'", common::text::escape(addr))));
        }
    }
    let with_port = if addr.parse::<std::net::IpAddr>().is_ok() {
        // A bare IP; an IPv6 one needs brackets to take a port.
        SocketAddr::new(addr.parse().map_err(|_| fail("bad address".into()))?, DEFAULT_PORT).to_string()
    } else if addr.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    };
    let addrs: Vec<SocketAddr> = with_port.to_socket_addrs().map_err(|e| fail(e.to_string()))?.collect();
    if addrs.is_empty() {
        return Err(fail("the name has no addresses".into()));
    }
    Ok(addrs)
}

/// Connects to the first of `addr`'s addresses that answers within `timeout`.
///
/// # Errors
/// [`ClientError::Connect`] when the name does not resolve or no address answers.
///
/// With `tls`, speaks TLS and checks the server's certificate (see
/// [`crate::trust`]): [`ClientError::Identity`] when it is not the one
/// pinned or remembered, [`ClientError::UnknownServer`] when it is new
/// and new ones are not accepted. A new one accepted is remembered.
pub fn connect(addr: &str, timeout: Duration, tls: Option<&Trust>) -> Result<(Transport, SocketAddr), ClientError> {
    let mut last_error = None;
    for candidate in resolve(addr)? {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                // A server that stops taking an upload's bytes fails the
                // send after `timeout`, rather than hang the client.
                let _ = stream.set_write_timeout(Some(timeout));
                let transport = match tls {
                    None => Transport::Plain(stream),
                    Some(trust) => Transport::Tls(secure(addr, stream, timeout, trust)?),
                };
                return Ok((transport, candidate));
            }
            Err(e) => last_error = Some(e),
        }
    }
    let reason = last_error.map_or_else(|| "no address answered".to_string(), |e| e.to_string());
    Err(ClientError::Connect { addr: addr.to_string(), reason })
}

/// The TLS handshake with the server at `addr`, its certificate judged by `trust`.
fn secure(addr: &str, stream: TcpStream, timeout: Duration, trust: &Trust) -> Result<TlsStream, ClientError> {
    let (server, host) = server_key(addr)?;
    let local = |e: std::io::Error| ClientError::Local(format!("cannot read the known servers: {e}"));
    let (config, judgement) = trust.client_config(&server).map_err(local)?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("file-server").expect("a valid name"));
    let conn = rustls::ClientConnection::new(Arc::clone(&config), name)
        .map_err(|e| ClientError::Connection(format!("cannot start TLS: {e}")))?;
    let tls = TlsStream::new(stream, conn);
    let shaken = tls.handshake(Instant::now() + timeout);
    let judged = judgement.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    match (shaken, judged) {
        (Ok(()), Some(Judgement::New { fingerprint })) => {
            if let Some(file) = &trust.known_servers {
                match trust::remember(file, &server, &fingerprint) {
                    Ok(()) => eprintln!("remembered {server} as {fingerprint} in {}", file.display()),
                    Err(e) => eprintln!("file-client: cannot remember {server} in {}: {e}", file.display()),
                }
            }
            Ok(tls)
        }
        (Ok(()), _) => Ok(tls),
        (Err(_), Some(Judgement::New { fingerprint })) => Err(ClientError::UnknownServer { server, fingerprint }),
        (Err(_), Some(Judgement::NotPinned { pinned, presented })) => Err(ClientError::Identity(format!(
            "the certificate of {server} is not the one given with --fingerprint\n  expected:  {pinned}\n  presented: {presented}"
        ))),
        (Err(_), Some(Judgement::Changed { remembered, presented, line })) => {
            let file = trust.known_servers.as_deref().map_or_else(String::new, |f| f.display().to_string());
            Err(ClientError::Identity(format!(
                "WARNING: the certificate of {server} has CHANGED\n  remembered: {remembered}\n  presented:  {presented}\n\
                 someone may be intercepting the connection, or the server has a new certificate;\n\
                 if you trust the new one, remove line {line} of {file} and connect again"
            )))
        }
        (Err(e), _) if e.kind() == std::io::ErrorKind::InvalidData => Err(ClientError::Connection(format!(
            "TLS with {server} failed: {e} (is it a TLS server? it was started with --tls?)"
        ))),
        (Err(e), _) => Err(ClientError::connection("TLS handshake", e)),
    }
}
