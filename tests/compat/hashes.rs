//! Hashes against real Redis and through real clients.
//!
//! - A differential test: `testdata/hashes_differential.txt` (every hash command with its
//!   error cases, WRONGTYPE both ways, TTLs and RENAME on hashes, HSCAN and HRANDFIELD shapes,
//!   hashes in MULTI and in scripts) runs against a single-node redraft and a real
//!   `redis-server`, and every reply must be identical.
//! - History and watch on hashes: each write is one revision of the key; `HISTORY`/`GETAT`
//!   answer a hash's fields; the watch stream names the changed fields.
//! - redis-py's `hset(mapping=...)`/`hgetall` through a follower of a three-node cluster.

use crate::common;
use crate::strings_differential::differential;

use common::phase;
use common::single::{RealRedis, Single};

#[test]
fn hash_replies_match_real_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let (mut ours, mut theirs) = (node.must_connect(), redis.must_connect());
    let script = include_str!("../testdata/hashes_differential.txt");
    let (compared, mismatches) = differential(&mut ours, &mut theirs, script);
    assert!(compared > 220, "the script ran only {compared} commands");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} replies differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    phase("RESP3: HGETALL is a map, HRANDFIELD WITHVALUES an array of pairs");
    let resp3 = "HELLO 3\nHSET r3 f v\nHGETALL r3\nHRANDFIELD r3 -2 WITHVALUES\n\
                 HRANDFIELD r3 1 WITHVALUES\nHRANDFIELD r3 -1";
    let mut lines = resp3.lines();
    let hello = lines.next().expect("HELLO line");
    for con in [&mut ours, &mut theirs] {
        redis::cmd("HELLO")
            .arg(&hello[6..])
            .query::<redis::Value>(con)
            .expect("HELLO 3");
    }
    let (compared, mismatches) = differential(
        &mut ours,
        &mut theirs,
        &lines.collect::<Vec<_>>().join("\n"),
    );
    assert_eq!(compared, 5);
    assert!(
        mismatches.is_empty(),
        "RESP3 replies differ:\n{}",
        mismatches.join("\n")
    );
}
