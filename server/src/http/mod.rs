//! The web side (`--http PORT`): the same share over HTTP/1.1 (HTTPS with
//! `--tls`, the same certificate), for browsers, curl and wget. It runs on
//! threads like the rest: one per connection, at most
//! `--http-max-connections` at once and `--http-max-per-ip` from one address
//! (the next ones get `503`), each with keep-alive and time limits on request
//! heads, bodies (a floor rate) and responses (a peer that takes nothing for
//! the idle timeout is dropped). Requests must name this machine (`Host`,
//! see [`host`]) and be framed one way only; files are served under a
//! policy that lets them run nothing as the share.
//!
//! Every request is an operation of [`crate::cmd`] (`list`, `get`, `info`,
//! `login`, the changes, an upload, an archive's folders and files) run for a
//! visitor session, so the sandbox, hidden names, accounts and rights are the
//! line protocol's; this module only speaks HTTP around their typed outcomes.
//!
//! # Layout
//! - this file: [`HttpServer`], the accept loop and one connection's requests
//!   (a refused body read away before the close, so the peer sees the refusal).
//! - [`archive`]: a folder as one `?tar` or `?zip`, streamed.
//! - [`dav`]: WebDAV (classes 1 and 2): properties, copies, locks.
//! - [`head`]: reading a request head with limits, and its framing checks.
//! - [`host`]: which `Host` names a request may give.
//! - [`page`]: the HTML pages (a folder, the live status).
//! - [`respond`]: the responses: files with their headers and ranges, pages, errors.

pub mod archive;
pub mod dav;
pub mod head;
pub mod host;
pub mod page;
pub mod respond;

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Code, Request};

use crate::cmd::{self, Caller, Op, Outcome};
use crate::config::Shared;
use crate::proxy::Arrival;
use crate::slots::{Cap, Caps, Over, Place};
use common::transport::Transport;
use dav::locks::Locks;
use head::{read_head, Head, HeadRead};
use host::Hosts;
use respond::Response;

/// How long a kept-alive connection waits for its next request, unless
/// `--http-keep-alive` says otherwise.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Requests served on one connection before it is closed.
const MAX_REQUESTS: u32 = 1000;

/// The slowest a request body may come once the line timeout has passed
/// since it began (bytes a second): a trickle cannot hold a place.
pub const BODY_FLOOR: u64 = 1024;

/// The HTTP listener and what its connections share.
pub struct HttpServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    places: Caps,
    hosts: Arc<Hosts>,
    busy: Arc<Busy>,
    locks: Arc<Locks>,
    keep_alive: Duration,
}

/// The web side's own settings.
pub struct HttpLimits {
    /// Connections served at once (`--http-max-connections`).
    pub max_connections: usize,
    /// Connections one address may hold at once (`--http-max-per-ip`; 0: no limit).
    pub max_per_ip: usize,
    /// Names requests may give in `Host` besides this machine's (`--http-host`).
    pub hosts: Vec<String>,
    /// How long a kept-alive connection waits for its next request (`--http-keep-alive`).
    pub keep_alive: Duration,
}

/// Requests being answered now, for the graceful shutdown: a response
/// under way may finish within the grace period; idle kept-alive
/// connections are not waited for.
#[derive(Default)]
pub struct Busy {
    count: parking_lot::Mutex<usize>,
    changed: parking_lot::Condvar,
}

/// A request being answered; counted in [`Busy`] until dropped, on every
/// path out (a panic included).
struct Answering<'a>(&'a Busy);

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        *self.0.count.lock() -= 1;
        self.0.changed.notify_all();
    }
}

impl Busy {
    fn enter(&self) -> Answering<'_> {
        *self.count.lock() += 1;
        Answering(self)
    }

    /// Waits until no request is being answered, or `deadline`; true when none is.
    pub fn wait_idle(&self, deadline: Instant) -> bool {
        let mut count = self.count.lock();
        while *count > 0 {
            if self.changed.wait_until(&mut count, deadline).timed_out() {
                return *count == 0;
            }
        }
        true
    }
}

impl HttpServer {
    /// Serves `shared`'s share on `listener` within `limits`.
    pub fn new(listener: TcpListener, shared: Arc<Shared>, limits: &HttpLimits) -> HttpServer {
        HttpServer {
            listener,
            shared,
            places: Caps::new(limits.max_connections, limits.max_per_ip),
            hosts: Arc::new(Hosts::new(&limits.hosts)),
            busy: Arc::new(Busy::default()),
            locks: Arc::new(Locks::default()),
            keep_alive: limits.keep_alive,
        }
    }

    /// The address bound.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the shutdown waits on: the requests being answered.
    pub fn busy(&self) -> Arc<Busy> {
        Arc::clone(&self.busy)
    }

    /// Accepts connections until the server stops; each runs on its own thread.
    pub fn run(self) {
        let mut failures = crate::logs::LogEvery::new(Duration::from_secs(1));
        for accepted in self.listener.incoming() {
            if self.shared.stopping.is_set() {
                break;
            }
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause, and say so once a second.
                    failures.note(|n| tracing::warn!("http accept failed {n} time(s) in the last second: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            self.admit(stream);
        }
    }

    fn admit(&self, stream: TcpStream) {
        let Ok(peer) = stream.peer_addr() else { return };
        let addr = match crate::proxy::arrival_of(&stream, peer, self.shared.config.proxy.as_ref()) {
            Ok(Arrival::Client(addr)) => addr,
            // The balancer's health check: nothing to answer.
            Ok(Arrival::HealthCheck) => return tracing::debug!(balancer = %peer, "web health check"),
            Err(e) => return tracing::warn!(balancer = %peer, "web connection closed: {e}"),
        };
        let transport = match &self.shared.config.tls {
            None => Transport::plain(stream),
            Some(tls) => match Transport::tls(stream, tls) {
                Ok(transport) => transport,
                Err(e) => return tracing::error!(%addr, "cannot start TLS: {e}"),
            },
        };
        let place = match self.places.try_acquire(addr.ip()) {
            Ok(place) => place,
            Err(over) => {
                let why = match over {
                    Over::Full => "too many connections; try again shortly".to_string(),
                    per_address => per_address.message(addr),
                };
                // A plain peer is told; a TLS one would need a handshake first.
                if matches!(transport, Transport::Plain(_)) {
                    transport.send_now(&Response::error(503, &why, false).whole());
                }
                return transport.shutdown(std::net::Shutdown::Both);
            }
        };
        let (shared, busy, hosts) = (Arc::clone(&self.shared), Arc::clone(&self.busy), Arc::clone(&self.hosts));
        let (locks, keep_alive) = (Arc::clone(&self.locks), self.keep_alive);
        let spawned = std::thread::Builder::new().name("http".into()).spawn(move || {
            // The place is given back however `serve` ends, a panic included.
            let _place: Place = place;
            serve(transport, addr, &shared, &Door { busy: &busy, hosts: &hosts, locks: &locks, keep_alive });
        });
        if let Err(e) = spawned {
            tracing::warn!(%addr, "cannot start a thread for a web connection: {e}");
        }
    }
}

/// One connection's requests, until it closes, idles or errs.
/// What one web connection needs of its door.
struct Door<'a> {
    busy: &'a Busy,
    hosts: &'a Hosts,
    locks: &'a Locks,
    keep_alive: Duration,
}

fn serve(mut conn: Transport, addr: SocketAddr, shared: &Shared, door: &Door<'_>) {
    conn.set_nodelay();
    let local = conn.local_addr().map_or(addr.ip(), |a| a.ip());
    let limit = shared.config.line_timeout;
    if let Transport::Tls(tls) = &conn {
        // The handshake holds a place among the startups, shared with the line protocol's.
        let Ok(_startup) = shared.startup_place(addr.ip()) else {
            return conn.shutdown(std::net::Shutdown::Both);
        };
        if speaks_plain_http(tls.socket(), limit) {
            // As nginx does: a page the browser can show, in plain HTTP.
            let page = Response::error(400, "this port speaks HTTPS: use https:// in the address", false).whole();
            let _ = io::Write::write_all(&mut tls.socket(), &page);
            tracing::debug!(%addr, "plain HTTP on the HTTPS port: told to use https://");
            return conn.shutdown(std::net::Shutdown::Both);
        }
        if let Err(e) = conn.handshake(Instant::now() + limit) {
            return tracing::debug!(%addr, "https handshake failed: {e}");
        }
    }
    let _ = conn.set_write_timeout(shared.config.idle_timeout);
    let visitor = shared.presence.visit(addr, "web");
    let caller = Caller { shared, session: &visitor, wanted: &|| true };
    let mut verified: Option<String> = None;
    let mut buf = Vec::new();
    // The read timeout the connection has, once read_head has set it.
    let mut read_timeout = None;
    // Whether the last request's body may still be on its way, unread.
    let mut body_pending = false;
    for _ in 0..MAX_REQUESTS {
        let head = match read_head(&mut conn, &mut buf, door.keep_alive, limit, &mut read_timeout) {
            Ok(HeadRead::Head(head)) => head,
            Ok(HeadRead::Idle) | Err(_) => break,
            Ok(HeadRead::TooSlow) => {
                let _ = Response::error(408, "request head not complete in time", false).send(&mut conn, None, caller);
                break;
            }
            Ok(HeadRead::TooLarge) => {
                let _ = Response::error(431, "request head too large", false).send(&mut conn, None, caller);
                break;
            }
            Ok(HeadRead::Bad(_)) if shared.config.proxy.is_some() && crate::proxy::is_header_start(&buf) => {
                tracing::warn!(%addr, "a PROXY header from an address not in --proxy-from; closed");
                break;
            }
            Ok(HeadRead::Bad(why)) => {
                let _ = Response::error(400, &format!("bad request: {why}"), false).send(&mut conn, None, caller);
                break;
            }
        };
        // A body this side does not take is refused, and the connection
        // closed: its bytes would be read as the next request.
        visitor.clock.touch();
        if shared.stopping.is_set() {
            let _ = Response::error(503, "server is shutting down", false).send(&mut conn, None, caller);
            break;
        }
        let answering = door.busy.enter();
        let has_body = head.content_length().is_some_and(|l| l > 0) || head.header("transfer-encoding").is_some();
        if has_body {
            // Reading a body sets timeouts of its own.
            read_timeout = None;
        }
        let takes_xml = matches!(head.method.as_str(), "PROPFIND" | "PROPPATCH" | "LOCK");
        let keep_alive = head.keep_alive() && (!has_body || head.method == "PUT" || takes_xml);
        let refused = misdirected(&head, door.hosts, local).or_else(|| authorize(&head, caller, &mut verified));
        let response = match refused {
            Some(refusal) => refusal.with_keep_alive(!has_body),
            None if head.method == "PUT" => put(&head, caller, door.locks, &mut conn, &mut buf),
            None if takes_xml => match small_body(&head, caller, &mut conn, &mut buf) {
                Ok(body) => handle(&head, caller, door.locks, &body),
                Err(response) => response,
            },
            None if has_body && head.method == "MKCOL" => Response::error(415, "MKCOL takes no body here", false),
            None if has_body => {
                Response::error(413, "only PUT, PROPFIND, PROPPATCH and LOCK take a request body", false)
            }
            None => handle(&head, caller, door.locks, &[]),
        };
        let keep_alive = keep_alive && response.keeps_alive() && !shared.stopping.is_set();
        let method = head.method.clone();
        let status = response.status;
        let sent = response.with_keep_alive(keep_alive).send(&mut conn, Some(&head), caller);
        drop(answering);
        match sent {
            Ok(sent) => {
                tracing::debug!(%addr, "{method} {} {status} ({sent} bytes)", common::text::escape(&head.target))
            }
            Err(e) => {
                tracing::debug!(%addr, "{method} {}: {e}", common::text::escape(&head.target));
                break;
            }
        }
        if !keep_alive {
            body_pending = has_body;
            break;
        }
    }
    if body_pending {
        // A refused upload's bytes are still coming: read them away so the
        // browser sees the refusal instead of a reset connection.
        conn.linger(LINGER, LINGER_BYTES);
    } else {
        conn.shutdown(std::net::Shutdown::Both);
    }
}

/// How long, and how many bytes of a refused body, a connection is read
/// away before it closes (nginx's `lingering_time` is 30 s; a browser's
/// upload of a file the page could not store is usually far smaller).
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: u64 = 64 << 20;

/// Whether a connection to the HTTPS port begins with a plain HTTP request
/// (a letter, as `GET` does; a TLS handshake begins with byte 22), by
/// looking at its first byte without taking it, waiting up to `limit`.
fn speaks_plain_http(socket: &TcpStream, limit: Duration) -> bool {
    let mut first = [0u8; 1];
    let _ = socket.set_read_timeout(Some(limit));
    let seen = matches!(socket.peek(&mut first), Ok(1)) && first[0].is_ascii_alphabetic();
    let _ = socket.set_read_timeout(None);
    seen
}

/// `None` when the request is for this server; else its refusal: `400` for
/// HTTP/1.1 without a `Host`, `421` for a name that is not this machine's.
fn misdirected(head: &Head, hosts: &Hosts, local: std::net::IpAddr) -> Option<Response> {
    match head.host() {
        None if head.minor > 0 => Some(Response::error(400, "Host is missing", false)),
        Some(host) if !hosts.allows(host, local) => {
            let message = format!("this server does not answer for '{}'", common::text::escape(host));
            Some(Response::error(421, &message, false))
        }
        _ => None,
    }
}

/// `PUT /NAME` with `Content-Length`: an upload through the same path as
/// `put` (uploads on, rights, size limit, a temporary file that appears
/// under its name only once complete). It replaces a file of that name,
/// atomically, unless `If-None-Match: *`. `Expect: 100-continue` is answered
/// once the upload may go ahead; a refused one is not read (the connection
/// closes).
fn put(head: &Head, caller: Caller<'_, '_>, locks: &Locks, conn: &mut Transport, buf: &mut Vec<u8>) -> Response {
    let (raw_path, _) = head.target.split_once('?').unwrap_or((&head.target, ""));
    let Some(path) = decode_path(raw_path) else {
        return Response::error(400, "the path is not a plain name", false);
    };
    let target = dav::Target { head, caller, locks, path: &path };
    if let Some(refusal) = dav::precondition(&target, false) {
        return refusal.with_keep_alive(false);
    }
    if head.header("transfer-encoding").is_some() {
        return Response::error(411, "send the length (Content-Length), not chunks", false);
    }
    let Some(size) = head.content_length() else {
        return Response::error(411, "Content-Length is needed", false);
    };
    let replace = head.header("if-none-match") != Some("*");
    let announced =
        cmd::files::Announced { size, check: cmd::files::Check::Unchecked, replace, modified: None, resume: false };
    let mut incoming = match cmd::apply(Op::Upload { announced, name: path }, caller) {
        Outcome::Receive(incoming) => incoming,
        Outcome::Refused(refusal) if refusal.code == Code::Exists && !replace => {
            return Response::error(412, &refusal.message, false);
        }
        Outcome::Refused(refusal) => return dav::conflict_if_missing_parent(&refusal).with_keep_alive(false),
        _ => return Response::error(500, "unexpected reply", false),
    };
    if head.header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        if let Err(e) = io::Write::write_all(conn, b"HTTP/1.1 100 Continue\r\n\r\n") {
            incoming.abandon(&e);
            return Response::error(400, "connection lost", false);
        }
    }
    // The body: what came with the head, then the connection.
    let early = buf.len().min(usize::try_from(size).unwrap_or(usize::MAX));
    let prefix: Vec<u8> = buf.drain(..early).collect();
    let grace = caller.shared.config.line_timeout;
    let floored = FloorRate { conn, started: Instant::now(), taken: early as u64, grace };
    let mut body = io::Read::chain(&prefix[..], io::Read::take(floored, size - early as u64));
    if let Err(e) = incoming.receive(&mut body) {
        incoming.abandon(&e);
        if e.kind() == io::ErrorKind::TimedOut {
            return Response::error(408, &e.to_string(), false);
        }
        return Response::error(400, "the body ended before its Content-Length", false);
    }
    match incoming.finish(None) {
        Outcome::Ok { body, .. } => Response::bytes(201, "text/plain; charset=utf-8", body),
        Outcome::Refused(refusal) => Response::refused(&refusal),
        _ => Response::error(500, "unexpected reply", false),
    }
}

/// With accounts, HTTP Basic: `None` when the request may go on (logged in,
/// or visitors may read), else the `401`. A connection's credentials are
/// checked once (the penalties and the answer delay are `login`'s; a penalised
/// source or account gets `429` with `Retry-After`).
fn authorize(head: &Head, caller: Caller<'_, '_>, verified: &mut Option<String>) -> Option<Response> {
    let config = &caller.shared.config;
    config.accounts.as_ref()?;
    let challenge = || {
        Response::error(401, "log in", true)
            .header("WWW-Authenticate", "Basic realm=\"file-server\", charset=\"UTF-8\"")
    };
    if let Some(credentials) = head.header("authorization").and_then(|v| v.strip_prefix("Basic ")) {
        if verified.as_deref() == Some(credentials) {
            return None;
        }
        if caller.session.account().is_some() {
            // Another account on a connection already logged in: refuse
            // rather than mix two accounts' rights.
            return Some(Response::error(403, "this connection is logged in as another account", false));
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(credentials.trim()).ok();
        let pair = decoded.and_then(|d| String::from_utf8(d).ok());
        let Some((user, password)) = pair.as_deref().and_then(|p| p.split_once(':')) else {
            return Some(challenge());
        };
        let request = Request::Login { user: user.to_string(), password: password.to_string() };
        return match cmd::apply(request, caller) {
            Outcome::Ok { .. } => {
                *verified = Some(credentials.to_string());
                None
            }
            // Penalised: refused at once, with when to come back.
            Outcome::Refused(refusal) if refusal.code == Code::TooMany => Some(Response::refused(&refusal)),
            _ => Some(challenge()),
        };
    }
    if config.anonymous_read {
        return None;
    }
    Some(challenge())
}

/// The response to one request (its body, when it may have one, read already).
fn handle(head: &Head, caller: Caller<'_, '_>, locks: &Locks, body: &[u8]) -> Response {
    let (raw_path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
    let Some(path) = decode_path(raw_path) else {
        return Response::error(400, "the path is not a plain name (encoded slashes, bad escapes or not UTF-8)", true);
    };
    let folder_named = raw_path.ends_with('/');
    let target = dav::Target { head, caller, locks, path: path.trim_end_matches('/') };
    if let Some(response) = dav::answer(&target, body) {
        return response;
    }
    match head.method.as_str() {
        "GET" | "HEAD" => {}
        "DELETE" | "MKCOL" | "MOVE" => return change(&target, folder_named),
        _ => {
            return Response::error(405, &format!("not a method here ({})", dav::ALLOW), true)
                .header("Allow", dav::ALLOW)
        }
    }
    match path.as_str() {
        ".status" => return Response::html(200, page::status_page()),
        ".status.json" => return status_json(caller),
        _ => {}
    }
    if let Some((_, content_type, text)) = page::ASSETS.iter().find(|(name, _, _)| *name == path) {
        return Response::asset(content_type, text);
    }
    // Views of a folder: sorted (`/.sort/size-desc/PATH/`), or as one archive
    // (`/.tar/PATH/`, `/.zip/PATH/`); the query forms (`PATH/?sort=size`,
    // `PATH/?tar`) say the same.
    if let Some((view, rest)) = path.split_once('/').filter(|(view, _)| view.starts_with('.')) {
        let sorted;
        let query = match view {
            ".tar" => "tar",
            ".zip" => "zip",
            ".sort" => {
                let (key, rest) = rest.split_once('/').unwrap_or((rest, ""));
                let (key, order) = key.strip_suffix("-desc").map_or((key, ""), |k| (k, "&order=desc"));
                sorted = format!("sort={key}{order}");
                return folder(caller, rest.trim_end_matches('/'), &sorted);
            }
            _ => return Response::error(404, "no such view", true),
        };
        return folder(caller, rest.trim_end_matches('/'), query);
    }
    if path.is_empty() || folder_named {
        return folder(caller, path.trim_end_matches('/'), query);
    }
    respond::file(head, caller, &path)
}

/// The changes (as WebDAV and the page's buttons say them): `DELETE` a
/// file, or a folder with all in it; `MKCOL` a folder (`405` where
/// something is, `409` without its parent); `MOVE` to the path in
/// `Destination`, onto an existing resource only with `Overwrite: T` (the
/// default; `412` with `F`), `201` for a new name and `204` for one
/// replaced. Each is the line protocol's command (`rm`, `rmtree`, `mkdir`,
/// `mv`), with its rights and log line, after the locks and `If:` allow it.
fn change(target: &dav::Target<'_, '_>, folder_named: bool) -> Response {
    let (head, caller, path) = (target.head, target.caller, target.path);
    let there = dav::existing(caller, path);
    let is_dir = folder_named || there.as_ref().is_some_and(|e| e.kind == common::ListEntryKind::Dir);
    if let Some(refusal) = dav::precondition(target, is_dir) {
        return refusal;
    }
    let (request, replaced) = match head.method.as_str() {
        "DELETE" if is_dir => (Request::RemoveTree(path.to_string()), false),
        "DELETE" => (Request::Remove(path.to_string()), false),
        "MKCOL" if there.is_some() => return Response::error(405, "something is there already", true),
        "MKCOL" => (Request::Mkdir(path.to_string()), false),
        _ => {
            let to = match dav::destination(head) {
                Ok(to) => to,
                Err(response) => return response,
            };
            if to == path {
                return Response::error(403, "source and destination are the same", true);
            }
            if let Some(refusal) = dav::precondition(&dav::Target { path: &to, ..*target }, true) {
                return refusal;
            }
            let existing = dav::existing(caller, &to);
            if existing.is_some() && !dav::overwrite(head) {
                return Response::error(412, "the destination exists and Overwrite is F", true);
            }
            // What is there goes first, as RFC 4918 says, unless a file
            // replaces a file: that rename is atomic.
            let removal = match existing.as_ref().map(|e| e.kind) {
                Some(common::ListEntryKind::Dir) => Some(Request::RemoveTree(to.clone())),
                Some(common::ListEntryKind::File) if is_dir => Some(Request::Remove(to.clone())),
                _ => None,
            };
            if let Some(Outcome::Refused(refusal)) = removal.map(|r| cmd::apply(r, caller)) {
                return Response::refused(&refusal);
            }
            (Request::Move { from: path.to_string(), to, replace: true }, existing.is_some())
        }
    };
    match cmd::apply(request, caller) {
        Outcome::Ok { body, .. } => {
            if head.method != "MKCOL" {
                target.locks.remove_tree(path);
            }
            let status = match head.method.as_str() {
                "DELETE" => 204,
                _ if replaced => 204,
                _ => 201,
            };
            Response::bytes(status, "text/plain; charset=utf-8", if status == 204 { Vec::new() } else { body })
        }
        Outcome::Refused(refusal) if head.method == "DELETE" => Response::refused(&refusal),
        Outcome::Refused(refusal) => dav::conflict_if_missing_parent(&refusal),
        _ => Response::error(500, "unexpected reply", true),
    }
}

/// A request body of a WebDAV method (`PROPFIND`, `PROPPATCH`, `LOCK`):
/// at most [`MAX_XML_BODY`] bytes, with `Content-Length`, read at the body
/// floor rate like an upload's.
///
/// # Errors
/// The response: `411` for chunks, `413` over the limit, `400` cut short, `408` too slow.
fn small_body(
    head: &Head,
    caller: Caller<'_, '_>,
    conn: &mut Transport,
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, Response> {
    if head.header("transfer-encoding").is_some() {
        return Err(Response::error(411, "send the length (Content-Length), not chunks", false));
    }
    let size = head.content_length().unwrap_or(0);
    if size > MAX_XML_BODY {
        return Err(Response::error(413, &format!("a request body of at most {MAX_XML_BODY} bytes"), false));
    }
    let size = size as usize;
    let mut body: Vec<u8> = buf.drain(..size.min(buf.len())).collect();
    let grace = caller.shared.config.line_timeout;
    let mut floored = FloorRate { conn, started: Instant::now(), taken: body.len() as u64, grace };
    let mut rest = vec![0u8; size - body.len()];
    match io::Read::read_exact(&mut floored, &mut rest) {
        Ok(()) => {
            body.extend_from_slice(&rest);
            Ok(body)
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(Response::error(408, &e.to_string(), false)),
        Err(_) => Err(Response::error(400, "the body ended before its Content-Length", false)),
    }
}

/// The largest body a WebDAV method's XML may have.
pub const MAX_XML_BODY: u64 = 64 * 1024;

/// `/.status.json`: `info`, as JSON.
fn status_json(caller: Caller<'_, '_>) -> Response {
    match cmd::apply(Request::Info, caller) {
        Outcome::Status { status, .. } => {
            Response::bytes(200, "application/json", status.to_json().to_string().into_bytes())
        }
        Outcome::Refused(refusal) => Response::refused(&refusal),
        _ => Response::error(500, "unexpected reply", true),
    }
}

/// A folder's page, from `list`; or with `?tar` / `?zip`, the folder as one archive.
fn folder(caller: Caller<'_, '_>, path: &str, query: &str) -> Response {
    let format = match query {
        "tar" => Some(archive::Format::Tar),
        "zip" => Some(archive::Format::Zip),
        _ => None,
    };
    match cmd::apply(Request::List(path.to_string()), caller) {
        Outcome::Listing(_) if format.is_some() => {
            let top = path.rsplit('/').next().filter(|t| !t.is_empty()).unwrap_or("share");
            Response::archive(path, top, format.unwrap_or(archive::Format::Tar))
        }
        Outcome::Listing(entries) => Response::html(200, page::folder_page(path, &entries, query, may_write(caller))),
        Outcome::Refused(refusal) => Response::refused(&refusal),
        _ => Response::error(500, "unexpected reply", true),
    }
}

/// A request body read off the connection no slower than [`BODY_FLOOR`]
/// bytes a second on average once `grace` has passed since it began; a
/// slower one fails with `TimedOut`, so a trickle cannot hold its place.
struct FloorRate<'a> {
    conn: &'a mut Transport,
    started: Instant,
    taken: u64,
    grace: Duration,
}

impl Read for FloorRate<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // When the bytes taken so far stop being enough.
            let due = self.grace.max(Duration::from_secs(self.taken / BODY_FLOOR));
            let Some(left) = due.checked_sub(self.started.elapsed()).filter(|l| !l.is_zero()) else {
                let secs = self.started.elapsed().as_secs();
                let message =
                    format!("the body came slower than {BODY_FLOOR} bytes a second ({} in {secs}s)", self.taken);
                return Err(io::Error::new(io::ErrorKind::TimedOut, message));
            };
            self.conn.set_read_timeout(left)?;
            match self.conn.read(buf) {
                Ok(n) => {
                    self.taken += n as u64;
                    return Ok(n);
                }
                Err(e) if common::transport::is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether the page should offer uploads and changes: the server takes
/// them, and (with accounts) this visitor's account may write.
fn may_write(caller: Caller<'_, '_>) -> bool {
    cmd::files::writes_allowed(caller).is_ok()
}

/// The share path a request target names: percent-decoded, without its
/// leading `/`. `None` for an encoded `/` or `\` (a name never holds one), a
/// broken escape, or bytes that are not UTF-8. What is left (`..`, hidden
/// names, links out) the share's own rules refuse.
pub fn decode_path(raw: &str) -> Option<String> {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return None;
    }
    let decoded = common::text::decode_value(raw)?;
    Some(decoded.trim_start_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::decode_path;

    #[test]
    fn paths_are_decoded_and_encoded_separators_refused() {
        assert_eq!(decode_path("/docs/a%20b.txt").as_deref(), Some("docs/a b.txt"));
        assert_eq!(decode_path("/").as_deref(), Some(""));
        assert_eq!(decode_path("/%C3%A9t%C3%A9").as_deref(), Some("été"));
        assert_eq!(decode_path("/..%2fetc/passwd"), None);
        assert_eq!(decode_path("/a%5Cb"), None);
        assert_eq!(decode_path("/a%zz"), None);
        assert_eq!(decode_path("/%ff"), None);
        // Left for the share's rules, which refuse them.
        assert_eq!(decode_path("/%2e%2e/x").as_deref(), Some("../x"));
    }
}
