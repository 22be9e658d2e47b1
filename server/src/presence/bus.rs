//! The seam between this server's list of sessions and any other instance
//! sharing its clients: where presence notices and chat travel, where a name
//! is claimed, and what the others hold (for `status` and the online count).
//!
//! [`Alone`] is a server on its own: every notice is delivered at once,
//! under the list's lock, which gives every client one order. A bus kept in
//! an external store (several instances behind one balancer) implements
//! [`Bus`] too: it publishes each notice and hands it back to every
//! instance, this one included, through [`super::Presence::deliver`], in the
//! one order the store gives; no door or command changes.

use common::status::{Departure, SessionStatus};

use super::session::Notice;
use super::NameTaken;

/// What becomes of a notice handed to [`Bus::publish`].
#[derive(Debug)]
pub enum Delivery {
    /// Deliver it here now: no other instance is there to order it with.
    Now(Notice),
    /// It comes back through [`super::Presence::deliver`], in the order
    /// every instance sees.
    Later,
}

/// What the other instances hold, for `status` and the online count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elsewhere {
    /// Their sessions that hold a place.
    pub clients: u64,
    /// Their sessions, as `status` lists them.
    pub sessions: Vec<SessionStatus>,
    /// Their web visitors.
    pub web: Vec<SessionStatus>,
    /// Their TFTP transfers.
    pub tftp: Vec<SessionStatus>,
    /// Who left them recently, most recent first.
    pub departed: Vec<Departure>,
}

/// Where this server's notices go beyond its own sessions; see the module
/// documentation.
pub trait Bus: Send + Sync {
    /// Sends `notice`, from local session `from`, to every session of every
    /// instance but the sender.
    fn publish(&self, from: u64, notice: Notice) -> Delivery;

    /// Claims `name` for local session `id` among the other instances'
    /// sessions (the local list has checked its own, ignoring case).
    ///
    /// # Errors
    /// [`NameTaken`] when a session elsewhere has it.
    fn claim_name(&self, id: u64, name: &str) -> Result<(), NameTaken>;

    /// Gives up a name claimed with [`Bus::claim_name`] (renamed or left).
    fn release_name(&self, id: u64, name: &str);

    /// What the other instances hold now.
    fn elsewhere(&self) -> Elsewhere;

    /// How many sessions the other instances hold (without copying them).
    fn sessions_elsewhere(&self) -> usize {
        self.elsewhere().sessions.len()
    }

    /// Sessions online in all, `here` of them on this instance: for the
    /// count presence notices carry.
    fn online(&self, here: usize) -> usize {
        here + self.sessions_elsewhere()
    }

    /// This instance's name in `status`, when there are others.
    fn instance(&self) -> Option<String>;

    /// The name a new session (local number `id`) has until it picks one:
    /// `ClientNN`, unique among every instance's (names of that form are
    /// reserved: nobody can pick one).
    fn session_name(&self, id: u64) -> String;

    /// A session here has left: for the others' `recently left`.
    fn departed(&self, departure: &Departure);
}

/// A server with no other instance: notices are delivered at once, names
/// are checked in the local list only, and nothing is elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Alone;

impl Bus for Alone {
    fn publish(&self, _from: u64, notice: Notice) -> Delivery {
        Delivery::Now(notice)
    }

    fn claim_name(&self, _id: u64, _name: &str) -> Result<(), NameTaken> {
        Ok(())
    }

    fn release_name(&self, _id: u64, _name: &str) {}

    fn elsewhere(&self) -> Elsewhere {
        Elsewhere::default()
    }

    fn instance(&self) -> Option<String> {
        None
    }

    fn session_name(&self, id: u64) -> String {
        format!("Client{id:02}")
    }

    fn departed(&self, _departure: &Departure) {}
}
