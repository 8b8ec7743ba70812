//! Backup and restore: `redraft backup` from a cluster under a write load, then
//! `redraft restore` into a fresh cluster (another name, other ports and data dirs), whose
//! revision, values and per-key metadata (GETMETA: create/mod revision, version) equal the
//! source's at the backup revision.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{phase, Cluster, LoadWriter, BIN};

const LEADER_TIMEOUT: Duration = Duration::from_secs(15);

fn revision(c: &Cluster, id: u64) -> u64 {
    let mut con = c.try_connect(id).unwrap();
    let v: Vec<redis::Value> = redis::cmd("REVISION").query(&mut con).unwrap();
    redis::from_redis_value(&v[1]).unwrap()
}

fn getmeta(con: &mut redis::Connection, key: &str) -> redis::Value {
    redis::cmd("GETMETA").arg(key).query(con).unwrap()
}

#[test]
fn backup_under_load_restores_into_a_fresh_cluster() {
    let mut src = Cluster::builder().name("source").start();
    src.must_leader(LEADER_TIMEOUT);
    for i in 0..50 {
        // Overwrites: keys with several versions, so history and versions matter.
        src.must_set(1, &format!("h{}", i % 10), &format!("x{i}"));
    }
    let writer = LoadWriter::start("b", vec![src.redis_addr(2), src.redis_addr(3)]);
    std::thread::sleep(Duration::from_millis(500));

    let file = src.dir().join("backup.bin");
    let out = {
        phase("redraft backup from node 1 while node 2 and 3 take writes");
        let out = Command::new(BIN)
            .args(["backup", "--from", &src.redis_addr(1), "--out"])
            .arg(&file)
            .output()
            .expect("run redraft backup");
        assert!(
            out.status.success(),
            "backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::thread::sleep(Duration::from_millis(300));
    let report = writer.finish();
    eprintln!("           {}", out.trim());
    let at: u64 = out
        .split("at revision ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {out:?}"));
    assert!(
        revision(&src, 1) > at,
        "the load kept writing after the backup"
    );

    let mut dst = Cluster::builder().name("restored").create();
    {
        phase("redraft restore into a new cluster's empty data dirs, then start it");
        let out = Command::new(BIN)
            .args(["restore", "--from"])
            .arg(&file)
            .arg("--config")
            .arg(dst.config_path())
            .output()
            .expect("run redraft restore");
        assert!(
            out.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dst.spawn_all();
        dst.must_leader(LEADER_TIMEOUT);
        assert_eq!(revision(&dst, 2), at);
    }

    {
        phase("values and GETMETA equal the source's for every key at the backup revision");
        let mut s = src.must_connect(1);
        let mut d = dst.must_connect(3);
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut d).unwrap();
        keys.sort();
        let mut present = 0;
        for k in &keys {
            // A key changed after the backup revision would differ; none is (each load key is
            // written once, the h* keys before the backup).
            let want = getmeta(&mut s, k);
            assert_eq!(getmeta(&mut d, k), want, "GETMETA {k}");
            present += 1;
        }
        // Everything acknowledged before the backup started is in it: the h* keys, and the
        // load keys up to the highest one present (the load writes keys in order).
        for i in 0..10 {
            assert!(keys.contains(&format!("h{i}")));
        }
        let acked_in_backup = report
            .acked
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .count();
        eprintln!(
            "           {present} keys restored; {acked_in_backup} of {} acked load writes",
            report.acked.len()
        );
        assert!(acked_in_backup > 0);
        // One applied index: the acknowledged load writes in the backup are a prefix of them.
        assert!(
            report.acked[..acked_in_backup]
                .iter()
                .all(|(k, _)| keys.contains(k)),
            "the backup is not a prefix of the acknowledged writes"
        );

        phase("the restored cluster takes writes and refuses a second restore");
        dst.must_set(1, "after", "restore");
        let again = Command::new(BIN)
            .args(["restore", "--from"])
            .arg(&file)
            .arg("--config")
            .arg(dst.config_path())
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already in use"));
    }

    {
        phase("a backup with one flipped bit in a value is refused, naming the file");
        // BackupChecksummed: before the checksum this restored the damaged value as a success.
        let bytes = std::fs::read(&file).unwrap();
        let at = bytes
            .windows(2)
            .rposition(|w| w == b"x4")
            .expect("a value of the h* keys in the backup");
        let mut damaged = bytes.clone();
        damaged[at + 1] ^= 1;
        let bad = src.dir().join("damaged.bin");
        std::fs::write(&bad, &damaged).unwrap();
        let fresh = Cluster::builder().name("damaged").create();
        let out = Command::new(BIN)
            .args(["restore", "--from"])
            .arg(&bad)
            .arg("--config")
            .arg(fresh.config_path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{}: ", bad.display())) && stderr.contains("checksum"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
