//! Property tests: [`Store`] against a reference model, and deduplication by replay.
//!
//! The model keeps the full keyspace state after every revision and every key's full list of
//! events, and knows nothing of key indexes or compaction internals: what compaction keeps is
//! derived from the rules in the `store` module doc (HistoryWindow). It plans each op as a list
//! of puts and deletes from the latest state alone (the read-modify-writes of `strings.rs`
//! included), and numbers them itself. Checks cite the invariants they test.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

mod model;

use model::Model;

/// Number of distinct keys; the last one is only ever deleted or read, never put.
const KEYS: u8 = 5;

/// Values the ops write: strings, canonical and non-canonical integers, the i64 limits, a float.
const VALUES: &[&str] = &[
    "",
    "v",
    "vv",
    "0",
    "1",
    "-5",
    "01",
    "1.5",
    "9223372036854775807",
    "-9223372036854775808",
];

/// INCRBY deltas, including the ones that overflow from the i64 limits above.
const DELTAS: &[i64] = &[1, -1, 0, 7, i64::MAX, i64::MIN];

/// INCRBYFLOAT increments, including refused ones.
const INCREMENTS: &[&str] = &["0.5", "-1", "1e3", "abc", "inf", "0x10"];

/// Returns key `k`: "", "k", "kk", … (so the empty key and byte order are exercised).
fn key(k: u8) -> Bytes {
    Bytes::from("k".repeat(k as usize))
}

fn value(v: u8) -> Bytes {
    Bytes::from_static(VALUES[v as usize % VALUES.len()].as_bytes())
}

/// An operation before its revision arguments are resolved against the current revision.
#[derive(Clone, Debug)]
enum TestOp {
    Put(u8, u8),
    Delete(Vec<u8>),
    /// Compacts at `pick % (revision + 2)`: covers 0, the current revision and the future.
    Compact(u8),
    Set(u8, u8, u8, bool),
    GetDel(u8),
    IncrBy(u8, u8),
    IncrByFloat(u8, u8),
    Append(u8, u8),
    SetRange(u8, u8, u8),
    MSet(Vec<(u8, u8)>, bool),
    Rename(u8, u8, bool),
    Flush,
    /// Expects mod_revision `pick % (revision + 2)`, so it matches now and then.
    Cas(u8, u8, u8),
}

impl TestOp {
    fn to_op(&self, revision: u64) -> Op {
        match self {
            TestOp::Put(k, v) => Op::Put {
                key: key(*k),
                value: value(*v),
            },
            TestOp::Delete(keys) => Op::Delete {
                keys: keys.iter().map(|&k| key(k)).collect(),
            },
            TestOp::Compact(pick) => Op::Compact {
                revision: u64::from(*pick) % (revision + 2),
            },
            TestOp::Set(k, v, when, get) => Op::Set {
                key: key(*k),
                value: value(*v),
                when: [SetWhen::Always, SetWhen::Absent, SetWhen::Present][*when as usize % 3],
                get: *get,
            },
            TestOp::GetDel(k) => Op::GetDel { key: key(*k) },
            TestOp::IncrBy(k, d) => Op::IncrBy {
                key: key(*k),
                delta: DELTAS[*d as usize % DELTAS.len()],
            },
            TestOp::IncrByFloat(k, i) => Op::IncrByFloat {
                key: key(*k),
                increment: Bytes::from_static(
                    INCREMENTS[*i as usize % INCREMENTS.len()].as_bytes(),
                ),
            },
            TestOp::Append(k, v) => Op::Append {
                key: key(*k),
                value: value(*v),
            },
            TestOp::SetRange(k, offset, v) => Op::SetRange {
                key: key(*k),
                offset: u64::from(*offset),
                value: value(*v),
            },
            TestOp::MSet(pairs, if_none_exist) => Op::MSet {
                pairs: pairs.iter().map(|&(k, v)| (key(k), value(v))).collect(),
                if_none_exist: *if_none_exist,
            },
            TestOp::Rename(src, dst, if_absent) => Op::Rename {
                src: key(*src),
                dst: key(*dst),
                if_absent: *if_absent,
            },
            TestOp::Flush => Op::Flush,
            TestOp::Cas(k, pick, v) => Op::Cas {
                key: key(*k),
                expected_mod_revision: u64::from(*pick) % (revision + 2),
                value: value(*v),
            },
        }
    }
}

fn test_op() -> impl Strategy<Value = TestOp> {
    let put_key = 0..KEYS - 1;
    let v = any::<u8>();
    prop_oneof![
        5 => (put_key.clone(), v).prop_map(|(k, v)| TestOp::Put(k, v)),
        2 => prop::collection::vec(0..KEYS, 0..4).prop_map(TestOp::Delete),
        1 => any::<u8>().prop_map(TestOp::Compact),
        2 => (put_key.clone(), v, 0..3u8, any::<bool>())
            .prop_map(|(k, v, w, g)| TestOp::Set(k, v, w, g)),
        1 => (0..KEYS).prop_map(TestOp::GetDel),
        3 => (put_key.clone(), any::<u8>()).prop_map(|(k, d)| TestOp::IncrBy(k, d)),
        1 => (put_key.clone(), any::<u8>()).prop_map(|(k, i)| TestOp::IncrByFloat(k, i)),
        2 => (put_key.clone(), v).prop_map(|(k, v)| TestOp::Append(k, v)),
        2 => (put_key.clone(), 0..4u8, v).prop_map(|(k, o, v)| TestOp::SetRange(k, o, v)),
        2 => (prop::collection::vec((put_key.clone(), v), 1..4), any::<bool>())
            .prop_map(|(p, nx)| TestOp::MSet(p, nx)),
        2 => (0..KEYS, put_key.clone(), any::<bool>()).prop_map(|(s, d, nx)| TestOp::Rename(s, d, nx)),
        1 => Just(TestOp::Flush),
        2 => (put_key, any::<u8>(), v).prop_map(|(k, p, v)| TestOp::Cas(k, p, v)),
    ]
}

/// Checks every read of `store` against `model`, at every revision and for every key.
fn check_reads(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let current = model.revision();
    let c = model.compact_revision;
    prop_assert_eq!(store.revision(), current);
    prop_assert_eq!(store.compact_revision(), c);
    let live: Vec<&Bytes> = model.latest().keys().collect();
    prop_assert_eq!(store.keys().collect::<Vec<_>>(), live.clone());
    for count in [1, 2, 10] {
        // HashIndex: a full SCAN returns the live keys, each once.
        let mut scanned = must_scan_all(store, count);
        scanned.sort();
        prop_assert_eq!(scanned.iter().collect::<Vec<_>>(), live.clone());
    }
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

/// Returns every key of a full SCAN iteration, page by page from cursor 0.
fn must_scan_all(store: &Store, count: usize) -> Vec<Bytes> {
    let (mut keys, mut cursor) = (Vec::new(), 0);
    loop {
        let (page, next) = store.scan(cursor, count);
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        assert!(next > cursor, "scan cursors grow: {cursor} then {next}");
        cursor = next;
    }
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
            let got = store.apply(&Request { client: None, op: op.clone(), at_ms: 0 });
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
                ClientSeq { client_id: u64::from(*client) * 1000, seq: seqs[*client as usize], ..Default::default() }
            });
            let req = Request { client, op: op.to_op(plain.revision()), at_ms: 0 };
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

    /// The SCAN guarantee (kv.rs, "Scan cursors"): while keys are put and deleted between
    /// pages, a key live for the whole iteration is returned, and no key is returned twice.
    #[test]
    fn scan_returns_keys_live_throughout_once(
        initial in prop::collection::btree_set(0..60u8, 0..40),
        between in prop::collection::vec(prop::collection::vec((0..60u8, any::<bool>()), 0..4), 0..30),
        count in 1..5usize,
    ) {
        let scan_key = |i: u8| Bytes::from(format!("s{i}"));
        let mut store = Store::new();
        let pairs = initial.iter().map(|&i| (scan_key(i), Bytes::new())).collect();
        store.apply(&Request { client: None, op: Op::MSet { pairs, if_none_exist: false }, at_ms: 0 });
        let mut deleted = std::collections::BTreeSet::new();
        let (mut returned, mut cursor, mut step) = (Vec::new(), 0, 0);
        loop {
            let (page, next) = store.scan(cursor, count);
            returned.extend(page);
            if next == 0 {
                break;
            }
            for &(i, put) in between.get(step).into_iter().flatten() {
                let op = if put {
                    Op::Put { key: scan_key(i), value: Bytes::new() }
                } else {
                    deleted.insert(i);
                    Op::Delete { keys: vec![scan_key(i)] }
                };
                store.apply(&Request { client: None, op, at_ms: 0 });
            }
            step += 1;
            cursor = next;
        }
        let mut unique = returned.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), returned.len(), "a key returned twice: {:?}", returned);
        for i in initial.iter().filter(|i| !deleted.contains(*i)) {
            prop_assert!(returned.contains(&scan_key(*i)), "s{} live throughout, not returned", i);
        }
    }
}
