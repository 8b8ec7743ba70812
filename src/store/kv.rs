//! `Keyspace`: every key's [`KeyIndex`], in byte order.
//!
//! This file owns the map from key to history and the count of live keys. It does not assign
//! revisions (the caller passes them in, RevisionMonotonic) and knows nothing of clients.
//!
//! Invariants:
//! - **NoEmptyIndex.** Every key in the map has at least one stored version; compaction removes a
//!   key whose versions are all gone.
//! - **LiveCount.** `live` equals the number of keys whose newest version is a put. It is derived
//!   state: not serialised, recomputed by [`Keyspace::restore`].
//! - **DeterministicApply.** A `BTreeMap`, so iteration (compaction, `keys`) is in byte order on
//!   every node.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::key_index::KeyIndex;
use super::{Event, KeyValue, Revision};

/// Every key's history. Reading a key's latest value is one `BTreeMap` lookup, O(log n).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Keyspace {
    keys: BTreeMap<Bytes, KeyIndex>,
    /// Number of live keys (LiveCount); kept so that `len` is O(1).
    #[serde(skip)]
    live: usize,
}

impl Keyspace {
    /// Puts `value` at `key` with `revision` and returns the event.
    pub fn put(&mut self, key: &Bytes, value: &Bytes, revision: Revision) -> Event {
        let index = self.keys.entry(key.clone()).or_default();
        let was_live = index.is_live();
        let event = index.put(key, value, revision);
        if !was_live {
            self.live += 1;
        }
        event
    }

    /// Deletes `key` with `revision` if it is live, and returns the event.
    pub fn delete(&mut self, key: &Bytes, revision: Revision) -> Option<Event> {
        let event = self.keys.get_mut(key.as_ref())?.tombstone(key, revision)?;
        self.live -= 1;
        Some(event)
    }

    /// Returns the latest live value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        let (key, index) = self.keys.get_key_value(key)?;
        index.latest(key)
    }

    /// Returns the value of `key` as of main revision `main`.
    pub fn get_at(&self, key: &[u8], main: u64) -> Option<KeyValue> {
        let (key, index) = self.keys.get_key_value(key)?;
        index.at(key, main)
    }

    /// Returns `key`'s stored changes with `from <= main <= to`, oldest first, at most `limit`.
    pub fn history(&self, key: &[u8], from: u64, to: u64, limit: usize) -> Vec<Event> {
        match self.keys.get_key_value(key) {
            Some((key, index)) => index.history(key, from, to, limit),
            None => Vec::new(),
        }
    }

    /// Compacts every key at `at`, dropping keys with nothing left (NoEmptyIndex).
    pub fn compact(&mut self, at: u64) {
        #[cfg(debug_assertions)]
        let live_before = self.live;
        self.keys.retain(|_, index| index.compact(at));
        // Compaction never touches a key's newest version unless it is a tombstone.
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            live_before,
            self.keys.values().filter(|i| i.is_live()).count()
        );
    }

    /// Returns the number of live keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Returns the live keys in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.keys
            .iter()
            .filter(|(_, index)| index.is_live())
            .map(|(key, _)| key)
    }

    /// Checks every key loaded from a snapshot and recomputes the live count (LiveCount).
    pub fn restore(&mut self, current: u64, compact_revision: u64) -> Result<(), String> {
        for (key, index) in &self.keys {
            index
                .validate(current, compact_revision)
                .map_err(|e| format!("key {:?}: {e}", String::from_utf8_lossy(key)))?;
        }
        self.live = self.keys.values().filter(|i| i.is_live()).count();
        Ok(())
    }
}
