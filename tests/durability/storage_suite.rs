//! openraft's own storage conformance suite (`openraft::testing::log::Suite`) run against the
//! write-ahead log store and the state machine adapter, each test on a fresh data dir.
//!
//! Checks the storage contract openraft relies on: log reads after append, truncation and
//! purge without holes, vote persistence, membership recovery, applied state, and snapshot
//! build / install / transfer.

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use redraft::raft::log_store::LogStore;
use redraft::raft::state_machine::StateMachineStore;
use redraft::raft::TypeConfig;
use tempfile::TempDir;

struct WalBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for WalBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("create temp dir");
        let log = LogStore::open(&dir.path().join("raft-log")).expect("open log store");
        let sm = StateMachineStore::open(&dir.path().join("snapshot")).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(WalBuilder).await
}
