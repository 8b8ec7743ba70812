//! Store suite: `Store::apply` of single writes (SET, INCR, HSET of one field of a small and of a
//! 10,000-field hash) and of an EXEC of 10 writes (one
//! `Op::Txn`, one revision), compaction of 100,000 revisions, and snapshot build
//! (`Store::to_snapshot`), install (`Store::from_snapshot`) of 100,000 keys, clone of 100,000 and 1,000,000 keys, and
//! `Store::get` among 100,000 keys. Deterministic
//! and in memory: no Raft, no disk.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{black_box, BatchSize, Criterion, Throughput};
use redraft::store::{ClientSeq, Op, Request, Store};

/// Keys the write cases cycle through (a working set that stays in cache, as a hot config).
const KEYS: u64 = 10_000;
/// Writes between two untimed compactions in the apply cases, so history stays bounded.
const CHUNK: u64 = 10_000;

fn key(i: u64) -> Bytes {
    Bytes::from(format!("key:{:06}", i % KEYS))
}

fn put(i: u64, value: &Bytes) -> Request {
    Request {
        client: None,
        op: Op::Put {
            key: key(i),
            value: value.clone(),
        },
        at_ms: 0,
    }
}

/// Times `iters` steps of automatic compaction on one hot key: the key holds a window of
/// 100,000 versions; each step, 1,000 more writes (untimed), then a compaction that drops its
/// oldest 1,000 (timed), as `[store] history_revisions` keeps the window under steady writes.
fn timed_hot_key_steps(iters: u64) -> Duration {
    const WINDOW: u64 = 100_000;
    let value = Bytes::from(vec![b'v'; 64]);
    let write = Request {
        client: None,
        op: Op::Put {
            key: Bytes::from_static(b"hot"),
            value,
        },
        at_ms: 0,
    };
    let mut store = Store::new();
    for _ in 0..WINDOW {
        store.apply(&write);
    }
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        for _ in 0..1_000 {
            store.apply(&write);
        }
        let step = Request {
            client: None,
            op: Op::Compact {
                revision: store.revision() - WINDOW + 1,
            },
            at_ms: 0,
        };
        let started = Instant::now();
        black_box(store.apply(&step));
        total += started.elapsed();
    }
    total
}

/// Times `iters` first writes to a hot key (100,000 versions) after the store was cloned, as a
/// snapshot build clones it; the clone is dropped untimed after each.
fn timed_first_write_after_clone(iters: u64) -> Duration {
    let write = Request {
        client: None,
        op: Op::Put {
            key: Bytes::from_static(b"hot"),
            value: Bytes::from(vec![b'v'; 64]),
        },
        at_ms: 0,
    };
    let mut store = Store::new();
    for _ in 0..100_000 {
        store.apply(&write);
    }
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let captured = store.clone();
        let started = Instant::now();
        black_box(store.apply(&write));
        total += started.elapsed();
        drop(captured);
    }
    total
}

/// A store holding `keys` keys with a `value_len`-byte value each, one revision per key.
pub fn store_with_keys(keys: u64, value_len: usize) -> Store {
    let value = Bytes::from(vec![b'v'; value_len]);
    let mut store = Store::new();
    for i in 0..keys {
        store.apply(&Request {
            client: None,
            op: Op::Put {
                key: Bytes::from(format!("key:{i:07}")),
                value: value.clone(),
            },
            at_ms: 0,
        });
    }
    store
}

/// Times `iters` applications of `make(i)`, compacting (untimed) every [`CHUNK`] writes.
fn timed_writes(iters: u64, mut make: impl FnMut(u64) -> Request) -> Duration {
    let mut store = Store::new();
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < iters {
        let n = CHUNK.min(iters - i);
        let reqs: Vec<Request> = (i..i + n).map(&mut make).collect();
        let start = Instant::now();
        for r in &reqs {
            black_box(store.apply(r));
        }
        total += start.elapsed();
        let rev = store.revision();
        store.apply(&Request {
            client: None,
            op: Op::Compact { revision: rev },
            at_ms: 0,
        });
        i += n;
    }
    total
}

/// Times `iters` HSETs of one field each to a hash of `fields` fields, compacting (untimed)
/// every [`CHUNK`] writes.
fn timed_hash_writes(iters: u64, fields: u64) -> Duration {
    let hset = |pairs: Vec<(Bytes, Bytes)>| Request {
        client: None,
        op: Op::HSet {
            key: Bytes::from_static(b"config"),
            pairs,
            if_absent: false,
        },
        at_ms: 0,
    };
    let mut store = Store::new();
    store.apply(&hset(
        (0..fields)
            .map(|i| {
                (
                    Bytes::from(format!("field:{i:06}")),
                    Bytes::from_static(b"v"),
                )
            })
            .collect(),
    ));
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < iters {
        let n = CHUNK.min(iters - i);
        let reqs: Vec<Request> = (i..i + n)
            .map(|j| {
                let field = Bytes::from(format!("field:{:06}", j % fields));
                hset(vec![(field, Bytes::from(format!("value {j}")))])
            })
            .collect();
        let start = Instant::now();
        for r in &reqs {
            black_box(store.apply(r));
        }
        total += start.elapsed();
        let rev = store.revision();
        store.apply(&Request {
            client: None,
            op: Op::Compact { revision: rev },
            at_ms: 0,
        });
        i += n;
    }
    total
}

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("Store::apply");
    g.throughput(Throughput::Elements(1));
    for (name, len) in [("set_16B", 16), ("set_1KB", 1024)] {
        let value = Bytes::from(vec![b'v'; len]);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| timed_writes(iters, |i| put(i, &value)))
        });
    }
    // With a client sequence, as every client write carries one (the dedup table is updated).
    g.bench_function("set_16B_deduplicated", |b| {
        let value = Bytes::from(vec![b'v'; 16]);
        b.iter_custom(|iters| {
            timed_writes(iters, |i| Request {
                client: Some(ClientSeq {
                    client_id: 1 + i % 64,
                    seq: 1 + i / 64,
                    ..Default::default()
                }),
                op: Op::Put {
                    key: key(i),
                    value: value.clone(),
                },
                at_ms: 0,
            })
        })
    });
    // Authored, as every write of an authenticated session is (the authors of revisions
    // are recorded: AuthorRuns).
    g.bench_function("set_16B_authored", |b| {
        let value = Bytes::from(vec![b'v'; 16]);
        let author = Bytes::from_static(b"default");
        b.iter_custom(|iters| {
            timed_writes(iters, |i| Request {
                client: None,
                op: Op::Authored {
                    author: author.clone(),
                    op: Box::new(put(i, &value).op),
                },
                at_ms: 0,
            })
        })
    });
    g.bench_function("incr", |b| {
        b.iter_custom(|iters| {
            timed_writes(iters, |i| Request {
                client: None,
                op: Op::IncrBy {
                    key: Bytes::from(format!("counter:{}", i % 100)),
                    delta: 1,
                },
                at_ms: 0,
            })
        })
    });
    // EXEC of 10 ops (8 SETs, 2 INCRs) without WATCH: one entry, one revision, 10 subs.
    g.throughput(Throughput::Elements(10));
    g.bench_function("exec_10", |b| {
        let value = Bytes::from(vec![b'v'; 16]);
        b.iter_custom(|iters| {
            timed_writes(iters, |i| Request {
                client: None,
                op: Op::Txn {
                    compares: Vec::new(),
                    ops: (0..10)
                        .map(|j| {
                            if j < 8 {
                                Op::Put {
                                    key: key(i * 10 + j),
                                    value: value.clone(),
                                }
                            } else {
                                Op::IncrBy {
                                    key: Bytes::from(format!("counter:{}", (i + j) % 100)),
                                    delta: 1,
                                }
                            }
                        })
                        .collect(),
                    now_ms: 1,
                },
                at_ms: 0,
            })
        })
    });
    // HSET of one field of a hash of 10 and of 10,000 fields: the hash is a persistent map, so
    // a write costs O(log fields), not a copy of the hash (compared side by side).
    g.throughput(Throughput::Elements(1));
    for fields in [10u64, 10_000] {
        g.bench_function(format!("hset_1_field_of_{fields}"), |b| {
            b.iter_custom(|iters| timed_hash_writes(iters, fields))
        });
    }
    g.finish();

    // Compaction of 100,000 revisions: 1,000 keys written 100 times each, compacted to the
    // last revision (every key keeps only its newest version).
    let mut g = c.benchmark_group("Store::apply/compact");
    g.sample_size(10);
    let mut history = Store::new();
    let value = Bytes::from(vec![b'v'; 64]);
    for i in 0..100_000u64 {
        history.apply(&Request {
            client: None,
            op: Op::Put {
                key: Bytes::from(format!("key:{:04}", i % 1000)),
                value: value.clone(),
            },
            at_ms: 0,
        });
    }
    let compact = Request {
        client: None,
        op: Op::Compact {
            revision: history.revision(),
        },
        at_ms: 0,
    };
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("100k_revisions", |b| {
        b.iter_batched(
            || history.clone(),
            // The store is returned so its drop is not timed.
            |mut s| {
                let r = s.apply(&compact);
                (s, r)
            },
            BatchSize::LargeInput,
        )
    });
    // Automatic compaction's step: the oldest 1,000 of a 100,000-revision window
    // (CompactionCostsWhatItDrops: about the cost of 1,000 entries, not of the window).
    let slide = Request {
        client: None,
        op: Op::Compact { revision: 1_001 },
        at_ms: 0,
    };
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("oldest_1k_of_100k_revisions", |b| {
        b.iter_batched(
            || history.clone(),
            |mut s| {
                let r = s.apply(&slide);
                (s, r)
            },
            BatchSize::LargeInput,
        )
    });
    // The same step on a hot key: one key holding a 100,000-version window
    // (CompactionCostsWhatItDrops per key: its versions in a `Vec`, every step moved the whole
    // window).
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("oldest_1k_of_hot_key_100k_versions", |b| {
        b.iter_custom(timed_hot_key_steps)
    });
    g.finish();

    // Snapshots of 100,000 keys with 64-byte values (one revision each).
    let mut g = c.benchmark_group("Store::snapshot");
    g.sample_size(10);
    let store = store_with_keys(100_000, 64);
    let bytes = store.to_snapshot();
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("to_snapshot/100k_keys", |b| {
        b.iter(|| black_box(store.to_snapshot()))
    });
    g.bench_function("from_snapshot/100k_keys", |b| {
        b.iter_with_large_drop(|| Store::from_snapshot(&bytes).unwrap())
    });
    // What a snapshot build costs apply: the state machine clones the store under its lock,
    // then encodes the clone off the apply path.
    g.bench_function("clone/100k_keys", |b| {
        b.iter_with_large_drop(|| store.clone())
    });
    let million = store_with_keys(1_000_000, 64);
    g.bench_function("clone/1m_keys", |b| {
        b.iter_with_large_drop(|| million.clone())
    });
    drop(million);
    // A delta (DeltaCostsWhatChanged) against a full snapshot, on a history of 100,000
    // revisions over 1,000 keys of which the last 10,000 came after the base.
    let mut history = Store::new();
    let value = Bytes::from(vec![b'v'; 64]);
    let mut since = 0;
    for i in 0..100_000u64 {
        if i == 90_000 {
            since = history.revision();
        }
        history.apply(&Request {
            client: None,
            op: Op::Put {
                key: Bytes::from(format!("key:{:04}", i % 1000)),
                value: value.clone(),
            },
            at_ms: 0,
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("full/100k_revisions", |b| {
        b.iter(|| black_box(history.to_snapshot().len()))
    });
    g.bench_function("delta/last_10k_of_100k_revisions", |b| {
        b.iter(|| black_box(history.to_delta(since, b"").len()))
    });
    drop(history);
    // The same number of revisions as HSETs of one field each to one hash of 10,000 fields:
    // a hash version is written as its change from the previous version.
    let mut hashed = Store::new();
    for i in 0..100_000u64 {
        hashed.apply(&Request {
            client: None,
            op: Op::HSet {
                key: Bytes::from_static(b"config"),
                pairs: vec![(
                    Bytes::from(format!("field:{:05}", i % 10_000)),
                    value.clone(),
                )],
                if_absent: false,
            },
            at_ms: 0,
        });
    }
    g.bench_function("full/100k_hash_versions_of_10k_fields", |b| {
        b.iter(|| black_box(hashed.to_snapshot().len()))
    });
    drop(hashed);
    // What a restart loads: one full dump of 100,000 revisions, against a dump of 60,000 with
    // four deltas of 10,000 after it (the same store).
    let mut grown = Store::new();
    let mut bytes = Vec::new();
    let mut since = 0;
    for i in 0..100_000u64 {
        if i == 60_000 {
            bytes = grown.to_snapshot();
            since = grown.revision();
        } else if i > 60_000 && i % 10_000 == 0 {
            bytes.extend_from_slice(&grown.to_delta(since, b""));
            since = grown.revision();
        }
        grown.apply(&Request {
            client: None,
            op: Op::Put {
                key: Bytes::from(format!("key:{:04}", i % 1000)),
                value: value.clone(),
            },
            at_ms: 0,
        });
    }
    bytes.extend_from_slice(&grown.to_delta(since, b""));
    let full = grown.to_snapshot();
    assert_eq!(Store::from_snapshot(&bytes).unwrap(), grown);
    g.bench_function("load/full_100k_revisions", |b| {
        b.iter_with_large_drop(|| Store::from_snapshot(&full).unwrap())
    });
    g.bench_function("load/dump_and_4_deltas_100k_revisions", |b| {
        b.iter_with_large_drop(|| Store::from_snapshot(&bytes).unwrap())
    });
    drop(grown);
    // ... and what it costs the first write after it: the written key's versions are copied
    // (copy-on-write), all of them for a hot key holding a window of 100,000.
    g.throughput(Throughput::Elements(1));
    g.bench_function("first_write_after_clone/hot_key_100k_versions", |b| {
        b.iter_custom(timed_first_write_after_clone)
    });
    g.finish();

    // Reads of the latest value: GET of a present key among 100,000.
    let mut g = c.benchmark_group("Store::get");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("100k_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            black_box(store.get(format!("key:{i:07}").as_bytes()))
        })
    });
    g.finish();
}
