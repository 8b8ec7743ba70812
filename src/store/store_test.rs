//! Property tests: [`Store`] against a reference model, and deduplication by replay.
//!
//! The model keeps the full keyspace state after every revision and every key's full list of
//! events, and knows nothing of key indexes or compaction internals: what compaction keeps is
//! derived from the rules in the `store` module doc (HistoryWindow). Checks cite the invariants
//! they test.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

/// Number of distinct keys; the last one is only ever deleted, never put.
const KEYS: u8 = 5;

/// Returns key `k`: "", "k", "kk", … (so the empty key and byte order are exercised).
fn key(k: u8) -> Bytes {
    Bytes::from("k".repeat(k as usize))
}

/// An operation before its compaction revision is resolved against the current revision.
#[derive(Clone, Debug)]
enum TestOp {
    Put(u8, u8),
    Delete(Vec<u8>),
    /// Compacts at `pick % (revision + 2)`: covers 0, the current revision and the future.
    Compact(u8),
}

impl TestOp {
    fn to_op(&self, revision: u64) -> Op {
        match self {
            TestOp::Put(k, v) => Op::Put {
                key: key(*k),
                value: Bytes::from(vec![b'v'; *v as usize]),
            },
            TestOp::Delete(keys) => Op::Delete {
                keys: keys.iter().map(|&k| key(k)).collect(),
            },
            TestOp::Compact(pick) => Op::Compact {
                revision: u64::from(*pick) % (revision + 2),
            },
        }
    }
}

fn test_op() -> impl Strategy<Value = TestOp> {
    prop_oneof![
        5 => (0..KEYS - 1, 0..3u8).prop_map(|(k, v)| TestOp::Put(k, v)),
        2 => prop::collection::vec(0..KEYS, 0..4).prop_map(TestOp::Delete),
        1 => any::<u8>().prop_map(TestOp::Compact),
    ]
}

/// The reference: one full state per revision, and every key's events with their true `prev`.
struct Model {
    /// `states[r]` is the keyspace after revision `r`; `states[0]` is empty.
    states: Vec<BTreeMap<Bytes, KeyValue>>,
    events: BTreeMap<Bytes, Vec<Event>>,
    compact_revision: u64,
}

impl Model {
    fn new() -> Self {
        Self {
            states: vec![BTreeMap::new()],
            events: BTreeMap::new(),
            compact_revision: 0,
        }
    }

    fn revision(&self) -> u64 {
        self.states.len() as u64 - 1
    }

    fn latest(&self) -> &BTreeMap<Bytes, KeyValue> {
        self.states.last().unwrap()
    }

    fn apply(&mut self, op: &Op) -> (Response, Vec<Event>) {
        let main = self.revision() + 1;
        let mut state = self.latest().clone();
        let mut events = Vec::new();
        let response = match op {
            Op::Put { key, value } => {
                let prev = state.get(key).cloned();
                let (create_revision, version) = prev
                    .as_ref()
                    .map_or((main, 1), |p| (p.create_revision, p.version + 1));
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision,
                    mod_revision: main,
                    version,
                };
                state.insert(key.clone(), kv.clone());
                let revision = Revision::new(main, 0);
                events.push(Event {
                    kind: EventKind::Put,
                    revision,
                    kv,
                    prev,
                });
                Response::Put { revision: main }
            }
            Op::Delete { keys } => {
                for key in keys {
                    if let Some(prev) = state.remove(key) {
                        let kv = KeyValue {
                            key: key.clone(),
                            value: Bytes::new(),
                            create_revision: 0,
                            mod_revision: main,
                            version: 0,
                        };
                        let revision = Revision::new(main, events.len() as u64);
                        events.push(Event {
                            kind: EventKind::Delete,
                            revision,
                            kv,
                            prev: Some(prev),
                        });
                    }
                }
                let revision = if events.is_empty() { main - 1 } else { main };
                Response::Deleted {
                    deleted: events.len() as u64,
                    revision,
                }
            }
            Op::Compact { revision } => {
                let (c, current) = (self.compact_revision, self.revision());
                if *revision <= c {
                    Response::Error(StoreError::Compacted {
                        requested: *revision,
                        compact_revision: c,
                    })
                } else if *revision > current {
                    Response::Error(StoreError::FutureRevision {
                        requested: *revision,
                        current,
                    })
                } else {
                    self.compact_revision = *revision;
                    Response::Compacted {
                        compact_revision: *revision,
                    }
                }
            }
        };
        if !events.is_empty() {
            // RevisionMonotonic: only a request with changes makes a new state.
            self.states.push(state);
            for e in &events {
                self.events
                    .entry(e.kv.key.clone())
                    .or_default()
                    .push(e.clone());
            }
        }
        (response, events)
    }

    fn get_at(&self, key: &[u8], revision: u64) -> Result<Option<KeyValue>, StoreError> {
        let (c, current) = (self.compact_revision, self.revision());
        if revision == 0 {
            return Ok(self.latest().get(key).cloned());
        }
        if revision < c {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision: c,
            });
        }
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        Ok(self.states[revision as usize].get(key).cloned())
    }

    /// Returns the events compaction keeps (HistoryWindow): all with main >= c, and before them
    /// the newest older one if it is a put and nothing changed the key at c itself. The first
    /// kept event loses its `prev` if the event before it was dropped.
    fn stored(&self, key: &[u8]) -> Vec<Event> {
        let Some(all) = self.events.get(key) else {
            return Vec::new();
        };
        let c = self.compact_revision;
        let first_kept = all
            .iter()
            .position(|e| e.revision.main >= c)
            .unwrap_or(all.len());
        let changed_at_c = all.iter().any(|e| e.revision.main == c);
        let start = match first_kept.checked_sub(1) {
            Some(i) if !changed_at_c && all[i].kind == EventKind::Put => i,
            _ => first_kept,
        };
        let mut kept = all[start..].to_vec();
        if start > 0 {
            if let Some(first) = kept.first_mut() {
                first.prev = None;
            }
        }
        kept
    }

    fn history(
        &self,
        key: &[u8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (c, current) = (self.compact_revision, self.revision());
        let to = if to == 0 { current } else { to };
        for requested in [from, to] {
            if requested != 0 && requested < c {
                return Err(StoreError::Compacted {
                    requested,
                    compact_revision: c,
                });
            }
        }
        if to > current {
            return Err(StoreError::FutureRevision {
                requested: to,
                current,
            });
        }
        let events = self.stored(key).into_iter();
        Ok(events
            .filter(|e| e.revision.main >= from && e.revision.main <= to)
            .take(limit)
            .collect())
    }
}

/// Checks every read of `store` against `model`, at every revision and for every key.
fn check_reads(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let current = model.revision();
    let c = model.compact_revision;
    prop_assert_eq!(store.revision(), current);
    prop_assert_eq!(store.compact_revision(), c);
    let live: Vec<&Bytes> = model.latest().keys().collect();
    prop_assert_eq!(store.keys().collect::<Vec<_>>(), live);
    prop_assert_eq!(store.len(), model.latest().len());
    prop_assert_eq!(store.is_empty(), model.latest().is_empty());
    for k in 0..KEYS {
        let key = key(k);
        prop_assert_eq!(store.get(&key), model.latest().get(&key).cloned());
        for r in 0..=current + 1 {
            // HistoryWindow: readable at and above c, Compacted exactly below it.
            prop_assert_eq!(
                store.get_at(&key, r),
                model.get_at(&key, r),
                "get_at({:?}, {})",
                key,
                r
            );
        }
        for from in 0..=current + 1 {
            for to in [0, from, c, current, current + 1] {
                for limit in [usize::MAX, 1, 0] {
                    prop_assert_eq!(
                        store.history(&key, from, to, limit),
                        model.history(&key, from, to, limit),
                        "history({:?}, {}, {}, {})",
                        key,
                        from,
                        to,
                        limit
                    );
                }
            }
        }
    }
    Ok(())
}

fn must_restore(store: &Store) -> Store {
    Store::from_snapshot(&store.to_snapshot()).expect("snapshot of a live store loads")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// RevisionMonotonic, HistoryWindow, SnapshotFaithful, DeterministicApply: every response,
    /// event and read agrees with the model, before and after a snapshot round trip, and a
    /// store restored mid-way carries on exactly as the original.
    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(test_op(), 0..60), split in any::<Index>()) {
        let mut store = Store::new();
        let mut model = Model::new();
        let split = split.index(ops.len() + 1);
        let mut state_changes = 0;
        for (i, op) in ops.iter().enumerate() {
            if i == split {
                let restored = must_restore(&store);
                prop_assert_eq!(&restored, &store);
                store = restored;
            }
            let op = op.to_op(store.revision());
            let before = store.revision();
            let got = store.apply(&Request { client: None, op: op.clone() });
            prop_assert_eq!(&got, &model.apply(&op), "{:?}", op);
            if store.revision() != before {
                prop_assert_eq!(store.revision(), before + 1);
                state_changes += 1;
            }
        }
        prop_assert_eq!(store.revision(), state_changes);
        check_reads(&store, &model)?;
        let restored = must_restore(&store);
        prop_assert_eq!(&restored, &store);
        check_reads(&restored, &model)?;
    }

    /// ExactlyOnce: replaying the same requests with retries (the same `ClientSeq` re-submitted,
    /// right away or later) leaves the same state, dedup table included, as without them. A
    /// retry of a client's last request answers its recorded response; an older one is stale.
    #[test]
    fn duplicates_change_nothing(
        reqs in prop::collection::vec(
            (test_op(), 0..4u8, prop::option::weighted(0.5, any::<Index>())),
            0..60,
        ),
    ) {
        // Clients 0..3 number their writes; client 3 stands for requests without a client.
        let mut seqs = [0u64; 3];
        let mut plain = Store::new();
        let mut requests = Vec::new();
        let mut responses = Vec::new();
        for (op, client, _) in &reqs {
            let client = (*client < 3).then(|| {
                seqs[*client as usize] += 1;
                ClientSeq { client_id: u64::from(*client) * 1000, seq: seqs[*client as usize] }
            });
            let req = Request { client, op: op.to_op(plain.revision()) };
            responses.push(plain.apply(&req).0);
            requests.push(req);
        }

        let mut retried = Store::new();
        let mut last: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, (req, (_, _, dup))) in requests.iter().zip(&reqs).enumerate() {
            prop_assert_eq!(&retried.apply(req).0, &responses[i]);
            if let Some(client) = req.client {
                last.insert(client.client_id, i);
            }
            let Some(dup) = dup else { continue };
            let j = dup.index(i + 1);
            let Some(client) = requests[j].client else { continue };
            let before = retried.clone();
            let (response, events) = retried.apply(&requests[j]);
            let latest = last[&client.client_id];
            let want = if latest == j {
                responses[j].clone()
            } else {
                let last = requests[latest].client.unwrap().seq;
                Response::Error(StoreError::StaleSequence { client_id: client.client_id, seq: client.seq, last })
            };
            prop_assert_eq!(response, want);
            prop_assert!(events.is_empty());
            prop_assert_eq!(&retried, &before);
        }
        prop_assert_eq!(&retried, &plain);
    }
}
