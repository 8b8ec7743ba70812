//! `Deadlines`: the expiry state, each live key's deadline (absolute unix milliseconds), and the
//! same deadlines in time order for the leader's expiry timer.
//!
//! This file owns the table and its order. It reads no clock: deadlines arrive stamped in the
//! entries (DeterministicApply), and whether one has passed is decided against the `now_ms`
//! an entry carries. It does not decide which puts keep or clear a deadline (`strings.rs`,
//! `expiry.rs` do).
//!
//! Invariants:
//! - **DeadlineLive.** Only a live key has a deadline: every delete and expiry removes it
//!   (checked on snapshot load).
//! - **DeadlineOrder.** `by_deadline` holds `(deadline, key)` for exactly the entries of
//!   `by_key`, and `sum` the sum of their deadlines. Both are derived state: not serialised,
//!   rebuilt by [`Deadlines::restore`].

use bytes::Bytes;
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::kv::Keyspace;

/// Every live key's deadline, by key and in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Deadlines {
    /// Key -> deadline in unix ms. An ordered map for a deterministic snapshot encoding; a
    /// persistent one so the store clones in O(1) (CheapClone, `kv.rs`).
    #[serde(deserialize_with = "super::cautious::ord_map")]
    by_key: OrdMap<Bytes, i64>,
    /// The same entries by deadline (DeadlineOrder): the leader's timer reads the earliest
    /// without scanning every key.
    #[serde(skip)]
    by_deadline: OrdSet<(i64, Bytes)>,
    /// The sum of every deadline (DeadlineOrder), for INFO's mean time to live in O(1).
    #[serde(skip)]
    sum: i128,
}

impl Deadlines {
    /// Returns `key`'s deadline, if it has one.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.by_key.get(key).copied()
    }

    /// Gives `key` the deadline `at`, replacing any it had.
    pub fn set(&mut self, key: &Bytes, at: i64) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_deadline.remove(&(old, key.clone()));
            self.sum -= i128::from(old);
        }
        self.by_deadline.insert((at, key.clone()));
        self.sum += i128::from(at);
    }

    /// Removes `key`'s deadline; returns whether it had one.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.by_key.remove_with_key(key) {
            Some((key, old)) => {
                self.by_deadline.remove(&(old, key));
                self.sum -= i128::from(old);
                true
            }
            None => false,
        }
    }

    /// Returns the earliest deadline.
    pub fn first(&self) -> Option<i64> {
        self.by_deadline.get_min().map(|(at, _)| *at)
    }

    /// Returns up to `limit` keys whose deadline is at or before `now_ms`, earliest first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<Bytes> {
        self.by_deadline
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Returns how many keys have a deadline.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Returns the mean of the keys' remaining times to live at `now_ms`, in ms (0 with no
    /// deadline; a deadline already passed counts as 0 left, as the key is about to expire).
    pub fn mean_ttl(&self, now_ms: i64) -> i64 {
        let n = self.by_key.len() as i128;
        if n == 0 {
            return 0;
        }
        let mean = self.sum / n - i128::from(now_ms);
        mean.clamp(0, i128::from(i64::MAX)) as i64
    }

    /// Checks a table loaded from a snapshot against the keyspace (DeadlineLive) and rebuilds
    /// the time order (DeadlineOrder).
    pub fn restore(&mut self, keyspace: &Keyspace) -> Result<(), String> {
        if let Some(key) = self.by_key.keys().find(|key| !keyspace.is_live(key)) {
            return Err(format!(
                "key {:?} has a deadline but is not live",
                String::from_utf8_lossy(key)
            ));
        }
        self.by_deadline = self
            .by_key
            .iter()
            .map(|(key, at)| (*at, key.clone()))
            .collect();
        self.sum = self.by_key.values().map(|at| i128::from(*at)).sum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_every_change() {
        let mut d = Deadlines::default();
        let (a, b, c) = (Bytes::from("a"), Bytes::from("b"), Bytes::from("c"));
        d.set(&a, 30);
        d.set(&b, 10);
        d.set(&c, 20);
        assert_eq!(d.first(), Some(10));
        assert_eq!(d.due(20, 10), vec![b.clone(), c.clone()]);
        assert_eq!(d.due(20, 1), vec![b.clone()]);
        assert_eq!(d.due(9, 10), Vec::<Bytes>::new());
        d.set(&b, 40);
        assert_eq!((d.first(), d.get(b"b")), (Some(20), Some(40)));
        assert!(d.remove(b"c"));
        assert!(!d.remove(b"c"));
        assert_eq!(d.due(i64::MAX, 10), vec![a.clone(), b.clone()]);
        assert_eq!((d.len(), d.by_deadline.len()), (2, 2));
        // a at 30, b at 40: a mean deadline of 35.
        assert_eq!((d.mean_ttl(25), d.mean_ttl(35), d.mean_ttl(99)), (10, 0, 0));
        assert_eq!(d.sum, 70);
        d.remove(b"a");
        d.remove(b"b");
        assert_eq!((d.sum, d.mean_ttl(0)), (0, 0));
    }
}
