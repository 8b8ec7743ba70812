//! The single-node harness itself, and the embedded-default shape of a one-node store: it
//! elects itself, takes a write and reads it back; a real redis-server answers the same.

use crate::common;

use common::single::{RealRedis, Single};

#[test]
fn single_node_and_real_redis_agree_on_set_get() {
    let node = Single::start();
    let redis = RealRedis::start();
    for mut con in [node.must_connect(), redis.must_connect()] {
        let ok: String = redis::cmd("SET")
            .arg("k")
            .arg("v\0binary")
            .query(&mut con)
            .unwrap();
        assert_eq!(ok, "OK");
        let got: Vec<u8> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(got, b"v\0binary");
        let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut con).unwrap();
        assert_eq!(missing, None);
    }
}
