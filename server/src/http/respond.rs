//! HTTP responses: a status, headers, and a body that is bytes or a range
//! of a file (sent with `sendfile` on plain connections). Downloads carry
//! what clients rely on: `Content-Length`, `Content-Type` from the name,
//! `Last-Modified`, `ETag` (the file's BLAKE3, which the share keeps),
//! `Accept-Ranges`, and answer `Range`/`If-Range`, `If-None-Match` and
//! `If-Modified-Since`.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use common::status::Activity;
use common::Request;

use super::archive::{self, Format};
use super::head::Head;
use crate::cmd::{self, Caller, Outcome, Refusal};
use crate::writer::Push;
use common::transport::Transport;

/// What follows the head.
enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `file` (the share's `name`) from its current position.
    File {
        file: File,
        len: u64,
        name: String,
    },
    /// A folder as one archive, made while it is sent (length unknown: the
    /// connection's end ends it).
    Archive {
        dir: String,
        top: String,
        format: Format,
    },
    /// A body written while it is sent (a WebDAV multistatus): in chunks
    /// (HTTP/1.1, the connection stays open), else ended by the connection's end.
    Stream {
        write: Writer,
        chunked: bool,
    },
}

/// What writes a streamed body.
pub type Writer = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// Bytes written in HTTP/1.1 chunks of up to [`CHUNK`] bytes;
/// [`Chunked::finish`] writes the last, empty one.
struct Chunked<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    sent: u64,
}

/// The largest chunk of a streamed body.
const CHUNK: usize = 64 * 1024;

impl Chunked<'_> {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(format!("{:x}\r\n", self.buf.len()).as_bytes())?;
            self.out.write_all(&self.buf)?;
            self.out.write_all(b"\r\n")?;
            self.sent += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<u64> {
        self.flush_chunk()?;
        self.out.write_all(b"0\r\n\r\n")?;
        Ok(self.sent)
    }
}

impl Write for Chunked<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts what passes through to `out`.
struct Counted<'a> {
    out: &'a mut dyn Write,
    sent: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.out.write(data)?;
        self.sent += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A response being made.
pub struct Response {
    /// The status code.
    pub status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    /// Whether the connection may stay open after it.
    keep: bool,
    /// One of this server's own pages (which may run its own scripts), not
    /// a file of the share or a message.
    page: bool,
}

/// The policy of everything that is not one of our pages: a file of the
/// share opened in a browser runs no script, has no origin (so it cannot
/// call this server with the visitor's rights or read its answers), loads
/// nothing but its own images, media and inline styles, and cannot be
/// framed. (GitHub's raw files are served the same way.)
pub const FILE_POLICY: &str =
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// The policy of our own pages: their scripts and style come from this
/// server's fixed assets only (no inline code, so an injected tag could not
/// run), they talk only to this server, and no other site may frame them.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The reason phrase of the codes used here.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        421 => "Misdirected Request",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Error",
    }
}

impl Response {
    /// `bytes` with this content type.
    pub fn bytes(status: u16, content_type: &str, bytes: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(bytes),
            keep: true,
            page: false,
        }
    }

    /// One of our HTML pages.
    pub fn html(status: u16, page: String) -> Response {
        let mut response =
            Response::bytes(status, "text/html; charset=utf-8", page.into_bytes()).header("Cache-Control", "no-store");
        response.page = true;
        response
    }

    /// One of the pages' fixed assets (their style and scripts).
    pub fn asset(content_type: &str, text: &'static str) -> Response {
        Response::bytes(200, content_type, text.as_bytes().to_vec()).header("Cache-Control", "no-cache")
    }

    /// An error with its message as plain text; `keep` says whether the
    /// connection may go on after it.
    pub fn error(status: u16, message: &str, keep: bool) -> Response {
        let mut response =
            Response::bytes(status, "text/plain; charset=utf-8", format!("{status} {message}\n").into_bytes());
        response.keep = keep;
        response
    }

    /// A refused command as an error response, with its code and message.
    pub fn refused(refusal: &Refusal) -> Response {
        let response = Response::error(refusal.code.number(), &refusal.message, true);
        match refusal.retry_after {
            Some(secs) => response.header("Retry-After", secs.to_string()),
            None => response,
        }
    }

    /// A body `write` makes while it is sent, for a request of HTTP/1.`minor`:
    /// chunked for 1.1 (the connection may stay open), else ended by closing.
    pub fn stream(status: u16, content_type: &str, minor: u8, write: Writer) -> Response {
        let chunked = minor >= 1;
        let mut headers = vec![("Content-Type".into(), content_type.into())];
        if chunked {
            headers.push(("Transfer-Encoding".into(), "chunked".into()));
        }
        Response { status, headers, body: Body::Stream { write, chunked }, keep: chunked, page: false }
    }

    /// The folder `dir` as a `format` archive named after `top`.
    pub fn archive(dir: &str, top: &str, format: Format) -> Response {
        let (extension, content_type) = format.describe();
        let filename = super::page::href(&format!("{top}.{extension}"));
        Response {
            status: 200,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("Content-Disposition".into(), format!("attachment; filename*=UTF-8''{filename}")),
            ],
            body: Body::Archive { dir: dir.into(), top: top.into(), format },
            keep: false,
            page: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether the connection may stay open after this response.
    pub fn keeps_alive(&self) -> bool {
        self.keep
    }

    /// Says `Connection: close` when `keep` is false.
    pub fn with_keep_alive(mut self, keep: bool) -> Response {
        self.keep = keep;
        self
    }

    /// The status line and headers, with `Content-Length` and `Connection`.
    pub fn head_bytes(&self) -> Vec<u8> {
        self.head_with_room(0)
    }

    /// [`Response::head_bytes`] in a buffer with room for `body` bytes after it.
    fn head_with_room(&self, body: usize) -> Vec<u8> {
        use std::fmt::Write as _;
        let len = match &self.body {
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Archive { .. } | Body::Stream { .. } => None,
        };
        let mut head = String::with_capacity(640 + body);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        // Whatever it is, a browser takes it as the type said, sends no
        // Referer from it, and runs it under its policy.
        head.push_str("X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n");
        if self.page {
            let _ = write!(head, "Content-Security-Policy: {PAGE_POLICY}\r\nX-Frame-Options: DENY\r\n");
        } else {
            let _ = write!(head, "Content-Security-Policy: {FILE_POLICY}\r\n");
        }
        if let Some(len) = len.filter(|_| self.status != 304) {
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        head.push_str(if self.keep { "Connection: keep-alive\r\n" } else { "Connection: close\r\n" });
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The whole response as bytes (the body only when it is bytes): for a
    /// short refusal sent without waiting on the peer.
    pub fn whole(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        if let Body::Bytes(bytes) = &self.body {
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Sends the response (its body only for a request that is not `HEAD`);
    /// the bytes of body sent. A peer that takes no byte for the idle
    /// timeout is given up on, however the bytes before were taken.
    ///
    /// # Errors
    /// As the connection's writes; a file that shrank meanwhile.
    pub fn send(self, conn: &mut Transport, request: Option<&Head>, caller: Caller<'_, '_>) -> io::Result<u64> {
        if let Body::Bytes(bytes) = &self.body {
            // Head and body in one write: no corking, no timeouts to change
            // (the connection's write timeout, the idle timeout, bounds a
            // peer that reads nothing).
            let skip = request.is_some_and(|h| h.method == "HEAD") || self.status == 304;
            let mut out = self.head_with_room(if skip { 0 } else { bytes.len() });
            if !skip {
                out.extend_from_slice(bytes);
            }
            conn.write_all(&out)?;
            return Ok(if skip { 0 } else { bytes.len() as u64 });
        }
        // The head and the start of a file leave in full segments (nginx's tcp_nopush).
        conn.set_cork(true);
        let sent = self.send_corked(conn, request, caller);
        conn.set_cork(false);
        sent
    }

    fn send_corked(self, conn: &mut Transport, request: Option<&Head>, caller: Caller<'_, '_>) -> io::Result<u64> {
        let mut push =
            Push::new(conn, caller.shared.config.idle_timeout)?.paced(caller.shared.config.max_rate_per_client);
        push.write_all(&self.head_bytes())?;
        if request.is_some_and(|h| h.method == "HEAD") || self.status == 304 {
            return Ok(0);
        }
        match self.body {
            Body::Bytes(bytes) => push.write_all(&bytes).map(|()| bytes.len() as u64),
            Body::File { mut file, len, name } => {
                // Shown in `status` (and /.status) as the line protocol's downloads are.
                let clock = &caller.session.clock;
                let _doing = clock.doing(Activity::Get { file: name, size: len, done: 0 });
                push.send_file(&mut file, len, |n| clock.set_transferred(n)).map(|()| len)
            }
            Body::Archive { dir, top, format } => {
                let _doing = caller.session.clock.doing(Activity::Command(format!("{top}.{}", format.describe().0)));
                archive::write_tree(caller, &dir, &top, format, &mut push)
            }
            Body::Stream { write, chunked: true } => {
                let mut chunks = Chunked { out: &mut push, buf: Vec::with_capacity(CHUNK), sent: 0 };
                write(&mut chunks)?;
                chunks.finish()
            }
            Body::Stream { write, chunked: false } => {
                let mut counted = Counted { out: &mut push, sent: 0 };
                write(&mut counted)?;
                Ok(counted.sent)
            }
        }
    }
}

/// An HTTP date: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(time: SystemTime) -> String {
    use chrono::{Datelike, Timelike};
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // Written out, not through a format string parsed on every answer.
    let t = DateTime::<Utc>::from(time);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday().num_days_from_monday() as usize],
        t.day(),
        MONTHS[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `GET`/`HEAD` of a file: `get` from the command layer, then the headers,
/// conditions and range. A folder named without its `/` is redirected to it.
pub fn file(head: &Head, caller: Caller<'_, '_>, path: &str) -> Response {
    let (mut download, name) = match cmd::apply(Request::Get(path.to_string()), caller) {
        Outcome::File(reply) => (reply.download, reply.name),
        Outcome::Refused(refusal) => {
            // A folder: its page lives at its name with a `/`.
            if let Outcome::Listing(_) = cmd::apply(Request::List(path.to_string()), caller) {
                let location = format!("/{}/", super::page::href(path));
                return Response::error(301, "a folder", true).header("Location", location);
            }
            return Response::refused(&refusal);
        }
        _ => return Response::error(500, "unexpected reply", true),
    };
    let size = download.len;
    let etag = format!("\"{}\"", download.digest);
    let modified = download.modified.map(http_date);
    let content_type = content_type(&name);
    let with_validators = |mut r: Response| {
        r = r.header("ETag", etag.clone()).header("Accept-Ranges", "bytes");
        if let Some(m) = &modified {
            r = r.header("Last-Modified", m.clone());
        }
        r
    };
    if not_modified(head, &etag, download.modified) {
        return with_validators(Response::bytes(304, &content_type, Vec::new()));
    }
    let range = head.header("range").filter(|_| {
        // If-Range: the range holds only for the same file.
        head.header("if-range").is_none_or(|v| v == etag || modified.as_deref() == Some(v))
    });
    let (status, start, len) = match range.map(|r| one_range(r, size)) {
        None | Some(RangeAsked::Whole) => (200, 0, size),
        Some(RangeAsked::Part(start, end)) => (206, start, end - start + 1),
        Some(RangeAsked::Unsatisfiable) => {
            return with_validators(Response::error(416, "range not satisfiable", true))
                .header("Content-Range", format!("bytes */{size}"));
        }
    };
    if start > 0 {
        if let Err(e) = download.file.seek(SeekFrom::Start(start)) {
            return Response::error(500, &format!("cannot read '{name}': {e}"), false);
        }
    }
    // A small file goes out with its head in one write; a bigger one by sendfile.
    let body = if len <= SMALL_FILE && head.method != "HEAD" {
        let mut bytes = vec![0; len as usize];
        if let Err(e) = std::io::Read::read_exact(&mut download.file, &mut bytes) {
            return Response::error(500, &format!("cannot read '{name}': {e}"), false);
        }
        Body::Bytes(bytes)
    } else {
        Body::File { file: download.file, len, name }
    };
    let mut response = with_validators(Response {
        status,
        headers: vec![("Content-Type".into(), content_type)],
        body,
        keep: true,
        page: false,
    });
    if status == 206 {
        response = response.header("Content-Range", format!("bytes {start}-{}/{size}", start + len - 1));
    }
    response
}

/// Files up to this size are read and sent with their head in one write.
const SMALL_FILE: u64 = 64 * 1024;

/// `If-None-Match` (preferred) or `If-Modified-Since` says the client's copy is current.
fn not_modified(head: &Head, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(tags) = head.header("if-none-match") {
        return tags.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag);
    }
    let since = head.header("if-modified-since").and_then(|v| DateTime::parse_from_rfc2822(v).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => DateTime::<Utc>::from(modified).timestamp() <= since.timestamp(),
        _ => false,
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    /// Not one range this side serves (several, or not parsable): the whole file.
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Nothing of the file (starts past its end): `416`.
    Unsatisfiable,
}

fn one_range(header: &str, size: u64) -> RangeAsked {
    let Ok(parsed) = http_range_header::parse_range_header(header) else {
        // A suffix longer than the file is the whole file (RFC 9110 14.1.3).
        return match header.strip_prefix("bytes=-").and_then(|n| n.trim().parse::<u64>().ok()) {
            Some(n) if n > 0 && size > 0 => RangeAsked::Part(0, size - 1),
            _ => RangeAsked::Whole,
        };
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => RangeAsked::Part(*ranges[0].start(), *ranges[0].end()),
        Ok(_) => RangeAsked::Whole,
        Err(_) => match header.strip_prefix("bytes=-").and_then(|n| n.trim().parse::<u64>().ok()) {
            Some(n) if n > 0 && size > 0 => RangeAsked::Part(0, size - 1),
            _ => RangeAsked::Unsatisfiable,
        },
    }
}

/// A file's `Content-Type` by its name; text in UTF-8 (as a browser
/// should read it: names and files here are UTF-8), the rest as guessed.
pub fn content_type(name: &str) -> String {
    let guessed = mime_guess::from_path(name).first_or_octet_stream();
    if guessed.type_() == mime_guess::mime::TEXT && guessed.get_param("charset").is_none() {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_rfc_9110s_imf_fixdate() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(super::http_date(time), "Sun, 06 Nov 1994 08:49:37 GMT");
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_428_800);
        assert_eq!(super::http_date(time), "Sat, 05 Dec 2026 00:00:00 GMT");
    }

    #[test]
    fn text_is_served_as_utf_8() {
        assert_eq!(super::content_type("notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(super::content_type("page.html"), "text/html; charset=utf-8");
        assert_eq!(super::content_type("photo.jpg"), "image/jpeg");
        assert_eq!(super::content_type("no-extension"), "application/octet-stream");
    }

    use super::*;

    #[test]
    fn ranges_first_middle_suffix_and_past_the_end() {
        assert_eq!(one_range("bytes=0-0", 100), RangeAsked::Part(0, 0));
        assert_eq!(one_range("bytes=10-19", 100), RangeAsked::Part(10, 19));
        assert_eq!(one_range("bytes=90-", 100), RangeAsked::Part(90, 99));
        assert_eq!(one_range("bytes=-10", 100), RangeAsked::Part(90, 99));
        assert_eq!(one_range("bytes=-500", 100), RangeAsked::Part(0, 99));
        assert_eq!(one_range("bytes=95-200", 100), RangeAsked::Part(95, 99));
        assert_eq!(one_range("bytes=100-", 100), RangeAsked::Unsatisfiable);
        assert_eq!(one_range("bytes=0-1,5-6", 100), RangeAsked::Whole);
        assert_eq!(one_range("pages=1-2", 100), RangeAsked::Whole);
    }

    #[test]
    fn dates_are_http_dates() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
