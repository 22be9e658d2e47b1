//! The PROXY protocol (HAProxy's, versions 1 and 2; parsed by the `ppp`
//! crate): a balancer in front of several instances says, before the
//! client's first byte, who the client really is. With `--proxy-protocol`,
//! connections from the `--proxy-from` addresses must begin with such a
//! header, and the address it names is the client's for everything: the
//! caps, the login penalties, `status`, the logs. Nobody else may send one:
//! a header from any other address closes the connection (see
//! [`is_header_start`], which the doors check their first bytes with).
//!
//! A version 2 `LOCAL` header (or one without addresses, or v1's `PROXY
//! UNKNOWN`) is the balancer's own connection, its health check: it is
//! greeted and closed, with no session, presence entry or notice.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ppp::{v1, v2, HeaderResult, PartialResult};

/// How long a balancer may take to send its header after connecting (it
/// sends it at once, with the connection).
pub const HEADER_WAIT: Duration = Duration::from_secs(2);

/// The longest v1 header, its CRLF included.
const V1_MAX: usize = 107;

/// The most bytes of addresses and extensions taken after a v2 header's
/// fixed part (HAProxy's, with its few TLVs, are well under this).
const MAX_HEADER: usize = 1024;

/// The 12 bytes every v2 header begins with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A range of addresses, `10.0.0.0/8`, `fd00::/8` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let base: IpAddr = addr.parse().map_err(|_| format!("'{text}' is not an address or ADDRESS/PREFIX"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { base, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4 address seen as `::ffff:a.b.c.d` included).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip.to_canonical() {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((base, width), (ip, ip_width)) = (bits(self.base), bits(ip));
        if width != ip_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (base >> shift) == (ip >> shift)
    }
}

/// `--proxy-from`: who may send a PROXY header.
#[derive(Debug, Clone, Default)]
pub struct Balancers {
    from: Vec<Cidr>,
}

impl Balancers {
    /// Headers accepted from these ranges.
    pub fn new(from: Vec<Cidr>) -> Balancers {
        Balancers { from }
    }

    /// Whether `ip` is a balancer's.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.from.iter().any(|range| range.contains(ip))
    }
}

/// Who a connection from a balancer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A client, at this address.
    Client(SocketAddr),
    /// The balancer's health check (`LOCAL`).
    HealthCheck,
}

/// Who a connection accepted from `peer` is from: with `--proxy-protocol`
/// and a peer among the `balancers`, the client its header names (or the
/// balancer's health check); otherwise the peer itself.
///
/// # Errors
/// A balancer's connection without a good header ([`BadHeader`]).
pub fn arrival_of(stream: &TcpStream, peer: SocketAddr, balancers: Option<&Balancers>) -> Result<Arrival, BadHeader> {
    match balancers {
        Some(balancers) if balancers.trusts(peer.ip()) => match read_header(stream)? {
            // A header naming the connection's own source is the balancer
            // speaking for itself: HAProxy's v1 health checks do this.
            Arrival::Client(client) if client == peer => Ok(Arrival::HealthCheck),
            arrival => Ok(arrival),
        },
        _ => Ok(Arrival::Client(peer)),
    }
}

/// Why a balancer's connection is closed before anything else.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadHeader {
    /// Nothing, or not all of it, came within [`HEADER_WAIT`].
    #[error("no PROXY header within {}s", HEADER_WAIT.as_secs())]
    Missing,
    /// What came is no PROXY header.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// A header for a client on a UNIX socket.
    #[error("PROXY header for a connection that is not TCP")]
    NotTcp,
    /// The connection failed.
    #[error("reading the PROXY header: {0}")]
    Io(String),
}

/// Reads the PROXY header a balancer's connection begins with (and not a
/// byte more: the client's own bytes follow) and says who it is for.
///
/// # Errors
/// [`BadHeader`]: missing, malformed, or for a connection that is not TCP.
pub fn read_header(stream: &TcpStream) -> Result<Arrival, BadHeader> {
    let deadline = Instant::now() + HEADER_WAIT;
    // Byte by byte until it is clear which version it is, if any: a peer
    // that sends something else is told so at once, not after the wait.
    let mut header = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    while header.len() < 6 {
        read_by(stream, &mut byte, deadline)?;
        header.push(byte[0]);
        if !b"PROXY ".starts_with(&header) && !V2_SIGNATURE.starts_with(&header) {
            return Err(BadHeader::Malformed("the connection does not begin with one".into()));
        }
    }
    if header.starts_with(b"PROXY ") {
        // Version 1: a line, at most 107 bytes with its CRLF.
        while header.last() != Some(&b'\n') && header.len() < V1_MAX {
            read_by(stream, &mut byte, deadline)?;
            header.push(byte[0]);
        }
    } else {
        // Version 2: 16 fixed bytes, the last two the length of the rest.
        header.resize(16, 0);
        read_by(stream, &mut header[6..], deadline)?;
        let rest = usize::from(u16::from_be_bytes([header[14], header[15]]));
        if rest > MAX_HEADER {
            return Err(BadHeader::Malformed(format!("{rest} bytes of addresses and extensions")));
        }
        header.resize(16 + rest, 0);
        read_by(stream, &mut header[16..], deadline)?;
    }
    let _ = stream.set_read_timeout(None);
    arrival(HeaderResult::parse(&header))
}

/// Fills `buf` from `stream` by `deadline`.
fn read_by(stream: &TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), BadHeader> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(BadHeader::Missing);
    }
    stream.set_read_timeout(Some(left)).map_err(|e| BadHeader::Io(e.to_string()))?;
    (&*stream).read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BadHeader::Missing,
        _ if common::transport::is_timeout(&e) => BadHeader::Missing,
        _ => BadHeader::Io(e.to_string()),
    })
}

/// Who the header is for.
fn arrival(parsed: HeaderResult<'_>) -> Result<Arrival, BadHeader> {
    if parsed.is_incomplete() {
        return Err(BadHeader::Malformed("it ends too soon".into()));
    }
    match parsed {
        HeaderResult::V2(Ok(header)) => match (header.command, header.addresses) {
            (v2::Command::Local, _) => Ok(Arrival::HealthCheck),
            (_, v2::Addresses::IPv4(a)) => Ok(Arrival::Client(SocketAddr::from((a.source_address, a.source_port)))),
            (_, v2::Addresses::IPv6(a)) => Ok(Arrival::Client(SocketAddr::from((a.source_address, a.source_port)))),
            // No addresses: the balancer's own connection, as LOCAL.
            (_, v2::Addresses::Unspecified) => Ok(Arrival::HealthCheck),
            (_, v2::Addresses::Unix(_)) => Err(BadHeader::NotTcp),
        },
        HeaderResult::V1(Ok(header)) => match header.addresses {
            v1::Addresses::Tcp4(a) => Ok(Arrival::Client(SocketAddr::from((a.source_address, a.source_port)))),
            v1::Addresses::Tcp6(a) => Ok(Arrival::Client(SocketAddr::from((a.source_address, a.source_port)))),
            // The spec's "use the connection's own endpoints": the balancer's
            // own connection (HAProxy's v1 health checks send this).
            v1::Addresses::Unknown => Ok(Arrival::HealthCheck),
        },
        HeaderResult::V2(Err(e)) => Err(BadHeader::Malformed(e.to_string())),
        HeaderResult::V1(Err(e)) => Err(BadHeader::Malformed(e.to_string())),
    }
}

/// Whether `first` (a connection's first bytes) begins a PROXY header, v1
/// or v2: what a connection from outside `--proxy-from` must not send.
pub fn is_header_start(first: &[u8]) -> bool {
    first.starts_with(b"PROXY ") || first.starts_with(V2_SIGNATURE)
}

/// Whether a session's first request line (`line`, its end taken off;
/// `rest`, the bytes after it already read) is a PROXY header: v1's line,
/// or the empty line v2's signature begins with, the rest of it following.
pub fn is_header_line(line: &str, rest: &[u8]) -> bool {
    line.starts_with("PROXY ") || (line.is_empty() && rest.starts_with(&V2_SIGNATURE[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    }

    #[test]
    fn ranges_hold_what_they_should() {
        let range: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.0.1".parse().unwrap()), "an IPv4 client on an IPv6 socket");
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        assert!(!range.contains("::1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()) && !one.contains("127.0.0.2".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!("fd00::/8".parse::<Cidr>().unwrap().contains("fd12::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn a_v1_header_gives_the_client_and_leaves_its_bytes() {
        let (mut balancer, server) = pair();
        balancer.write_all(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 12345\r\nfirst line\n").unwrap();
        assert_eq!(read_header(&server), Ok(Arrival::Client("192.0.2.7:51234".parse().unwrap())));
        let mut rest = [0u8; 11];
        (&server).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"first line\n");
    }

    #[test]
    fn a_v2_header_in_two_pieces_and_a_local_one() {
        let addresses = v2::Addresses::from((
            "[2001:db8::5]:4000".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:80".parse::<SocketAddr>().unwrap(),
        ));
        let header =
            v2::Builder::with_addresses(v2::Version::Two | v2::Command::Proxy, v2::Protocol::Stream, addresses)
                .build()
                .unwrap();
        let (mut balancer, server) = pair();
        balancer.write_all(&header[..10]).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            balancer.write_all(&header[10..]).unwrap();
            balancer
        });
        assert_eq!(read_header(&server), Ok(Arrival::Client("[2001:db8::5]:4000".parse().unwrap())));
        drop(writer.join().unwrap());

        let local = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        let (mut balancer, server) = pair();
        balancer.write_all(&local).unwrap();
        assert_eq!(read_header(&server), Ok(Arrival::HealthCheck));
    }

    #[test]
    fn missing_malformed_and_unknown_headers_are_refused() {
        let (mut balancer, server) = pair();
        balancer.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(matches!(read_header(&server), Err(BadHeader::Malformed(_))));
        let (mut balancer, server) = pair();
        balancer.write_all(b"PROXY UNKNOWN\r\n").unwrap();
        assert_eq!(read_header(&server), Ok(Arrival::HealthCheck), "the balancer's own connection");
        let (mut balancer, server) = pair();
        balancer.write_all(b"PROXY TCP4 1.2.3.4\r\n").unwrap();
        assert!(matches!(read_header(&server), Err(BadHeader::Malformed(_))));
        let (balancer, server) = pair();
        drop(balancer);
        assert_eq!(read_header(&server), Err(BadHeader::Missing));
        assert!(is_header_start(b"PROXY TCP4 1.2.3.4") && is_header_start(V2_SIGNATURE));
        assert!(!is_header_start(b"list\n"));
    }
}
