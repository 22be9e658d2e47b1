//! The server's state as data: who is connected, what each is doing, who
//! left recently. One value, two forms: [`Status::encode`] / [`Status::parse`]
//! are the `info` reply's body, one record per line in `key=value` fields, for
//! programs (`file-client` builds its table and its JSON from it);
//! [`Status::render`] is the text a person reads, the `status` reply's body.
//!
//! ```text
//! server uptime=31 clients=2 max=3
//! client name=alice you=yes addr=127.0.0.1:45762 connected=2026-11-21T10:14:19Z idle=0 doing=command command=status
//! client name=bob addr=127.0.0.1:45770 connected=2026-11-21T10:14:25Z idle=3 doing=get file=big%20file.iso size=1000 done=410
//! left name=Client01 addr=127.0.0.1:56104 at=2026-11-21T10:14:09Z
//! ```
//!
//! Values are percent-encoded ([`encode_value`]). A reader ignores record
//! kinds and keys it does not know, so fields can be added later.

use std::fmt::Write as _;
use std::time::Duration;

use crate::text::{decode_value, encode_value, human_duration};

/// What a session is doing right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Activity {
    /// Waiting for a command.
    #[default]
    Idle,
    /// Running a command: its summary (`list docs`).
    Command(String),
    /// Sending a file to the client.
    Get {
        /// The file's name in the share.
        file: String,
        /// Bytes to send.
        size: u64,
        /// Bytes sent so far.
        done: u64,
    },
    /// Receiving an upload.
    Put {
        /// The name it will have.
        file: String,
        /// Bytes announced.
        size: u64,
        /// Bytes received so far.
        done: u64,
    },
}

impl Activity {
    /// The same as JSON fields for programs: `operation` (`idle`, `command`,
    /// `get`, `put`), and `command`, or `file`, `size` and `done` (bytes).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Activity::Idle => json!({ "operation": "idle" }),
            Activity::Command(summary) => json!({ "operation": "command", "command": summary }),
            Activity::Get { file, size, done } => {
                json!({ "operation": "get", "file": file, "size": size, "done": done })
            }
            Activity::Put { file, size, done } => {
                json!({ "operation": "put", "file": file, "size": size, "done": done })
            }
        }
    }

    /// `idle`, `list docs`, `get big.iso 41%`: as `status` shows it.
    pub fn describe(&self) -> String {
        let percent =
            |done: u64, size: u64| (u128::from(done.min(size)) * 100).checked_div(u128::from(size)).unwrap_or(100);
        match self {
            Activity::Idle => "idle".to_string(),
            Activity::Command(summary) => summary.clone(),
            Activity::Get { file, size, done } => format!("get {file} {}%", percent(*done, *size)),
            Activity::Put { file, size, done } => format!("put {file} {}%", percent(*done, *size)),
        }
    }

    fn encode(&self, out: &mut String) {
        let _ = match self {
            Activity::Idle => write!(out, " doing=idle"),
            Activity::Command(summary) => write!(out, " doing=command command={}", encode_value(summary)),
            Activity::Get { file, size, done } => {
                write!(out, " doing=get file={} size={size} done={done}", encode_value(file))
            }
            Activity::Put { file, size, done } => {
                write!(out, " doing=put file={} size={size} done={done}", encode_value(file))
            }
        };
    }

    fn parse(record: &Record) -> Result<Activity, StatusError> {
        let transfer = || -> Result<(String, u64, u64), StatusError> {
            Ok((record.text("file")?, record.number("size")?, record.number("done")?))
        };
        Ok(match record.text("doing")?.as_str() {
            "command" => Activity::Command(record.text("command")?),
            "get" => transfer().map(|(file, size, done)| Activity::Get { file, size, done })?,
            "put" => transfer().map(|(file, size, done)| Activity::Put { file, size, done })?,
            // `idle`, or something a newer server does: nothing to show.
            _ => Activity::Idle,
        })
    }
}

/// One connected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// Its display name.
    pub name: String,
    /// True for the client that asked.
    pub you: bool,
    /// Its address, `IP:PORT`.
    pub addr: String,
    /// When it was admitted, RFC 3339.
    pub connected_at: String,
    /// Seconds since its last request or transfer progress.
    pub idle_secs: u64,
    /// What it is doing.
    pub activity: Activity,
    /// The instance it is connected to, when several share one cluster.
    pub instance: Option<String>,
}

/// A client that left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// Its name when it left.
    pub name: String,
    /// Its address.
    pub addr: String,
    /// When it left, RFC 3339.
    pub left_at: String,
    /// The instance it left, when several share one cluster.
    pub instance: Option<String>,
}

/// Everything `status` and `info` report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Clients connected now.
    pub clients: u64,
    /// The cap on clients.
    pub max_clients: u64,
    /// The connected clients, oldest first.
    pub sessions: Vec<SessionStatus>,
    /// The last departures, most recent first.
    pub departed: Vec<Departure>,
    /// Web visitors' connections (`--http`), oldest first: not counted in
    /// `clients`; `name` is the account logged in, else `web`.
    pub web: Vec<SessionStatus>,
    /// TFTP transfers (`--tftp`), oldest first: not counted in `clients`.
    pub tftp: Vec<SessionStatus>,
}

/// An `info` body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// A record lacks a field it must have, or the field's value is not valid.
    #[error("status record '{record}' has no valid '{key}' field")]
    BadField {
        /// The record's kind.
        record: String,
        /// The field.
        key: &'static str,
    },
    /// There is no `server` record.
    #[error("status has no 'server' record")]
    NoServer,
}

/// One line of an `info` body: its kind and fields.
struct Record<'a> {
    kind: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Record<'a> {
    fn parse(line: &'a str) -> Option<Record<'a>> {
        let mut words = line.split(' ').filter(|w| !w.is_empty());
        let kind = words.next()?;
        Some(Record { kind, fields: words.filter_map(|w| w.split_once('=')).collect() })
    }

    fn raw(&self, key: &'static str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn bad(&self, key: &'static str) -> StatusError {
        StatusError::BadField { record: crate::text::escape(self.kind).into_owned(), key }
    }

    fn text(&self, key: &'static str) -> Result<String, StatusError> {
        self.raw(key).and_then(decode_value).ok_or_else(|| self.bad(key))
    }

    fn number(&self, key: &'static str) -> Result<u64, StatusError> {
        self.raw(key).and_then(|v| v.parse().ok()).ok_or_else(|| self.bad(key))
    }
}

impl Status {
    /// The `info` body: one record per line.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "server uptime={} clients={} max={}", self.uptime_secs, self.clients, self.max_clients);
        for (kind, list) in [("client", &self.sessions), ("web", &self.web), ("tftp", &self.tftp)] {
            for s in list {
                let you = if s.you { " you=yes" } else { "" };
                let _ = write!(
                    out,
                    "{kind} name={}{you} addr={} connected={} idle={}",
                    encode_value(&s.name),
                    encode_value(&s.addr),
                    encode_value(&s.connected_at),
                    s.idle_secs
                );
                s.activity.encode(&mut out);
                if let Some(instance) = &s.instance {
                    let _ = write!(out, " instance={}", encode_value(instance));
                }
                out.push('\n');
            }
        }
        for d in &self.departed {
            let (name, addr, at) = (encode_value(&d.name), encode_value(&d.addr), encode_value(&d.left_at));
            let _ = write!(out, "left name={name} addr={addr} at={at}");
            if let Some(instance) = &d.instance {
                let _ = write!(out, " instance={}", encode_value(instance));
            }
            out.push('\n');
        }
        out
    }

    /// Reads an `info` body.
    ///
    /// # Errors
    /// [`StatusError`] when the `server` record is missing or a known record
    /// lacks a field.
    pub fn parse(body: &str) -> Result<Status, StatusError> {
        let mut status = None;
        let (mut sessions, mut departed, mut web, mut tftp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for record in body.lines().filter_map(Record::parse) {
            match record.kind {
                "server" => {
                    status = Some((record.number("uptime")?, record.number("clients")?, record.number("max")?));
                }
                kind @ ("client" | "web" | "tftp") => {
                    let session = SessionStatus {
                        name: record.text("name")?,
                        you: record.raw("you") == Some("yes"),
                        addr: record.text("addr")?,
                        connected_at: record.text("connected")?,
                        idle_secs: record.number("idle")?,
                        activity: Activity::parse(&record)?,
                        instance: record.raw("instance").and_then(decode_value),
                    };
                    match kind {
                        "web" => web.push(session),
                        "tftp" => tftp.push(session),
                        _ => sessions.push(session),
                    }
                }
                "left" => departed.push(Departure {
                    name: record.text("name")?,
                    addr: record.text("addr")?,
                    left_at: record.text("at")?,
                    instance: record.raw("instance").and_then(decode_value),
                }),
                _ => {}
            }
        }
        let (uptime_secs, clients, max_clients) = status.ok_or(StatusError::NoServer)?;
        Ok(Status { uptime_secs, clients, max_clients, sessions, departed, web, tftp })
    }

    /// The `status` text: uptime, `clients N/MAX`, one line per client, then
    /// `recently left`. Fields on a client's line are separated by two spaces.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "uptime {}", human_duration(Duration::from_secs(self.uptime_secs)));
        let _ = writeln!(out, "clients {}/{}", self.clients, self.max_clients);
        for s in &self.sessions {
            let marker = if s.you { " (you)" } else { "" };
            let _ = writeln!(
                out,
                "  {}{marker}  {}{}  connected {}  idle {}  {}",
                s.name,
                s.addr,
                on(&s.instance),
                s.connected_at,
                human_duration(Duration::from_secs(s.idle_secs)),
                s.activity.describe(),
            );
        }
        for (heading, list) in [("web connections", &self.web), ("tftp transfers", &self.tftp)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{heading} {}", list.len());
            for s in list {
                let idle = human_duration(Duration::from_secs(s.idle_secs));
                let (name, addr, on) = (&s.name, &s.addr, on(&s.instance));
                let _ = writeln!(out, "  {name}  {addr}{on}  idle {idle}  {}", s.activity.describe());
            }
        }
        if !self.departed.is_empty() {
            let _ = writeln!(out, "recently left");
            for d in &self.departed {
                let _ = writeln!(out, "  {}  {}{}  left {}", d.name, d.addr, on(&d.instance), d.left_at);
            }
        }
        out
    }
}

/// `  on NAME` after an address, in a cluster.
fn on(instance: &Option<String>) -> String {
    instance.as_ref().map_or_else(String::new, |name| format!("  on {name}"))
}

impl Status {
    /// The status as a JSON object: stable field names, sizes in bytes,
    /// times in RFC 3339; `activity` reads as in the table (`get big.iso
    /// 41%`). What `file-client status --json` prints and the web side's
    /// `/.status.json` serves.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let sessions: Vec<_> = self
            .sessions
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "you": s.you,
                    "address": s.addr,
                    "connected_at": s.connected_at,
                    "idle_secs": s.idle_secs,
                    "activity": s.activity.describe(),
                    "doing": s.activity.to_json(),
                    "instance": s.instance,
                })
            })
            .collect();
        let departed: Vec<_> = self
            .departed
            .iter()
            .map(|d| json!({ "name": d.name, "address": d.addr, "left_at": d.left_at, "instance": d.instance }))
            .collect();
        let visitors = |list: &[SessionStatus]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "address": s.addr,
                        "idle_secs": s.idle_secs,
                        "activity": s.activity.describe(),
                        "doing": s.activity.to_json(),
                        "instance": s.instance,
                    })
                })
                .collect()
        };
        let (web, tftp) = (visitors(&self.web), visitors(&self.tftp));
        json!({
            "uptime_secs": self.uptime_secs,
            "clients": self.clients,
            "max_clients": self.max_clients,
            "sessions": sessions,
            "recently_left": departed,
            "web": web,
            "tftp": tftp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            uptime_secs: 65,
            clients: 2,
            max_clients: 3,
            sessions: vec![
                SessionStatus {
                    name: "alice".into(),
                    you: true,
                    addr: "127.0.0.1:5000".into(),
                    connected_at: "2026-11-21T09:00:00Z".into(),
                    idle_secs: 3723,
                    activity: Activity::Get { file: "big file=1.iso".into(), size: 1000, done: 410 },
                    instance: None,
                },
                SessionStatus {
                    name: "Client02".into(),
                    you: false,
                    addr: "[::1]:5001".into(),
                    connected_at: "2026-11-21T09:01:00+01:00".into(),
                    idle_secs: 7,
                    activity: Activity::Command("list my docs".into()),
                    instance: None,
                },
            ],
            departed: vec![Departure {
                name: "Client01".into(),
                addr: "127.0.0.1:4999".into(),
                left_at: "2026-11-21T08:59:00Z".into(),
                instance: None,
            }],
            web: vec![SessionStatus {
                name: "web".into(),
                you: false,
                addr: "192.168.2.7:51000".into(),
                connected_at: "2026-11-21T09:02:00Z".into(),
                idle_secs: 0,
                activity: Activity::Get { file: "photo.jpg".into(), size: 200, done: 50 },
                instance: None,
            }],
            tftp: vec![SessionStatus {
                name: "tftp".into(),
                you: false,
                addr: "192.168.2.9:1069".into(),
                connected_at: "2026-11-21T09:03:00Z".into(),
                idle_secs: 1,
                activity: Activity::Get { file: "fw.bin".into(), size: 1000, done: 230 },
                instance: None,
            }],
        }
    }

    #[test]
    fn status_round_trips_through_its_fields() {
        let status = sample();
        let body = status.encode();
        assert_eq!(Status::parse(&body), Ok(status));
        let empty = Status { max_clients: 3, ..Status::default() };
        assert_eq!(Status::parse(&empty.encode()), Ok(empty));
        for activity in [Activity::Idle, Activity::Put { file: "x".into(), size: 0, done: 0 }] {
            let mut one = sample();
            one.sessions[0].activity = activity;
            assert_eq!(Status::parse(&one.encode()), Ok(one));
        }
    }

    #[test]
    fn the_encoding_is_one_record_per_line_with_plain_fields() {
        let body = sample().encode();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], "server uptime=65 clients=2 max=3");
        assert!(lines[1].ends_with("doing=get file=big%20file%3D1.iso size=1000 done=410"), "{}", lines[1]);
        assert!(lines[1].contains(" you=yes "), "{}", lines[1]);
        assert!(lines[3].starts_with("web name=web addr=192.168.2.7:51000 "), "{}", lines[3]);
        assert!(lines[4].starts_with("tftp name=tftp addr=192.168.2.9:1069 "), "{}", lines[4]);
        assert_eq!(lines[5], "left name=Client01 addr=127.0.0.1:4999 at=2026-11-21T08:59:00Z");
    }

    #[test]
    fn unknown_records_and_keys_are_ignored_and_missing_ones_are_errors() {
        let body = "server uptime=1 clients=0 max=3 color=blue\nweather sunny=yes\n";
        assert_eq!(Status::parse(body).map(|s| s.max_clients), Ok(3));
        assert_eq!(Status::parse("left name=x\n"), Err(StatusError::BadField { record: "left".into(), key: "addr" }));
        assert_eq!(Status::parse(""), Err(StatusError::NoServer));
        assert!(Status::parse("server uptime=x clients=0 max=3").is_err());
        assert!(Status::parse("server uptime=1 clients=0 max=3\nclient name=%zz").is_err());
    }

    #[test]
    fn the_text_is_what_status_has_always_shown() {
        let text = sample().render();
        assert_eq!(
            text,
            "uptime 1m 05s\nclients 2/3\n  \
             alice (you)  127.0.0.1:5000  connected 2026-11-21T09:00:00Z  idle 1h 02m 03s  get big file=1.iso 41%\n  \
             Client02  [::1]:5001  connected 2026-11-21T09:01:00+01:00  idle 7s  list my docs\n\
             web connections 1\n  web  192.168.2.7:51000  idle 0s  get photo.jpg 25%\n\
             tftp transfers 1\n  tftp  192.168.2.9:1069  idle 1s  get fw.bin 23%\n\
             recently left\n  Client01  127.0.0.1:4999  left 2026-11-21T08:59:00Z\n"
        );
    }

    #[test]
    fn in_a_cluster_each_entry_names_its_instance() {
        let mut status = sample();
        status.sessions[0].instance = Some("b 2".into());
        status.departed[0].instance = Some("a".into());
        let encoded = status.encode();
        assert!(encoded.contains(" instance=b%202\n"), "{encoded}");
        assert_eq!(Status::parse(&encoded).unwrap(), status);
        let text = status.render();
        assert!(text.contains("  on b 2  connected "), "{text}");
        assert_eq!(status.to_json()["sessions"][0]["instance"], "b 2");
        assert!(status.to_json()["sessions"][1]["instance"].is_null());
    }

    #[test]
    fn tftp_transfers_are_their_own_section_and_activity_has_fields() {
        let status = sample();
        let text = status.render();
        assert!(text.contains("\ntftp transfers 1\n  tftp  192.168.2.9:1069  idle 1s  get fw.bin 23%\n"), "{text}");
        assert!(!text.contains("web connections 2"), "{text}");
        let json = status.to_json();
        assert_eq!(
            json["tftp"][0]["doing"],
            serde_json::json!({"operation": "get", "file": "fw.bin", "size": 1000, "done": 230})
        );
        assert_eq!(json["web"][0]["doing"]["operation"], "get");
        assert!(status.encode().contains("\ntftp name=tftp addr=192.168.2.9:1069 "));
    }
}
