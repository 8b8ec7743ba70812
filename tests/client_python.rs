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

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::single::{RealRedis, Single};

/// The redis-py release the script is written against (supports `protocol=3`).
const REDIS_PY: &str = "redis==5.2.1";

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/testdata/redis_py_client.py"
);

/// Runs `cmd` to completion or kills it after `timeout`; stdout and stderr are captured.
fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{what} still running after {timeout:?}; killed. stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait_with_output")
}

/// Returns a directory holding the pinned redis-py, installing it with pip on first use.
fn must_redis_py() -> PathBuf {
    let version_ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        version_ok,
        "python3 is not installed: install it (`apt-get install python3 python3-pip`)"
    );
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let lib = base.join(format!("python-{}", REDIS_PY.replace("==", "-")));
    if lib.join("redis").join("__init__.py").exists() {
        return lib;
    }
    // Install into a private directory, then rename: a concurrent run never sees half of it.
    let staging = tempfile::Builder::new()
        .prefix("python-redis-")
        .tempdir_in(base)
        .expect("staging dir");
    let install = format!(
        "python3 -m pip install --disable-pip-version-check --target {} {REDIS_PY}",
        staging.path().display()
    );
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .env("PIP_ROOT_USER_ACTION", "ignore")
    .arg("--target")
    .arg(staging.path())
    .arg(REDIS_PY);
    let out = run_bounded(cmd, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "installing redis-py failed; run `{install}` to see why (needs pip and PyPI):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let staged = staging.keep();
    if std::fs::rename(&staged, &lib).is_err() {
        // Another run installed it first.
        let _ = std::fs::remove_dir_all(&staged);
    }
    lib
}

/// Runs the script against `addr` with `protocol`; returns why it failed, if it did.
fn run_script(lib: &Path, addr: &str, protocol: u8) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args([host, port, &protocol.to_string()])
        .env("PYTHONPATH", lib)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.trim() == "ok" {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}, stdout {stdout:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
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
