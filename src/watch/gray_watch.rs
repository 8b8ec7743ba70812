//! The watch stream as a gray-release reader sees it (`store/gray.rs`): a client named
//! `gray:<label>` reads the candidate staged for its label instead of the key, so its watch
//! stream must tell it when that view changes, and only then.
//!
//! **GrayWatchFollowsTheView.** For such a reader, each change the stream holds is mapped to
//! what it did to the reader's view of `<key>`, from the store's history at that revision:
//! - the candidate `__gray__/<label>/<key>` written (a stage, a new candidate): an entry for
//!   `<key>` with the candidate as `value` (`type` `set`), `prev` what the reader saw before;
//! - the candidate deleted without `<key>` changing in the same revision (an abort, or the
//!   candidate expiring): an entry for `<key>` with the value everyone reads (`set`), or a
//!   `del` when `<key>` does not exist;
//! - the candidate deleted by its promote (`<key>` written in the same revision): nothing, as
//!   `<key>`'s own entry of that revision says it (the same bytes; its `prev` is then the
//!   candidate, what the reader had been reading);
//! - a change to `<key>` while a candidate is staged for the label: nothing (the reader still
//!   reads the candidate);
//! - every other change: as for any reader (other labels' candidate keys included).
//!
//! An entry keeps the ID of the change it stands for, so IDs stay ordered and unique and a
//! reader resumes from them as from any other.

use bytes::Bytes;

use crate::store::{gray_key, Event, EventKind, KeyValue, Revision, Store};

/// The entry of the change of `key` at `revision` as the clients of `label` see it, for a
/// stream watching `prefix` (GrayWatchFollowsTheView); `None` when it shows them nothing.
pub fn view_event(
    store: &Store,
    label: &[u8],
    prefix: &[u8],
    revision: Revision,
    key: &Bytes,
) -> Option<Event> {
    let own = gray_key(label, b"");
    if let Some(real) = key.strip_prefix(&own[..]) {
        if !real.starts_with(prefix) {
            return None;
        }
        let real = Bytes::copy_from_slice(real);
        let change = store.event_at(key, revision)?;
        let prev = seen_before(store, label, &real, revision.main);
        return match change.kind {
            EventKind::Put => Some(Event {
                kind: EventKind::Put,
                revision,
                kv: KeyValue {
                    key: real,
                    ..change.kv
                },
                prev,
            }),
            EventKind::Delete | EventKind::Expired => {
                let now = at(store, &real, revision.main);
                if now
                    .as_ref()
                    .is_some_and(|kv| kv.mod_revision == revision.main)
                {
                    // The promote: the key's own entry of this revision carries the value.
                    return None;
                }
                Some(match now {
                    Some(kv) => Event {
                        kind: EventKind::Put,
                        revision,
                        kv,
                        prev,
                    },
                    None => Event::tombstone(EventKind::Delete, real, revision, prev),
                })
            }
        };
    }
    if !key.starts_with(prefix) {
        return None;
    }
    // A candidate staged for this label after this revision hides the key's change.
    let candidate = gray_key(label, key);
    if at(store, &candidate, revision.main).is_some() {
        return None;
    }
    let mut event = store.event_at(key, revision)?;
    // After a promote the reader had been reading the candidate: that is what it replaced.
    if let Some(staged) = revision
        .main
        .checked_sub(1)
        .and_then(|before| at(store, &candidate, before))
    {
        event.prev = Some(KeyValue {
            key: key.clone(),
            ..staged
        });
    }
    Some(event)
}

/// `key` as of revision `main` (`None`: absent, or compacted away, which the cursor's own
/// Reliable check reports).
fn at(store: &Store, key: &[u8], main: u64) -> Option<KeyValue> {
    store.get_at(key, main).ok().flatten()
}

/// What a client of `label` read for `key` just before revision `main`.
fn seen_before(store: &Store, label: &[u8], key: &Bytes, main: u64) -> Option<KeyValue> {
    let before = main.checked_sub(1)?;
    at(store, &gray_key(label, key), before)
        .map(|kv| KeyValue {
            key: key.clone(),
            ..kv
        })
        .or_else(|| at(store, key, before))
}
