//! The cap on concurrent sessions, as a channel holding one token per slot.
//!
//! Taking a token is atomic (`try_recv`), so two connections can never both
//! take the last slot, and the token comes back in [`Slot`]'s `Drop`, so a
//! session frees its slot on every path out, a panic included.

use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};

/// The pool of session slots.
pub struct Slots {
    give_back: Sender<()>,
    free: Receiver<()>,
    capacity: usize,
}

/// A taken slot; dropping it frees the slot.
pub struct Slot {
    give_back: Sender<()>,
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
        self.free.try_recv().ok().map(|()| Slot { give_back: self.give_back.clone() })
    }

    /// Waits until every slot is free (every session ended) or `deadline`
    /// passes. Returns true when all are free. Slots taken here are given back.
    pub fn wait_all_free(&self, deadline: Instant) -> bool {
        let mut held = Vec::with_capacity(self.capacity);
        while held.len() < self.capacity {
            match self.free.recv_deadline(deadline) {
                Ok(()) => held.push(Slot { give_back: self.give_back.clone() }),
                Err(_) => return false,
            }
        }
        true
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
    fn waiting_for_all_free_times_out_while_one_is_held() {
        let slots = Slots::new(2);
        let held = slots.try_acquire().unwrap();
        assert!(!slots.wait_all_free(Instant::now() + Duration::from_millis(20)));
        drop(held);
        assert!(slots.wait_all_free(Instant::now() + Duration::from_secs(5)));
        assert!(slots.try_acquire().is_some(), "slots taken while waiting are given back");
    }
}
