//! Snapshot deltas: DeltaFaithful over random histories (puts, deletes, hashes, expiry,
//! compaction, scripts, ACL users, authors, deduplicated clients), DeltaFollows and
//! DeltaChecked on bad bytes.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::store::{ClientSeq, Expiry, Op, Request};

/// One step of a random history, over four keys.
#[derive(Clone, Debug)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    HSet(u8, u8, u8),
    HDel(u8, u8),
    Expire(u8),
    /// Compacts to `compact_revision + 1 + 3n` (at most the revision).
    Compact(u8),
    ScriptLoad(u8),
    AclSetUser(u8),
    Authored(u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..4u8, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (0..4u8).prop_map(Step::Delete),
        3 => (4..6u8, 0..4u8, any::<u8>()).prop_map(|(k, f, v)| Step::HSet(k, f, v)),
        1 => (4..6u8, 0..4u8).prop_map(|(k, f)| Step::HDel(k, f)),
        1 => (0..4u8).prop_map(Step::Expire),
        2 => (0..6u8).prop_map(Step::Compact),
        1 => any::<u8>().prop_map(Step::ScriptLoad),
        1 => (0..3u8).prop_map(Step::AclSetUser),
        1 => (0..4u8, any::<u8>()).prop_map(|(k, v)| Step::Authored(k, v)),
    ]
}

fn key(k: u8) -> Bytes {
    Bytes::from(format!("key{k}"))
}

fn op(step: &Step, store: &Store) -> Op {
    match step {
        Step::Put(k, v) => Op::Put {
            key: key(*k),
            value: Bytes::from(vec![*v; usize::from(*v % 5)]),
        },
        Step::Delete(k) => Op::Delete {
            keys: vec![key(*k)],
        },
        Step::HSet(k, f, v) => Op::HSet {
            key: key(*k),
            pairs: vec![(Bytes::from(format!("f{f}")), Bytes::from(vec![*v]))],
            if_absent: false,
        },
        Step::HDel(k, f) => Op::HDel {
            key: key(*k),
            fields: vec![Bytes::from(format!("f{f}"))],
        },
        Step::Expire(k) => Op::Expire {
            key: key(*k),
            expiry: Expiry::At(1_000_000 + i64::from(*k)),
            cond: Default::default(),
            now_ms: 10,
        },
        // Small steps: compaction often stays at or below a delta's base, and sometimes passes it.
        Step::Compact(n) => Op::Compact {
            revision: (store.compact_revision + 1 + 3 * u64::from(*n)).min(store.revision()),
        },
        Step::ScriptLoad(b) => Op::ScriptLoad {
            body: Bytes::from(format!("return {b}")),
        },
        Step::AclSetUser(u) => Op::AclSetUser {
            name: Bytes::from(format!("user{u}")),
            rules: vec![Bytes::from_static(b"on"), Bytes::from_static(b"+@all")],
            create: vec![],
        },
        Step::Authored(k, v) => Op::Authored {
            author: Bytes::from_static(b"alice"),
            op: Box::new(Op::Put {
                key: key(*k),
                value: Bytes::from(vec![*v]),
            }),
        },
    }
}

/// Applies `steps` to `store` as client 7's writes from `seq` on.
fn run(store: &mut Store, steps: &[Step], seq: &mut u64) {
    for s in steps {
        *seq += 1;
        let op = op(s, store);
        store.apply(&Request {
            client: Some(ClientSeq {
                client_id: 7,
                seq: *seq,
                ..Default::default()
            }),
            op,
            at_ms: 0,
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// DeltaFaithful: a snapshot taken after `a`, then a delta after `b` and another after
    /// `c` (or a full snapshot where compaction went past the last one: DeltaWithinWindow),
    /// load to the store itself (equal, and the same snapshot bytes), at each point.
    #[test]
    fn base_and_deltas_load_to_the_same_store(
        a in prop::collection::vec(step(), 0..40),
        b in prop::collection::vec(step(), 0..40),
        c in prop::collection::vec(step(), 0..40),
    ) {
        let mut store = Store::new();
        let mut seq = 0;
        run(&mut store, &a, &mut seq);
        let mut bytes = store.to_snapshot();
        let mut since = store.revision();
        let mut deltas_written = 0;
        for (i, more) in [b, c].iter().enumerate() {
            run(&mut store, more, &mut seq);
            let label = format!("delta {i}");
            let mut n = deltas_written;
            if store.can_delta_since(since) {
                bytes.extend_from_slice(&store.to_delta(since, label.as_bytes()));
                n += 1;
            } else {
                bytes = store.to_snapshot();
                n = 0;
            }
            deltas_written = n;
            since = store.revision();
            let (loaded, deltas) = Store::from_snapshot_and_deltas(&bytes).unwrap();
            prop_assert_eq!(&loaded, &store);
            prop_assert_eq!(loaded.to_snapshot(), store.to_snapshot());
            prop_assert_eq!(deltas.len(), n);
            if n > 0 {
                prop_assert_eq!(&deltas[n - 1].0[..], label.as_bytes());
            }
        }
    }
}

/// A store with history, compaction, a hash, an expiry and a script, and a delta on it.
fn sample() -> (Store, Vec<u8>, Vec<u8>) {
    let mut store = Store::new();
    let mut seq = 0;
    run(
        &mut store,
        &[Step::Put(0, 1), Step::HSet(4, 0, 1), Step::Put(1, 2)],
        &mut seq,
    );
    let base = store.to_snapshot();
    let since = store.revision();
    run(
        &mut store,
        &[
            Step::Put(0, 3),
            Step::Compact(0),
            Step::HSet(4, 1, 2),
            Step::Expire(1),
            Step::ScriptLoad(9),
        ],
        &mut seq,
    );
    let delta = store.to_delta(since, b"label");
    (store, base, delta)
}

#[test]
fn a_delta_carries_only_what_changed() {
    let mut store = Store::new();
    let mut seq = 0;
    let many: Vec<Step> = (0..200)
        .map(|i| Step::Put((i % 4) as u8, i as u8))
        .collect();
    run(&mut store, &many, &mut seq);
    let full = store.to_snapshot().len();
    let since = store.revision();
    run(&mut store, &[Step::Put(0, 7)], &mut seq);
    let delta = store.to_delta(since, b"");
    assert!(
        delta.len() * 10 < full,
        "a one-write delta is {} bytes against a {full}-byte snapshot",
        delta.len()
    );
    let mut bytes = store.to_snapshot();
    bytes.extend_from_slice(&store.to_delta(store.revision(), b""));
    assert_eq!(
        Store::from_snapshot(&bytes).unwrap(),
        store,
        "an empty delta changes nothing"
    );
}

#[test]
fn a_delta_must_follow_its_revision() {
    let (_, base, delta) = sample();
    // Applied twice: the second follows a store already past its `since`.
    let mut twice = base.clone();
    twice.extend_from_slice(&delta);
    twice.extend_from_slice(&delta);
    match Store::from_snapshot(&twice) {
        Err(SnapshotError::Corrupt(why)) => assert!(why.contains("follows"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // On a store at another revision.
    let mut other = Store::new().to_snapshot();
    other.extend_from_slice(&delta);
    assert!(matches!(
        Store::from_snapshot(&other),
        Err(SnapshotError::Corrupt(_))
    ));
}

#[test]
fn bad_delta_bytes_are_refused_never_loaded() {
    let (store, base, delta) = sample();
    let mut good = base.clone();
    good.extend_from_slice(&delta);
    assert_eq!(Store::from_snapshot(&good).unwrap(), store);
    // Every cut inside the section is truncated (the cut at 0 is the base alone, valid).
    for cut in 1..delta.len() {
        let mut bytes = base.clone();
        bytes.extend_from_slice(&delta[..cut]);
        assert_eq!(
            Store::from_snapshot(&bytes),
            Err(SnapshotError::Truncated),
            "cut at {cut}"
        );
    }
    // Every flipped payload byte fails the checksum; a flipped header byte is a wrong tag,
    // a wrong length (truncated or trailing garbage) or a wrong checksum.
    for i in 0..delta.len() {
        let mut bytes = base.clone();
        let mut bad = delta.clone();
        bad[i] ^= 0x41;
        bytes.extend_from_slice(&bad);
        assert!(
            Store::from_snapshot(&bytes).is_err(),
            "flipped byte {i} was loaded"
        );
    }
    // Garbage after the last section.
    let mut bytes = good.clone();
    bytes.push(1);
    assert!(matches!(
        Store::from_snapshot(&bytes),
        Err(SnapshotError::Corrupt(_))
    ));
}

/// DeltaWithinWindow, the case the property test found: a key deleted after the base and then
/// compacted away leaves nothing in a delta, so no delta is written once compaction passed
/// the base's revision.
#[test]
fn no_delta_once_compaction_passes_the_base() {
    let mut store = Store::new();
    let mut seq = 0;
    run(&mut store, &[Step::Put(0, 1), Step::Put(1, 1)], &mut seq);
    let since = store.revision();
    run(&mut store, &[Step::Delete(0), Step::Put(1, 2)], &mut seq);
    assert!(store.can_delta_since(since));
    for _ in 0..4 {
        run(&mut store, &[Step::Compact(0)], &mut seq);
    }
    assert!(store.get(b"key0").is_none());
    assert!(!store.can_delta_since(since));
    let err = store.write_delta(since, b"", Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// HeaderLast: a section whose header was never written reads as unfinished at its start (the
/// loader may cut it off), whatever of its body is there; what precedes it loads.
#[test]
fn a_section_without_its_header_is_unfinished() {
    let (store, base, delta) = sample();
    let mut blank = delta.clone();
    blank[..DELTA_HEADER].fill(0);
    for cut in [1, DELTA_HEADER, DELTA_HEADER + 1, blank.len()] {
        let mut bytes = base.clone();
        bytes.extend_from_slice(&blank[..cut]);
        assert_eq!(
            Store::from_snapshot(&bytes),
            Err(SnapshotError::Unfinished { offset: base.len() }),
            "cut at {cut}"
        );
    }
    let mut bytes = base.clone();
    bytes.extend_from_slice(&delta);
    let second_at = bytes.len();
    bytes.extend_from_slice(&blank);
    assert_eq!(
        Store::from_snapshot(&bytes),
        Err(SnapshotError::Unfinished { offset: second_at })
    );
    bytes.truncate(second_at);
    assert_eq!(Store::from_snapshot(&bytes).unwrap(), store);
}

/// One change to snapshot bytes, at a position chosen by `Index`.
#[derive(Clone, Debug)]
enum Damage {
    Flip(prop::sample::Index, u8),
    Overwrite(prop::sample::Index, Vec<u8>),
    Cut(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0..8u8).prop_map(|(i, b)| Damage::Flip(i, b)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..9)
        )
            .prop_map(|(i, v)| Damage::Overwrite(i, v)),
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..9)
        )
            .prop_map(|(i, v)| Damage::Insert(i, v)),
        (any::<prop::sample::Index>(), 1..9usize).prop_map(|(i, n)| Damage::Remove(i, n)),
    ]
}

/// Applies `d` to `bytes[from..]` (never before `from`).
fn apply_damage(bytes: &mut Vec<u8>, from: usize, d: &Damage) {
    let span = bytes.len() - from;
    if span == 0 {
        return;
    }
    match d {
        Damage::Flip(i, b) => bytes[from + i.index(span)] ^= 1 << b,
        Damage::Overwrite(i, v) => {
            let at = from + i.index(span);
            let n = v.len().min(bytes.len() - at);
            bytes[at..at + n].copy_from_slice(&v[..n]);
        }
        Damage::Cut(i) => bytes.truncate(from + i.index(span)),
        Damage::Insert(i, v) => {
            let at = from + i.index(span);
            bytes.splice(at..at, v.iter().copied());
        }
        Damage::Remove(i, n) => {
            let at = from + i.index(span);
            bytes.drain(at..(at + n).min(bytes.len()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// NoPanicOnSnapshotBytes: snapshot bytes come from a disk or a peer, so damaged ones
    /// (anywhere in the base, or inside a delta section with its checksum made to match again,
    /// as a bug would write it) are refused with an error or load a store that works: it
    /// encodes, reloads to itself, and takes more writes. Never a panic.
    #[test]
    fn damaged_snapshot_bytes_are_refused_or_load_a_working_store(
        a in prop::collection::vec(step(), 0..30),
        b in prop::collection::vec(step(), 0..30),
        after in prop::collection::vec(step(), 0..10),
        damages in prop::collection::vec(damage(), 1..4),
        in_delta in any::<bool>(),
    ) {
        let mut store = Store::new();
        let mut seq = 0;
        run(&mut store, &a, &mut seq);
        let mut bytes = store.to_snapshot();
        let since = store.revision();
        run(&mut store, &b, &mut seq);
        let base_len = bytes.len();
        let with_delta = store.can_delta_since(since);
        if with_delta {
            bytes.extend_from_slice(&store.to_delta(since, b"d"));
        }
        if in_delta && with_delta {
            // Inside the delta's payload, lengths kept, its checksum recomputed.
            let payload = base_len + DELTA_HEADER;
            for d in &damages {
                if let Damage::Flip(..) | Damage::Overwrite(..) = d {
                    apply_damage(&mut bytes, payload, d);
                }
            }
            let crc = crc32c::crc32c(&bytes[payload..]);
            bytes[base_len + 5..base_len + 9].copy_from_slice(&crc.to_be_bytes());
        } else {
            for d in &damages {
                apply_damage(&mut bytes, 0, d);
            }
        }
        let loaded = std::panic::catch_unwind(|| Store::from_snapshot(&bytes));
        prop_assert!(loaded.is_ok(), "loading panicked: {:?}", damages);
        if let Ok(Ok(mut s)) = loaded {
            let works = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let again = Store::from_snapshot(&s.to_snapshot()).expect("reloads");
                assert_eq!(again, s);
                run(&mut s, &after, &mut seq);
            }));
            prop_assert!(works.is_ok(), "a loaded store failed: {:?}", damages);
        }
    }
}
