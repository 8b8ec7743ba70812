//! What a reader sees: [`KeyValue`] (a key's state at one revision) and [`Event`] (one change).
//!
//! `apply` returns the events of each request (for watchers), and `history` rebuilds them from the
//! stored versions. This file owns only the shapes; it must not compute them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Hash, Revision, Stored};

/// A key's state at one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Bytes,
    /// The string; empty for a hash (see `hash`).
    pub value: Bytes,
    /// Main revision of the put that created the key's current generation.
    pub create_revision: u64,
    /// Main revision of the key's last change.
    pub mod_revision: u64,
    /// Puts since the generation was created: 1 on create, reset by a delete.
    pub version: u64,
    /// The fields when the key holds a hash, `None` for a string. Not encoded (a recorded
    /// response decodes with `None`): the only `KeyValue`s that are encoded are the TTL
    /// family's answers kept in the dedup table, which never look at the value, and leaving it
    /// out keeps their encoding what it was before hashes.
    #[serde(skip)]
    pub hash: Option<Hash>,
}

impl KeyValue {
    /// Returns what the key holds, a string or a hash (an O(1) copy either way).
    pub fn stored(&self) -> Stored {
        match &self.hash {
            Some(fields) => Stored::Hash(fields.clone()),
            None => Stored::String(self.value.clone()),
        }
    }

    /// Returns whether the key holds a hash.
    pub fn is_hash(&self) -> bool {
        self.hash.is_some()
    }
}

/// Whether an [`Event`] wrote a value or a tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
    /// A delete by the leader's expiry ([`Op::ExpireDue`](super::Op::ExpireDue)): a tombstone
    /// like [`EventKind::Delete`], named for watchers (`expired`).
    Expired,
}

/// One change to one key, as produced by `apply` and by `history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// Where the change sits: the request's main revision and its place (`sub`) in it.
    pub revision: Revision,
    /// The key after a put. For a delete or an expiry: the key, an empty value, `mod_revision` = the delete's
    /// main revision, `create_revision` 0 and `version` 0 (etcd's tombstone).
    pub kv: KeyValue,
    /// The live value the change replaced; `None` when the key did not exist before, and in
    /// `history` also when that earlier version has been compacted away.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// Returns the event of a tombstone of `key` at `revision` replacing `prev`; `kind` says
    /// whether a delete or an expiry wrote it.
    pub fn tombstone(
        kind: EventKind,
        key: Bytes,
        revision: Revision,
        prev: Option<KeyValue>,
    ) -> Self {
        Self {
            kind,
            revision,
            kv: KeyValue {
                key,
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: revision.main,
                version: 0,
                hash: None,
            },
            prev,
        }
    }
}
