//! Power loss against a real redraft node (`src/powercut.rs`): its data dir on lossyfs, N
//! acknowledged SETs, kill -9 plus every unsynced byte dropped, a restart, every key read back.
//!
//! - **DurableBeforeAck**: all N are there. Failed against the sled log, which never fsyncs
//!   (0 of 200 kept), and against the first WAL, whose `raft-log/` and `snapshot/` directory
//!   entries were never fsynced into the data dir (0 of 200 kept: DirEntryDurable).
//! - The control: with `REDRAFT_FAILPOINTS=log_sync_off` (the WAL skips its fsyncs) writes are
//!   lost, and the check must say so — proof that the check can fail. Against sled it is
//!   true as well (sled loses them without the failpoint).
//!
//! Needs root, `/dev/fuse`, and the redraft binary: `$REDRAFT_BIN`, else `target/debug/redraft`.

mod support;

use std::path::PathBuf;

use jepsen::powercut::{run, PowerCutOpts, PowerCutReport};
use support::redraft_bin;

/// The harness's cleanup registry is process-wide (a `Db` teardown kills every process it
/// registered), so the tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn power_cut(name: &str, failpoints: Option<&str>) -> Option<PowerCutReport> {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/dev/fuse").exists() {
        eprintln!("power-loss test: needs root and /dev/fuse; nothing checked");
        return None;
    }
    let run_dir = std::env::temp_dir().join(format!("powercut-{name}-{}", std::process::id()));
    let opts = PowerCutOpts {
        bin: redraft_bin(),
        lossyfs: PathBuf::from(env!("CARGO_BIN_EXE_lossyfs")),
        run_dir: run_dir.clone(),
        sets: 200,
        torn: false,
        failpoints: failpoints.map(String::from),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(run(&opts)).expect("the power-cut run");
    let _ = std::fs::remove_dir_all(run_dir);
    Some(report)
}

#[test]
fn every_acknowledged_set_survives_a_power_cut() {
    let Some(r) = power_cut("durable", None) else {
        return;
    };
    assert_eq!(r.acknowledged, 200);
    assert!(
        r.passed(),
        "kept {} of {} acknowledged SETs after a power cut; lost {:?}; the node had made {} \
         file and {} directory fsyncs; the cut dropped {}",
        r.kept,
        r.acknowledged,
        r.lost,
        r.disk_before["file_syncs"],
        r.disk_before["dir_syncs"],
        r.dropped
    );
}

#[test]
fn with_the_log_sync_off_a_power_cut_loses_acknowledged_sets() {
    let Some(r) = power_cut("control", Some("log_sync_off")) else {
        return;
    };
    assert_eq!(r.acknowledged, 200);
    assert!(
        r.kept < r.acknowledged,
        "the log skipped its fsyncs, yet all {} SETs survived the power cut: the check has no \
         teeth (disk before the cut: {}; dropped {})",
        r.acknowledged,
        r.disk_before,
        r.dropped
    );
}
