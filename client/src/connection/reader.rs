//! The reader thread: owns the socket's read side between replies, parses
//! every message the server sends, prints or queues events (an
//! [`EventSink`]), hands reply headers over, and lends the read side for a
//! body.

use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Event, Header, MAX_HEADER_LEN};
use crossbeam_channel::{Receiver, Sender};

use super::{ReadSide, MAX_EVENT_BODY};
use crate::transport::Transport;

/// Prints an event on the caller's thread.
pub type PrintEvent = Box<dyn FnMut(&Event)>;

/// Prints an event from the reader thread.
pub type PrintEventFromThread = Box<dyn FnMut(&Event) + Send>;

/// Where events go.
pub enum EventSink {
    /// Handed to the caller in order with replies and printed by it: batch
    /// mode, where output must read in the order things happened.
    InBand(PrintEvent),
    /// Printed by the reader thread as soon as they arrive: at a prompt,
    /// where events must show while the user is idle.
    Direct(PrintEventFromThread),
}

impl EventSink {
    /// The same sink, but the first departure notice of `previous` (this
    /// client's name on a connection just closed) is not shown: after a
    /// reconnect, a user should not be told they left. The notice is known
    /// by its fields (`event=left name=...`), not its sentence.
    pub fn skipping_departure_of(self, previous: Option<String>) -> EventSink {
        let Some(name) = previous else { return self };
        let mut pending = Some(name);
        let mut keep = move |event: &Event| -> bool {
            let departure = event.field("event") == Some("left") && event.field("name") == pending.as_deref();
            if departure {
                pending = None;
            }
            !departure
        };
        match self {
            EventSink::InBand(mut print) => EventSink::InBand(Box::new(move |event| {
                if keep(event) {
                    print(event);
                }
            })),
            EventSink::Direct(mut print) => EventSink::Direct(Box::new(move |event| {
                if keep(event) {
                    print(event);
                }
            })),
        }
    }
}

/// What the reader thread passes on.
pub(super) enum Incoming {
    Header(Header),
    /// The read side, lent for the body of the `OK` header just passed on.
    Body(ReadSide),
    Event(Event),
    Closed(String),
}

/// Most bytes of events the client holds for the caller: a server that
/// sends more without a reply in between is cut off.
pub const MAX_QUEUED_EVENTS: u64 = 4 * 1024 * 1024;

/// What the reader thread shares with the [`Connection`].
pub(super) struct Flags {
    pub(super) closing: Arc<AtomicBool>,
    pub(super) ended: Arc<AtomicBool>,
    pub(super) end_reason: Arc<Mutex<Option<String>>>,
    /// To shut the connection down when the reader gives up on it.
    pub(super) socket: Transport,
    pub(super) admitted: Arc<AtomicBool>,
    pub(super) queued_events: Arc<AtomicU64>,
}

/// The reader thread: parses messages until the connection ends, passing
/// each on. Sends `Closed` with the reason as its last word.
pub(super) fn read_messages(
    mut reader: ReadSide,
    tx: &Sender<Incoming>,
    returned: &Receiver<ReadSide>,
    mut direct: Option<PrintEventFromThread>,
    flags: &Flags,
) {
    let reason = loop {
        let header = match read_header_line(&mut reader)
            .and_then(|line| Header::parse(&line).map_err(|e| format!("bad reply from server: {e}")))
        {
            Ok(header) => header,
            Err(reason) => break reason,
        };
        match header {
            Header::Event { len, fields } => {
                if len > MAX_EVENT_BODY {
                    break format!("server sent an event of {len} bytes; limit is {MAX_EVENT_BODY}");
                }
                let mut body = Vec::with_capacity(len as usize);
                if (&mut reader).take(len).read_to_end(&mut body).map_or(true, |n| n as u64 != len) {
                    break "server closed the connection mid-event".into();
                }
                let event = Event { text: String::from_utf8_lossy(&body).into_owned(), fields };
                match &mut direct {
                    Some(print) => print(&event),
                    None => {
                        let queued = flags.queued_events.fetch_add(event.text.len() as u64, Ordering::SeqCst);
                        if queued > MAX_QUEUED_EVENTS {
                            break format!(
                                "the server sent more than {} MiB of events without a reply; disconnecting",
                                MAX_QUEUED_EVENTS >> 20
                            );
                        }
                        if tx.send(Incoming::Event(event)).is_err() {
                            return;
                        }
                    }
                }
            }
            Header::Ok { len, .. } | Header::Data { len } => {
                if tx.send(Incoming::Header(header)).is_err() {
                    return;
                }
                if len > 0 {
                    // The caller reads the body, then gives the read side back.
                    if tx.send(Incoming::Body(reader)).is_err() {
                        return;
                    }
                    let Ok(back) = returned.recv() else { return };
                    reader = back;
                }
            }
            err => {
                if tx.send(Incoming::Header(err)).is_err() {
                    return;
                }
            }
        }
    };
    if let Ok(mut slot) = flags.end_reason.lock() {
        *slot = Some(reason.clone());
    }
    flags.ended.store(true, Ordering::SeqCst);
    // A send under way (an upload) fails at once rather than run on.
    flags.socket.shutdown(std::net::Shutdown::Both);
    if let Some(print) = &mut direct {
        if flags.admitted.load(Ordering::SeqCst) && !flags.closing.load(Ordering::SeqCst) {
            print(&Event::notice(format!("connection closed: {reason}; the next command reconnects")));
        }
    }
    let _ = tx.send(Incoming::Closed(reason));
}

/// One header line, at most [`MAX_HEADER_LEN`] bytes.
fn read_header_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::with_capacity(128);
    let limit = MAX_HEADER_LEN as u64 + 2;
    reader.take(limit).read_until(b'\n', &mut line).map_err(|e| format!("reading reply: {e}"))?;
    if line.is_empty() {
        return Err("server closed the connection".into());
    }
    if line.last() != Some(&b'\n') {
        // A TLS record (an alert: 21, or a handshake: 22, version 3.x): a
        // `--tls` server answering a client that speaks plain text.
        if matches!(line.as_slice(), [21 | 22, 3, ..]) {
            return Err("the server speaks TLS: connect with --tls".into());
        }
        return Err(if line.len() as u64 >= limit {
            "server sent a reply header that is too long".into()
        } else {
            "server closed the connection mid-reply".into()
        });
    }
    String::from_utf8(line).map_err(|_| "server sent a reply header that is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_bounded_and_a_tls_server_is_recognised() {
        let line = |bytes: &[u8]| read_header_line(&mut &bytes[..]);
        assert_eq!(line(b"OK 0 name=Client01\nrest"), Ok("OK 0 name=Client01\n".into()));
        assert_eq!(line(b""), Err("server closed the connection".into()));
        assert_eq!(line(b"OK 12"), Err("server closed the connection mid-reply".into()));
        assert_eq!(line(&[21, 3, 3, 0, 2, 2, 40]), Err("the server speaks TLS: connect with --tls".into()));
        let long = vec![b'x'; MAX_HEADER_LEN + 10];
        assert_eq!(line(&long), Err("server sent a reply header that is too long".into()));
        assert_eq!(line(b"OK \xff\n"), Err("server sent a reply header that is not UTF-8".into()));
    }

    #[test]
    fn after_a_reconnect_only_the_first_departure_of_the_old_name_is_hidden() {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&shown);
        let sink = EventSink::Direct(Box::new(move |e: &Event| into.lock().unwrap().push(e.text.clone())));
        let EventSink::Direct(mut print) = sink.skipping_departure_of(Some("alice".into())) else { panic!() };
        let left = |name: &str| Event::notice(format!("{name} left")).with("event", "left").with("name", name);
        print(&Event::notice("alice left").with("event", "say"));
        print(&left("bob"));
        print(&left("alice"));
        print(&left("alice"));
        assert_eq!(*shown.lock().unwrap(), ["alice left\n", "bob left\n", "alice left\n"]);
    }
}
