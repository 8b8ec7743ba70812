use std::cell::Cell;
use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

thread_local! {
    static CLONES: Cell<usize> = const { Cell::new(0) };
}

/// A version that counts its clones (this thread's).
#[derive(Debug, PartialEq, Eq)]
struct Counted(u64);

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES.with(|c| c.set(c.get() + 1));
        Counted(self.0)
    }
}

fn clones() -> usize {
    CLONES.with(Cell::get)
}

/// SharedChunks: a clone of a key with 1,000 versions copies fewer than CHUNK of them, and a
/// write to the clone afterwards copies none of the sealed ones; before, a clone copied all
/// 1,000 (the snapshot capture's cost that grew with history).
#[test]
fn a_clone_copies_at_most_the_open_tail() {
    let mut v = Versions::default();
    v.extend((0..1000).map(Counted));
    let before = clones();
    let mut c = v.clone();
    let copied = clones() - before;
    assert!(copied < CHUNK, "a clone copied {copied} versions");
    assert_eq!(copied, 1000 % CHUNK);
    for (a, b) in v.chunks().iter().zip(c.chunks()) {
        assert!(Arc::ptr_eq(a, b), "sealed chunks are shared, not copied");
    }
    let before = clones();
    c.push_back(Counted(1000));
    assert_eq!(clones(), before, "an append copies nothing sealed");
    assert_eq!(v.len(), 1000);
    assert_eq!(c.len(), 1001);
    assert_eq!(c[1000], Counted(1000));
}

/// CompactionCostsWhatItDrops: dropping from a shared first chunk copies what stays of that
/// chunk only, and leaves the clone it shares with untouched; unshared, nothing is copied.
#[test]
fn dropping_the_front_copies_at_most_one_chunk() {
    let mut v = Versions::default();
    v.extend((0..1000).map(Counted));
    let snapshot = v.clone();
    let before = clones();
    v.drop_front(10);
    assert_eq!(
        clones() - before,
        CHUNK - 10,
        "one shared chunk's remainder copied"
    );
    assert_eq!(v.front(), Some(&Counted(10)));
    assert_eq!(
        snapshot.front(),
        Some(&Counted(0)),
        "the clone keeps its versions"
    );
    assert_eq!(snapshot.len(), 1000);
    drop(snapshot);
    let before = clones();
    v.drop_front(200);
    assert_eq!(clones(), before, "an unshared chunk is drained in place");
    assert_eq!(v.front(), Some(&Counted(210)));
    assert_eq!(v.len(), 790);
    // ChunksFull after the drops: every sealed chunk but the first is full.
    let chunks = v.chunks();
    assert!(chunks[1..].iter().all(|c| c.len() == CHUNK));
    assert!(!chunks[0].is_empty() && chunks[0].len() <= CHUNK);
    assert!(v.tail.len() < CHUNK);
}

/// The keyspace's map holds a `Versions` in every entry: it stays the size of the
/// `VecDeque` it replaced (memory per key, `benches/scale.sh`).
#[test]
fn versions_stay_as_small_as_a_deque() {
    assert_eq!(
        size_of::<Versions<[u64; 7]>>(),
        size_of::<VecDeque<[u64; 7]>>()
    );
}

/// A load builds chunks and a tail of exactly the versions read, no spare capacity.
#[test]
fn collected_versions_have_no_spare_capacity() {
    let v: Versions<u64> = (0..200).collect();
    assert_eq!(v.len(), 200);
    assert_eq!(v.chunks().len(), 200 / CHUNK);
    assert_eq!(v.tail.capacity(), 200 % CHUNK);
    assert!(v.chunks().iter().all(|c| c.capacity() == CHUNK));
    assert!(v.iter().copied().eq(0..200));
}

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    Drop(u16),
    /// Continue with a clone; the original must still read as it did.
    Clone,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Push),
        1 => (0u16..200).prop_map(Op::Drop),
        1 => Just(Op::Clone),
    ]
}

fn check(v: &Versions<u64>, model: &VecDeque<u64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(v.len(), model.len());
    prop_assert_eq!(v.is_empty(), model.is_empty());
    prop_assert_eq!(v.front(), model.front());
    prop_assert_eq!(v.back(), model.back());
    for (i, m) in model.iter().enumerate() {
        prop_assert_eq!(v.get(i), Some(m));
    }
    prop_assert_eq!(v.get(model.len()), None);
    prop_assert!(v.iter().eq(model.iter()));
    for from in [0, 1, model.len() / 2, model.len(), model.len() + 3] {
        prop_assert!(v.iter_from(from).eq(model.iter().skip(from)));
    }
    // The model holds increasing values: search them as revisions are searched.
    for probe in [0, 1, 77, 500, 10_000, u64::MAX] {
        prop_assert_eq!(
            v.partition_point(|x| *x < probe),
            model.partition_point(|x| *x < probe)
        );
        prop_assert_eq!(
            v.leading(|x| *x < probe),
            model.partition_point(|x| *x < probe)
        );
        prop_assert_eq!(
            v.binary_search_by(|x| x.cmp(&probe)),
            model.binary_search_by(|x| x.cmp(&probe))
        );
    }
    prop_assert!(v.clone().into_iter().eq(model.iter().copied()));
    prop_assert!(v.tail.len() < CHUNK);
    prop_assert_eq!(v.sealed.is_some(), !v.chunks().is_empty());
    if let Some((first, rest)) = v.chunks().split_first() {
        prop_assert!(!first.is_empty() && first.len() <= CHUNK);
        prop_assert!(rest.iter().all(|c| c.len() == CHUNK));
    }
    Ok(())
}

proptest! {
    /// Versions reads exactly as a VecDeque given the same appends and front drops, through
    /// clones taken at any point (each clone keeps reading as it did when taken).
    #[test]
    fn versions_read_as_a_deque(ops in proptest::collection::vec(op(), 0..600)) {
        let mut v = Versions::default();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        let mut kept: Vec<(Versions<u64>, VecDeque<u64>)> = Vec::new();
        for op in ops {
            match op {
                Op::Push(step) => {
                    next += u64::from(step % 3) + 1;
                    v.push_back(next);
                    model.push_back(next);
                }
                Op::Drop(n) => {
                    let n = usize::from(n);
                    v.drop_front(n);
                    model.drain(..n.min(model.len()));
                }
                Op::Clone => kept.push((v.clone(), model.clone())),
            }
            check(&v, &model)?;
        }
        for (v, model) in &kept {
            check(v, model)?;
        }
    }
}
