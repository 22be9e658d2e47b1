//! [`ClusterBus`]: a [`Bus`] whose notices go through one Redis channel, so
//! every client of every instance hears them in one order; names claimed in
//! Redis; the other instances' sessions from their snapshots.

use std::sync::Arc;

use common::status::Departure;
use common::text::{decode_value, encode_value};
use common::{Event, Status};

use super::{store, Cluster, Outgoing};
use crate::presence::{Bus, Delivery, Elsewhere, NameTaken, Notice, RECENT_DEPARTURES};

/// The bus of one instance of a cluster.
pub struct ClusterBus {
    cluster: Arc<Cluster>,
}

impl ClusterBus {
    /// The bus of `cluster`'s instance.
    pub fn new(cluster: Arc<Cluster>) -> ClusterBus {
        ClusterBus { cluster }
    }
}

/// An arrival, a departure or a rename: what `status` shows changes.
pub fn changes_status(notice: &Event) -> bool {
    matches!(notice.field("event"), Some("joined" | "left" | "renamed"))
}

/// A notice on the channel: `INSTANCE FROM KEY=VALUE...`, a line end, then its text.
pub fn encode(instance: &str, from: u64, notice: &Event) -> String {
    let mut head = format!("{} {from}", encode_value(instance));
    for (key, value) in &notice.fields {
        head.push_str(&format!(" {}={}", encode_value(key), encode_value(value)));
    }
    format!("{head}\n{}", notice.text)
}

/// Reads what [`encode`] wrote: the instance, the sender, the notice.
pub fn decode(message: &[u8]) -> Option<(String, u64, Notice)> {
    let message = std::str::from_utf8(message).ok()?;
    let (head, text) = message.split_once('\n')?;
    let mut words = head.split(' ');
    let instance = decode_value(words.next()?)?;
    let from = words.next()?.parse().ok()?;
    let fields = words
        .map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((decode_value(key)?, decode_value(value)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((instance, from, Notice::new(Event { text: text.to_string(), fields })))
}

impl Bus for ClusterBus {
    fn publish(&self, from: u64, notice: Notice) -> Delivery {
        if !self.cluster.is_up() {
            return Delivery::Now(notice);
        }
        let changes_status = changes_status(&notice);
        match self.cluster.outbox.send(Outgoing::Notice { from, notice: Notice::clone(&notice), changes_status }) {
            Ok(()) => Delivery::Later,
            Err(_) => Delivery::Now(notice),
        }
    }

    fn claim_name(&self, id: u64, name: &str) -> Result<(), NameTaken> {
        let (key, holder) = (store::name_key(name), self.cluster.holder(id));
        let ttl = self.cluster.settings.expiry.as_millis() as u64;
        let claimed = self.cluster.call(|store| {
            store.run(|c| {
                let set: Option<String> =
                    redis::cmd("SET").arg(&key).arg(&holder).arg("NX").arg("PX").arg(ttl).query(c)?;
                if set.is_some() {
                    return Ok(true);
                }
                let current: Option<String> = redis::cmd("GET").arg(&key).query(c)?;
                Ok(current.as_deref() == Some(holder.as_str()))
            })
        });
        match claimed {
            Some(false) => Err(NameTaken(name.to_string())),
            // Claimed, or Redis is away: names are then this instance's to check alone.
            _ => Ok(()),
        }
    }

    fn release_name(&self, id: u64, name: &str) {
        let (key, holder) = (store::name_key(name), self.cluster.holder(id));
        self.cluster.call(|store| store.delete_if(&key, &holder));
    }

    fn elsewhere(&self) -> Elsewhere {
        self.cluster.others.lock().clone()
    }

    fn sessions_elsewhere(&self) -> usize {
        self.cluster.others.lock().sessions.len()
    }

    fn online(&self, here: usize) -> usize {
        // The places held across the cluster, exact at this moment (the
        // others' snapshots may be a beat old).
        let places =
            self.cluster.call(|store| store.run(|c| redis::cmd("ZCARD").arg(store::SESSIONS).query::<usize>(c)));
        places.unwrap_or_else(|| here + self.sessions_elsewhere())
    }

    fn instance(&self) -> Option<String> {
        Some(self.cluster.instance().to_string())
    }

    fn session_name(&self, id: u64) -> String {
        let counted =
            self.cluster.call(|store| store.run(|c| redis::cmd("INCR").arg(store::NEXT_CLIENT).query::<u64>(c)));
        format!("Client{:02}", counted.unwrap_or(id))
    }

    fn departed(&self, departure: &Departure) {
        let record = Status { departed: vec![departure.clone()], ..Status::default() }.encode();
        self.cluster.call(|store| {
            store.run(|c| {
                redis::pipe()
                    .lpush(store::DEPARTED, record)
                    .ignore()
                    .ltrim(store::DEPARTED, 0, RECENT_DEPARTURES as isize - 1)
                    .ignore()
                    .query::<()>(c)
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_cross_the_channel_whole() {
        let notice = Event::notice("alice: hi = there\nsecond line").with("event", "say").with("name", "a b");
        let message = encode("host:12345", 7, &notice);
        let (instance, from, back) = decode(message.as_bytes()).unwrap();
        assert_eq!((instance.as_str(), from), ("host:12345", 7));
        assert_eq!(*back, notice);
        assert!(changes_status(&Event::notice("x").with("event", "joined")));
        assert!(!changes_status(&notice));
        assert!(decode(b"no line end").is_none());
        assert!(decode(b"a notanumber\ntext").is_none());
    }
}
