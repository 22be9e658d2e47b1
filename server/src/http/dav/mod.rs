//! WebDAV (RFC 4918, classes 1 and 2) on the web side, so file managers
//! (Explorer, Finder, GNOME Files, Dolphin), `rclone`, `davfs2` and
//! `cadaver` can mount and sync the share. Every operation is one of the
//! command layer's ([`crate::cmd`]): `PROPFIND` is [`Op::Describe`], `COPY`
//! [`Op::Copy`], `MOVE` `mv`, `DELETE` `rm`/`rmtree`, `MKCOL` `mkdir`, `PUT`
//! an upload; the same accounts, rights, sandbox and atomic uploads as every
//! other door.
//!
//! Dead properties are not stored: `PROPPATCH` answers `403` for each
//! property it is asked to set or remove, in a `207`.
//!
//! # Layout
//! - here: the methods (`OPTIONS`, `PROPFIND`, `PROPPATCH`, `COPY`, `LOCK`,
//!   `UNLOCK`) and the preconditions every change passes ([`precondition`]).
//! - [`locks`]: the lock table and the `If:` header.
//! - [`xml`]: request bodies in, multistatus out.

pub mod locks;
pub mod xml;

use common::{Code, Digest, ListEntry, ListEntryKind, Request};

use super::head::Head;
use super::page::href;
use super::respond::{content_type, http_date, Response};
use crate::cmd::{self, Caller, Op, Outcome};
use locks::{asked_timeout, parse_if, submitted_tokens, Check, Lock, Locks};
use xml::{empty, escape, propstat, Element, MULTISTATUS_END, MULTISTATUS_START};

/// Methods the web side answers.
pub const ALLOW: &str = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, MOVE, COPY, PROPFIND, PROPPATCH, LOCK, UNLOCK";

/// The live properties, as `allprop` lists them.
const LIVE: [&str; 8] = [
    "resourcetype",
    "getcontentlength",
    "getlastmodified",
    "getetag",
    "getcontenttype",
    "displayname",
    "supportedlock",
    "lockdiscovery",
];

/// What one request is about.
pub struct Target<'a, 'c> {
    /// The request.
    pub head: &'a Head,
    /// Who asks.
    pub caller: Caller<'c, 'c>,
    /// The server's locks.
    pub locks: &'a Locks,
    /// The share path, without a trailing `/` ("" for the top).
    pub path: &'a str,
}

/// The answer to a WebDAV method, or `None` for a method that is not one
/// of those this module answers alone.
pub fn answer(target: &Target<'_, '_>, body: &[u8]) -> Option<Response> {
    Some(match target.head.method.as_str() {
        "OPTIONS" => options(),
        "PROPFIND" => propfind(target, body),
        "PROPPATCH" => precondition(target, false).unwrap_or_else(|| proppatch(target, body)),
        "COPY" => copy(target),
        "LOCK" => lock(target, body),
        "UNLOCK" => unlock(target),
        _ => return None,
    })
}

/// `OPTIONS`: what the share speaks (`DAV: 1, 2`).
fn options() -> Response {
    Response::bytes(200, "text/plain; charset=utf-8", Vec::new())
        .header("DAV", "1, 2")
        .header("Allow", ALLOW)
        .header("MS-Author-Via", "DAV")
}

/// The `href` of share path `path`: a folder's ends with `/`.
fn href_of(path: &str, kind: ListEntryKind) -> String {
    match (path.is_empty(), kind) {
        (true, _) => "/".into(),
        (false, ListEntryKind::Dir) => format!("/{}/", href(path)),
        (false, ListEntryKind::File) => format!("/{}", href(path)),
    }
}

/// What `PROPFIND` asked for.
enum Asked {
    All,
    Names,
    Some(Vec<(String, String)>),
}

/// `PROPFIND` with `Depth: 0` or `1` (`infinity`, the default, is refused
/// with `403`, as Apache does): the resource's live properties and, at
/// depth 1, its members'.
fn propfind(target: &Target<'_, '_>, body: &[u8]) -> Response {
    let depth = target.head.header("depth").unwrap_or("infinity");
    let children = match depth {
        "0" => false,
        "1" => true,
        _ => {
            let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
                        <D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n";
            return Response::bytes(403, "application/xml; charset=utf-8", body.into());
        }
    };
    let asked = if body.iter().all(u8::is_ascii_whitespace) {
        Asked::All
    } else {
        match xml::parse(body) {
            Ok(root) if root.is("propfind") => match root.children.first() {
                Some(e) if e.is("allprop") => Asked::All,
                Some(e) if e.is("propname") => Asked::Names,
                Some(e) if e.is("prop") => {
                    Asked::Some(e.children.iter().map(|c| (c.ns.clone(), c.name.clone())).collect())
                }
                _ => return Response::error(400, "propfind holds allprop, propname or prop", true),
            },
            Ok(_) => return Response::error(400, "the body is not a propfind", true),
            Err(e) => return Response::error(400, &e.to_string(), true),
        }
    };
    let (this, children) = match cmd::apply(Op::Describe { path: target.path.to_string(), children }, target.caller) {
        Outcome::Described { this, children } => (this, children),
        Outcome::Refused(refusal) => return Response::refused(&refusal),
        _ => return Response::error(500, "unexpected reply", true),
    };
    // Written as the folder is read: a folder of 100,000 entries is never
    // held, neither as entries nor as one string.
    let (path, locks) = (target.path.to_string(), target.locks.in_the_way("", true));
    let write: super::respond::Writer = Box::new(move |out: &mut dyn std::io::Write| {
        out.write_all(MULTISTATUS_START.as_bytes())?;
        let mut one = |member: &str, described: &crate::repo::Described| {
            let covering: Vec<Lock> = locks.iter().filter(|l| l.covers(member)).cloned().collect();
            let answer = response(member, &described.entry, described.digest.as_ref(), &covering, &asked);
            out.write_all(answer.as_bytes())
        };
        one(&path, &this)?;
        for child in children.into_iter().flatten() {
            let member =
                if path.is_empty() { child.entry.name.clone() } else { format!("{path}/{}", child.entry.name) };
            one(&member, &child)?;
        }
        out.write_all(MULTISTATUS_END.as_bytes())
    });
    Response::stream(207, "application/xml; charset=utf-8", target.head.minor, write)
}

/// One `response` of a `PROPFIND` multistatus.
fn response(path: &str, entry: &ListEntry, digest: Option<&Digest>, locks: &[Lock], asked: &Asked) -> String {
    let mut out = format!("<D:response><D:href>{}</D:href>", escape(&href_of(path, entry.kind)));
    match asked {
        Asked::Names => {
            let names: String = LIVE.iter().map(|n| empty(xml::DAV, n)).collect();
            out.push_str(&propstat(&names, 200));
        }
        Asked::All => {
            let found: String = LIVE.iter().filter_map(|n| live(n, entry, digest, locks)).collect();
            out.push_str(&propstat(&found, 200));
        }
        Asked::Some(names) => {
            let (mut found, mut missing) = (String::new(), String::new());
            for (ns, name) in names {
                match (ns == xml::DAV).then(|| live(name, entry, digest, locks)).flatten() {
                    Some(value) => found.push_str(&value),
                    None => missing.push_str(&empty(ns, name)),
                }
            }
            if !found.is_empty() {
                out.push_str(&propstat(&found, 200));
            }
            if !missing.is_empty() {
                out.push_str(&propstat(&missing, 404));
            }
        }
    }
    out.push_str("</D:response>\n");
    out
}

/// A live property of `entry`, written out; `None` when it has none.
fn live(name: &str, entry: &ListEntry, digest: Option<&Digest>, locks: &[Lock]) -> Option<String> {
    let file = entry.kind == ListEntryKind::File;
    Some(match name {
        "resourcetype" if file => "<D:resourcetype/>".into(),
        "resourcetype" => "<D:resourcetype><D:collection/></D:resourcetype>".into(),
        "getcontentlength" if file => format!("<D:getcontentlength>{}</D:getcontentlength>", entry.size),
        "getlastmodified" => {
            let time = chrono::DateTime::parse_from_rfc3339(&entry.modified).ok()?;
            format!("<D:getlastmodified>{}</D:getlastmodified>", http_date(time.into()))
        }
        "getetag" if file => format!("<D:getetag>\"{}\"</D:getetag>", digest?),
        "getcontenttype" if file => {
            format!("<D:getcontenttype>{}</D:getcontenttype>", escape(&content_type(&entry.name)))
        }
        "getcontenttype" => "<D:getcontenttype>httpd/unix-directory</D:getcontenttype>".into(),
        "displayname" => format!("<D:displayname>{}</D:displayname>", escape(&entry.name)),
        "supportedlock" => "<D:supportedlock>\
            <D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
            <D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
            </D:supportedlock>"
            .into(),
        "lockdiscovery" => {
            format!("<D:lockdiscovery>{}</D:lockdiscovery>", locks.iter().map(active_lock).collect::<String>())
        }
        _ => return None,
    })
}

/// One lock as `lockdiscovery` shows it.
fn active_lock(lock: &Lock) -> String {
    let scope = if lock.exclusive { "<D:exclusive/>" } else { "<D:shared/>" };
    let depth = if lock.infinite { "infinity" } else { "0" };
    let owner =
        if lock.owner.is_empty() { String::new() } else { format!("<D:owner>{}</D:owner>", escape(&lock.owner)) };
    let root = href_of(&lock.root, ListEntryKind::File);
    format!(
        "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope>{scope}</D:lockscope>\
         <D:depth>{depth}</D:depth>{owner}<D:timeout>Second-{}</D:timeout>\
         <D:locktoken><D:href>{}</D:href></D:locktoken><D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock>",
        lock.seconds_left(),
        escape(&lock.token),
        escape(&root)
    )
}

/// `PROPPATCH`: dead properties are not stored, so every property asked to
/// be set or removed is answered `403` (live ones too: they are the file
/// system's), in a `207`.
fn proppatch(target: &Target<'_, '_>, body: &[u8]) -> Response {
    let root = match xml::parse(body) {
        Ok(root) if root.is("propertyupdate") => root,
        Ok(_) => return Response::error(400, "the body is not a propertyupdate", true),
        Err(e) => return Response::error(400, &e.to_string(), true),
    };
    if let Outcome::Refused(refusal) =
        cmd::apply(Op::Describe { path: target.path.to_string(), children: false }, target.caller)
    {
        return Response::refused(&refusal);
    }
    let names: String = root
        .children
        .iter()
        .filter(|c| c.is("set") || c.is("remove"))
        .filter_map(|c| c.child("prop"))
        .flat_map(|p| &p.children)
        .map(|p| empty(&p.ns, &p.name))
        .collect();
    let kind = if target.head.target.ends_with('/') { ListEntryKind::Dir } else { ListEntryKind::File };
    let out = format!(
        "{MULTISTATUS_START}<D:response><D:href>{}</D:href>{}\
         <D:responsedescription>properties are not stored here</D:responsedescription></D:response>\n{MULTISTATUS_END}",
        escape(&href_of(target.path, kind)),
        propstat(&names, 403)
    );
    Response::bytes(207, "application/xml; charset=utf-8", out.into_bytes())
}

/// The share path a `Destination` header names (a URL on this server or a
/// path), without its trailing `/`.
///
/// # Errors
/// The response: missing (`400`), on another server (`502`), not a plain path (`400`).
pub fn destination(head: &Head) -> Result<String, Response> {
    let destination = head.header("destination").ok_or_else(|| Response::error(400, "Destination is missing", true))?;
    let raw = match destination.split_once("://") {
        Some((_, after)) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !head.host().is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
                return Err(Response::error(502, "Destination is on another server", true));
            }
            if path.is_empty() {
                "/"
            } else {
                path
            }
        }
        None => destination,
    };
    let decoded = super::decode_path(raw.split('?').next().unwrap_or(""))
        .ok_or_else(|| Response::error(400, "Destination is not a plain path in this share", true))?;
    Ok(decoded.trim_end_matches('/').to_string())
}

/// Whether `Overwrite` allows replacing (`T`, the default).
pub fn overwrite(head: &Head) -> bool {
    !head.header("overwrite").is_some_and(|o| o.eq_ignore_ascii_case("F"))
}

/// What is at `path` now, if anything.
pub fn existing(caller: Caller<'_, '_>, path: &str) -> Option<ListEntry> {
    match cmd::apply(Op::Describe { path: path.to_string(), children: false }, caller) {
        Outcome::Described { this, .. } => Some(this.entry),
        _ => None,
    }
}

/// `COPY` to `Destination`: a file, or a folder with (`Depth: infinity`,
/// the default) or without (`0`) its members; onto an existing resource
/// only with `Overwrite: T` (`412` otherwise). `201` for a new resource,
/// `204` for one replaced.
fn copy(target: &Target<'_, '_>) -> Response {
    let to = match destination(target.head) {
        Ok(to) => to,
        Err(response) => return response,
    };
    if to == target.path {
        return Response::error(403, "source and destination are the same", true);
    }
    let recursive = match target.head.header("depth").unwrap_or("infinity") {
        "0" => false,
        "infinity" => true,
        _ => return Response::error(400, "COPY takes Depth 0 or infinity", true),
    };
    let dest = Target { path: &to, ..*target };
    if let Some(refusal) = precondition(&dest, true) {
        return refusal;
    }
    let replace = overwrite(target.head);
    if !replace && existing(target.caller, &to).is_some() {
        return Response::error(412, "the destination exists and Overwrite is F", true);
    }
    let op = Op::Copy { from: target.path.to_string(), to, recursive, replace };
    match cmd::apply(op, target.caller) {
        Outcome::Ok { fields, .. } => created_or_replaced(&fields),
        Outcome::Refused(refusal) => conflict_if_missing_parent(&refusal),
        _ => Response::error(500, "unexpected reply", true),
    }
}

/// `201` for a new resource, `204` when the reply says one was replaced.
pub fn created_or_replaced(fields: &[(String, String)]) -> Response {
    if fields.iter().any(|(k, v)| k == "replaced" && v == "yes") {
        Response::bytes(204, "text/plain; charset=utf-8", Vec::new())
    } else {
        Response::bytes(201, "text/plain; charset=utf-8", Vec::new())
    }
}

/// A refusal as WebDAV says it: a missing folder on the way is `409`.
pub fn conflict_if_missing_parent(refusal: &cmd::Refusal) -> Response {
    if refusal.code == Code::NotFound {
        return Response::error(409, &format!("{} (a folder on the way is missing)", refusal.message), true);
    }
    Response::refused(refusal)
}

/// What every change passes first: the `If:` header, when there is one,
/// must hold (else `412`), and every lock on the resource (with `tree`, on
/// anything below it too) must have its token in it (else `423`).
pub fn precondition(target: &Target<'_, '_>, tree: bool) -> Option<Response> {
    let lists = match conditions(target) {
        Ok(lists) => lists,
        Err(response) => return Some(response),
    };
    let submitted = submitted_tokens(&lists);
    let in_the_way = target.locks.in_the_way(target.path, tree);
    if let Some(lock) = in_the_way.iter().find(|l| !submitted.contains(&l.token.as_str())) {
        let message = format!("'/{}' is locked; send its lock token in an If: header", lock.root);
        return Some(Response::error(423, &message, true));
    }
    None
}

/// The `If:` header's lists, once they hold (when there is one).
///
/// # Errors
/// The response: `400` for a header that is not one, `412` when no list holds.
fn conditions(target: &Target<'_, '_>) -> Result<Vec<locks::List>, Response> {
    let lists = match target.head.header_joined("if", " ").as_deref().map(parse_if) {
        None => Vec::new(),
        Some(Ok(lists)) => lists,
        Some(Err(why)) => return Err(Response::error(400, &format!("If: {why}"), true)),
    };
    if !lists.is_empty() {
        let holds = lists.iter().any(|list| {
            let path = match &list.resource {
                None => Some(target.path.to_string()),
                Some(url) => resource_path(url),
            };
            let Some(path) = path else { return false };
            list.conditions.iter().all(|c| {
                let met = match &c.what {
                    Check::Token(token) => target.locks.covering(&path).iter().any(|l| &l.token == token),
                    Check::ETag(tag) => etag(target.caller, &path).is_some_and(|current| &current == tag),
                };
                met != c.not
            })
        });
        if !holds {
            return Err(Response::error(412, "the If: conditions do not hold", true));
        }
    }
    Ok(lists)
}

/// The share path a tagged `If:` list names (a URL or a path).
fn resource_path(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or(url, |(_, after)| after.find('/').map_or("/", |i| &after[i..]));
    super::decode_path(path).map(|p| p.trim_end_matches('/').to_string())
}

/// The resource's ETag now (a file's BLAKE3, quoted), hashing it if needed.
fn etag(caller: Caller<'_, '_>, path: &str) -> Option<String> {
    if let Outcome::Ok { body, .. } = cmd::apply(Request::Hash(path.to_string()), caller) {
        let text = String::from_utf8_lossy(&body);
        return text.split_whitespace().next().map(|hex| format!("\"{hex}\""));
    }
    None
}

/// `LOCK`: a new lock (`lockinfo` in the body; `Depth: 0` or `infinity`,
/// the default; `Timeout: Second-N`), or with no body a refresh of the lock
/// whose token the `If:` header carries. A lock on a name that does not
/// exist yet makes an empty file there (`201`).
fn lock(target: &Target<'_, '_>, body: &[u8]) -> Response {
    let timeout = asked_timeout(target.head.header("timeout"));
    if body.iter().all(u8::is_ascii_whitespace) {
        let tokens = match target.head.header_joined("if", " ").as_deref().map(parse_if) {
            Some(Ok(lists)) => submitted_tokens(&lists).into_iter().map(str::to_string).collect::<Vec<_>>(),
            _ => return Response::error(400, "a refresh needs the lock's token in an If: header", true),
        };
        return match tokens.iter().find_map(|t| target.locks.refresh(t, target.path, timeout)) {
            Some(lock) => lock_reply(200, &lock),
            None => Response::error(412, "no such lock on this resource", true),
        };
    }
    let info = match xml::parse(body) {
        Ok(root) if root.is("lockinfo") => root,
        Ok(_) => return Response::error(400, "the body is not a lockinfo", true),
        Err(e) => return Response::error(400, &e.to_string(), true),
    };
    let exclusive = info.child("lockscope").is_none_or(|s| s.child("exclusive").is_some());
    if info.child("locktype").is_some_and(|t| t.child("write").is_none()) {
        return Response::error(400, "only write locks", true);
    }
    let owner = info.child("owner").map_or_else(String::new, owner_text);
    let infinite = match target.head.header("depth").unwrap_or("infinity") {
        "0" => false,
        "infinity" => true,
        _ => return Response::error(400, "LOCK takes Depth 0 or infinity", true),
    };
    // Whether another lock is in the way is the lock table's to say (a
    // shared lock beside another is fine); the If: conditions must hold.
    if let Err(refusal) = conditions(target) {
        return refusal;
    }
    let mut status = 200;
    if existing(target.caller, target.path).is_none() {
        // A lock on an unmapped name makes an empty file (RFC 4918 §7.3).
        let announced = cmd::files::Announced {
            size: 0,
            check: cmd::files::Check::Unchecked,
            replace: false,
            modified: None,
            resume: false,
        };
        match cmd::apply(Op::Upload { announced, name: target.path.to_string() }, target.caller) {
            Outcome::Receive(incoming) => match incoming.finish(None) {
                Outcome::Refused(refusal) => return conflict_if_missing_parent(&refusal),
                _ => status = 201,
            },
            Outcome::Refused(refusal) => return conflict_if_missing_parent(&refusal),
            _ => return Response::error(500, "unexpected reply", true),
        }
    }
    match target.locks.lock(target.path, infinite, exclusive, &owner, timeout) {
        Ok(lock) => lock_reply(status, &lock),
        Err(locks::Refused::Conflict(root)) => Response::error(423, &format!("'/{root}' is locked already"), true),
    }
}

/// An `owner` element's content as text (an `href` inside, or text).
fn owner_text(owner: &Element) -> String {
    owner.child("href").map_or_else(|| owner.text.clone(), |h| h.text.clone())
}

/// A lock granted or refreshed: `Lock-Token` and the `lockdiscovery`.
fn lock_reply(status: u16, lock: &Lock) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>{}</D:lockdiscovery></D:prop>\n",
        active_lock(lock)
    );
    Response::bytes(status, "application/xml; charset=utf-8", body.into_bytes())
        .header("Lock-Token", format!("<{}>", lock.token))
}

/// `UNLOCK` with `Lock-Token: <token>`: `204`, or `409` when no such lock
/// covers the resource.
fn unlock(target: &Target<'_, '_>) -> Response {
    let token = target.head.header("lock-token").map(|t| t.trim().trim_start_matches('<').trim_end_matches('>'));
    match token {
        Some(token) if target.locks.unlock(token, target.path) => {
            Response::bytes(204, "text/plain; charset=utf-8", Vec::new())
        }
        Some(_) => Response::error(409, "no such lock on this resource", true),
        None => Response::error(400, "Lock-Token is missing", true),
    }
}
