//! The caps every door admits against: a total (`--max-clients`,
//! `--http-max-connections`, `--tftp-max-transfers`, `--max-startups`), as a
//! channel holding one token per slot, and each address's share of it
//! (`--max-per-ip` and the like), as a count per address; [`Caps`] holds
//! both, behind the [`Cap`] seam a cap shared by several instances will
//! plug into.
//!
//! Taking a token is atomic (`try_recv`), so two connections can never both
//! take the last slot, and the token comes back in [`Slot`]'s `Drop`, so a
//! session frees its slot on every path out, a panic included. An address's
//! count is taken and given back the same way, under one lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

/// The pool of session slots.
pub struct Slots {
    give_back: Sender<()>,
    free: Receiver<()>,
    capacity: usize,
}

/// A taken slot; dropping it frees the slot (and its address's share).
pub struct Slot {
    give_back: Sender<()>,
    address: Option<AddressSlot>,
}

impl Slots {
    /// `capacity` free slots.
    pub fn new(capacity: usize) -> Slots {
        let (give_back, free) = bounded(capacity);
        for _ in 0..capacity {
            give_back.send(()).expect("the channel has room for every token");
        }
        Slots { give_back, free, capacity }
    }

    /// Takes a slot if one is free, without waiting.
    pub fn try_acquire(&self) -> Option<Slot> {
        self.free.try_recv().ok().map(|()| Slot { give_back: self.give_back.clone(), address: None })
    }

    /// Waits until every slot is free (every session ended) or `deadline`
    /// passes. Returns true when all are free. Slots taken here are given back.
    pub fn wait_all_free(&self, deadline: Instant) -> bool {
        let mut held = Vec::with_capacity(self.capacity);
        while held.len() < self.capacity {
            match self.free.recv_deadline(deadline) {
                Ok(()) => held.push(Slot { give_back: self.give_back.clone(), address: None }),
                Err(_) => return false,
            }
        }
        true
    }
}

impl Slot {
    /// The same slot, also holding its address's share until it is dropped.
    pub fn with_address(mut self, address: AddressSlot) -> Slot {
        self.address = Some(address);
        self
    }
}

/// A cap on what a door admits: a total and each address's share of it.
/// [`Caps`] keeps it in this process; one kept in an external store (so
/// that several instances of the server share one cap) implements this too,
/// and no door or command changes.
pub trait Cap: Send + Sync {
    /// A place for a connection from `ip`, if both the total and the
    /// address's share allow, without waiting.
    ///
    /// # Errors
    /// Which cap is reached.
    fn try_acquire(&self, ip: IpAddr) -> Result<Place, Over>;

    /// Waits until no place taken here is held, or `deadline` passes; true
    /// when none is.
    fn wait_all_free(&self, deadline: Instant) -> bool;
}

/// A place held under a [`Cap`]; dropping it gives it back, on every path
/// out, a panic included.
pub struct Place(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Place {
    /// A place held for as long as `guard` lives (its `Drop` gives it back).
    pub fn new(guard: impl Send + Sync + 'static) -> Place {
        Place(Box::new(guard))
    }
}

/// A total cap and a per-address cap together, in this process: what one
/// door (or stage) admits connections against.
pub struct Caps {
    slots: Slots,
    per_address: PerAddress,
}

/// Why [`Cap::try_acquire`] said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Every place is taken.
    Full,
    /// The address holds its share already (the limit).
    PerAddress(usize),
    /// The cap is kept elsewhere (a cluster's store), cannot be reached,
    /// and admissions are not to go on without it (`--cluster-strict`).
    Unavailable,
}

impl Over {
    /// What a connection from `addr` refused for this is told: `Server is
    /// full`, or its address's limit.
    pub fn message(self, addr: std::net::SocketAddr) -> String {
        match self {
            Over::Full => "Server is full".into(),
            Over::PerAddress(limit) => {
                format!("too many connections from {} (at most {limit} per address)", addr.ip().to_canonical())
            }
            Over::Unavailable => "the cluster's shared state cannot be reached; try again shortly".into(),
        }
    }
}

impl Caps {
    /// At most `capacity` at once, and `per_address` from one address (0: no limit).
    pub fn new(capacity: usize, per_address: usize) -> Caps {
        Caps { slots: Slots::new(capacity), per_address: PerAddress::new(per_address) }
    }
}

impl Cap for Caps {
    fn try_acquire(&self, ip: IpAddr) -> Result<Place, Over> {
        let slot = self.slots.try_acquire().ok_or(Over::Full)?;
        let address = self.per_address.try_acquire(ip).ok_or(Over::PerAddress(self.per_address.limit()))?;
        Ok(Place::new(slot.with_address(address)))
    }

    fn wait_all_free(&self, deadline: Instant) -> bool {
        self.slots.wait_all_free(deadline)
    }
}

/// How many sessions each address holds, against a limit per address.
pub struct PerAddress {
    limit: usize,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One session's share of its address's limit; dropping it gives it back.
pub struct AddressSlot {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerAddress {
    /// At most `limit` sessions per address; 0 is no limit.
    pub fn new(limit: usize) -> PerAddress {
        PerAddress { limit, held: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// The limit, 0 for none.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes a share for `ip` if it holds fewer than the limit (always, without
    /// a limit). An IPv4 address seen through an IPv6 socket counts as itself.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<AddressSlot> {
        let ip = ip.to_canonical();
        let mut held = self.held.lock();
        let count = held.entry(ip).or_insert(0);
        if self.limit > 0 && *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot { held: Arc::clone(&self.held), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock();
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Cannot fail: the Slots that made this token holds the receiver and
        // the channel has room for every token.
        let _ = self.give_back.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cap_is_hit_and_a_dropped_slot_is_free_at_once() {
        let slots = Slots::new(2);
        let a = slots.try_acquire().expect("first");
        let _b = slots.try_acquire().expect("second");
        assert!(slots.try_acquire().is_none(), "third must be refused");
        drop(a);
        assert!(slots.try_acquire().is_some(), "freed slot is reusable");
    }

    #[test]
    fn a_panicking_holder_frees_its_slot() {
        let slots = std::sync::Arc::new(Slots::new(1));
        let slot = slots.try_acquire().unwrap();
        let result = std::thread::spawn(move || {
            let _slot = slot;
            panic!("session bug");
        })
        .join();
        assert!(result.is_err());
        assert!(slots.try_acquire().is_some());
    }

    #[test]
    fn an_address_gets_its_share_and_no_more() {
        let per = PerAddress::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let first = per.try_acquire(a).expect("first");
        let _second = per.try_acquire(mapped).expect("second, the same address through IPv6");
        assert!(per.try_acquire(a).is_none(), "third from one address");
        assert!(per.try_acquire("10.0.0.2".parse().unwrap()).is_some(), "others unaffected");
        drop(first);
        assert!(per.try_acquire(a).is_some(), "given back on drop");
        let unlimited = PerAddress::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.try_acquire(a).unwrap()).collect();
        drop(held);
        assert!(unlimited.held.lock().is_empty(), "counts of zero are forgotten");
    }

    #[test]
    fn caps_say_which_limit_is_hit() {
        let caps = Caps::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let _one = caps.try_acquire(a).unwrap();
        let two = caps.try_acquire(a).unwrap();
        assert_eq!(caps.try_acquire(a).err(), Some(Over::PerAddress(2)));
        let _three = caps.try_acquire(b).unwrap();
        assert_eq!(caps.try_acquire(b).err(), Some(Over::Full));
        drop(two);
        assert!(caps.try_acquire(a).is_ok(), "the slot and the address's share both came back");
    }

    #[test]
    fn waiting_for_all_free_times_out_while_one_is_held() {
        let slots = Slots::new(2);
        let held = slots.try_acquire().unwrap();
        assert!(!slots.wait_all_free(Instant::now() + Duration::from_millis(20)));
        drop(held);
        assert!(slots.wait_all_free(Instant::now() + Duration::from_secs(5)));
        assert!(slots.try_acquire().is_some(), "slots taken while waiting are given back");
    }
}
