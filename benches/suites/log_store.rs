//! Log store suite: `LogStore::append` of a batch of 1, 16 or 256 entries, timed until its
//! `IOFlushed` callback fires, i.e. until the group-commit `fdatasync` of the write-ahead log
//! that makes the batch durable has returned (DurableBeforeAck). Each entry carries a 256-byte SET, as a client write does.
//!
//! The log lives under cargo's `CARGO_TARGET_TMPDIR` (on the build disk, not a tmpfs),
//! so the figure includes the disk's real fsync latency: the batch-of-1 case is the floor of
//! any durable write on this machine.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use openraft::vote::RaftLeaderId;
use redraft::raft::log_store::LogStore;
use redraft::raft::typ::Entry;
use redraft::raft::{EncodedRequest, TypeConfig};
use redraft::store::{Op, Request};

fn entry(index: u64, value: &Bytes) -> Entry {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(1, 1);
    Entry::new_normal(
        openraft::LogId::new(leader.to_committed(), index),
        EncodedRequest::encode(&Request {
            client: None,
            op: Op::Put {
                key: Bytes::from(format!("key:{:06}", index % 10_000)),
                value: value.clone(),
            },
            at_ms: 0,
        })
        .expect("a request encodes"),
    )
}

pub fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let value = Bytes::from(vec![b'v'; 256]);
    let mut g = c.benchmark_group("LogStore::append");
    for batch in [1u64, 16, 256] {
        let path = dir.path().join(format!("batch{batch}"));
        let mut store = rt.block_on(async { LogStore::open(&path) }).unwrap();
        let mut next = 1u64;
        g.throughput(Throughput::Elements(batch));
        g.bench_function(format!("flushed/batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let entries: Vec<Entry> =
                            (next..next + batch).map(|i| entry(i, &value)).collect();
                        next += batch;
                        let start = Instant::now();
                        let (tx, rx) = TypeConfig::oneshot();
                        store.append(entries, IOFlushed::signal(tx)).await.unwrap();
                        rx.await.unwrap().unwrap();
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
    }
    g.finish();
}
