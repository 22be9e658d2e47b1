//! [`SessionCap`]: `--max-clients` and `--max-per-ip` across every
//! instance, as places in Redis taken by one script (so two instances can
//! never both take the last one) and renewed by the beat; a crashed
//! instance's places expire. While Redis cannot be reached, a local share.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::store::Taken;
use super::Cluster;
use crate::slots::{Cap, Over, Place};

/// The session cap of a cluster.
pub struct SessionCap {
    cluster: Arc<Cluster>,
    max: usize,
    per_ip: usize,
}

/// A place held; dropping it gives it back, here and in Redis.
struct HeldPlace {
    cluster: Arc<Cluster>,
    n: u64,
    ip: IpAddr,
}

impl SessionCap {
    /// `max` sessions across the cluster, `per_ip` (0: no limit) from one address.
    pub fn new(cluster: Arc<Cluster>, max: usize, per_ip: usize) -> SessionCap {
        SessionCap { cluster, max, per_ip }
    }

    /// The local share of the cap while Redis is away: `ceil(max / instances)`,
    /// and the address's share as ever, counted among this instance's places.
    fn local(&self, ip: IpAddr, n: u64) -> Result<(), Over> {
        let instances = self.cluster.instances.load(Ordering::SeqCst).max(1);
        let mut places = self.cluster.held.places.lock();
        if places.len() >= self.max.div_ceil(instances) {
            return Err(Over::Full);
        }
        if self.per_ip > 0 && places.values().filter(|held| **held == ip).count() >= self.per_ip {
            return Err(Over::PerAddress(self.per_ip));
        }
        places.insert(n, ip);
        Ok(())
    }
}

impl Cap for SessionCap {
    fn try_acquire(&self, ip: IpAddr) -> Result<Place, Over> {
        let (cluster, ip) = (&self.cluster, ip.to_canonical());
        let n = cluster.next_place.fetch_add(1, Ordering::Relaxed);
        let member = cluster.member(n);
        let expiry = cluster.settings.expiry;
        match cluster.call(|store| store.acquire(ip, &member, self.max, self.per_ip, expiry)) {
            Some(Taken::Yes) => {
                cluster.held.places.lock().insert(n, ip);
            }
            Some(Taken::Full) => return Err(Over::Full),
            Some(Taken::AddressFull) => return Err(Over::PerAddress(self.per_ip)),
            None if cluster.settings.strict => return Err(Over::Unavailable),
            None => self.local(ip, n)?,
        }
        Ok(Place::new(HeldPlace { cluster: Arc::clone(cluster), n, ip }))
    }

    fn wait_all_free(&self, deadline: Instant) -> bool {
        let held = &self.cluster.held;
        let mut places = held.places.lock();
        while !places.is_empty() {
            if held.emptied.wait_until(&mut places, deadline).timed_out() {
                return places.is_empty();
            }
        }
        true
    }
}

impl Drop for HeldPlace {
    fn drop(&mut self) {
        let held = &self.cluster.held;
        let empty = {
            let mut places = held.places.lock();
            places.remove(&self.n);
            places.is_empty()
        };
        if empty {
            held.emptied.notify_all();
        }
        let member = self.cluster.member(self.n);
        self.cluster.call(|store| store.release(self.ip, &member));
    }
}
