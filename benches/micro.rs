//! The criterion micro-benchmarks (`cargo bench --bench micro`): one harness, one suite per
//! layer in `benches/suites/`. Bench names follow the API path they measure (`Framer::parse`,
//! `Store::apply`, `LogStore::append`), with the case after a slash.
//!
//! Timings are short by default (1 s warm-up, 3 s measurement, 20 samples) so the whole run
//! takes a few minutes on the project's 2-core machine; pass criterion's own flags to change
//! them, e.g. `cargo bench --bench micro -- --measurement-time 10 Store::apply`.
//!
//! These are single-process figures with no network and no Raft; the side-by-side comparison
//! against Redis and etcd is `benches/compare.sh`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "suites/log_store.rs"]
mod log_store;
#[path = "suites/protocol.rs"]
mod protocol;
#[path = "suites/store.rs"]
mod store;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = protocol::benches, store::benches, log_store::benches
}
criterion_main!(benches);
