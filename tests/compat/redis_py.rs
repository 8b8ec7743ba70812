//! redis-py, the most used Python client, against redraft unchanged: the script
//! `tests/testdata/redis_py_client.py` (set/get/incr/mget/scan_iter/pipeline, binary values,
//! an error reply) in RESP2 and RESP3 (`protocol=3`), run against a real `redis-server` first so
//! the script is known to be right, then against a single-node redraft.
//!
//! redis-py is installed once, pinned, with pip into `CARGO_TARGET_TMPDIR` (under `target/`),
//! and reused by later runs; nothing is installed system-wide. This runs in CI: PyPI is
//! reachable there. If python3 or pip is missing, or PyPI cannot be reached, the test fails
//! with the command to run; it never skips.
//!
//! Needs INCR, INCRBY, MGET and SCAN (string/key commands branch) and, for RESP3, HELLO 3
//! (connection branch).

use crate::common;
use crate::common::client_libs;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use client_libs::{must_redis_py, run_ok_script};
use common::single::{RealRedis, Single};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/testdata/redis_py_client.py"
);

/// Runs the script against `addr` with `protocol`; returns why it failed, if it did.
fn run_script(lib: &Path, addr: &str, protocol: u8) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args([host, port, &protocol.to_string()])
        .env("PYTHONPATH", lib)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_ok_script(cmd, Duration::from_secs(60))
}

#[test]
fn redis_py_resp2_and_resp3() {
    let lib = must_redis_py();
    let (node, redis) = (Single::start(), RealRedis::start());
    for protocol in [2, 3] {
        if let Err(e) = run_script(&lib, &redis.addr, protocol) {
            panic!("the script fails against redis-server itself (RESP{protocol}): {e}");
        }
    }
    let failures: Vec<String> = [2, 3]
        .into_iter()
        .filter_map(|protocol| {
            run_script(&lib, &node.addr, protocol)
                .err()
                .map(|e| format!("[redraft, RESP{protocol}] {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
