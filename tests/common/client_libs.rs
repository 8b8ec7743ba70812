//! Real client libraries for black-box tests: redis-py (pip) and ioredis (npm), each installed
//! once, pinned, into `CARGO_TARGET_TMPDIR` (under `target/`) and reused by later runs; nothing
//! is installed system-wide. If python3/pip or node/npm is missing, or the registry cannot be
//! reached, the test fails saying what to run; it never skips.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The redis-py release the scripts are written against.
pub const REDIS_PY: &str = "redis==5.2.1";

/// The ioredis release the scripts are written against (the 5.x line most deployments run).
pub const IOREDIS: &str = "ioredis@5.9.3";

/// The Redlock release the lock test uses (the stable line; its scripts are Redlock's own).
pub const REDLOCK: &str = "redlock@4.2.0";

/// The node-redis release of the client-side cache test (its `clientSideCache`, 5.x).
pub const NODE_REDIS: &str = "redis@5.12.4";

/// Runs `cmd` to completion or kills it after `timeout`; stdout and stderr are captured.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
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

fn must_have(tool: &str, install: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is not installed: install it (`{install}`)");
}

/// Installs into a private staging directory, then renames it to `dir`: a concurrent run never
/// sees half an install. `install` fills the staging directory it is given.
fn install_once(dir: &Path, ready: &Path, install: impl FnOnce(&Path)) -> PathBuf {
    if ready.exists() {
        return dir.to_path_buf();
    }
    let base = dir.parent().expect("install dir has a parent");
    let staging = tempfile::Builder::new()
        .prefix("client-lib-")
        .tempdir_in(base)
        .expect("staging dir");
    install(staging.path());
    let staged = staging.keep();
    if std::fs::rename(&staged, dir).is_err() {
        // Another run installed it first.
        let _ = std::fs::remove_dir_all(&staged);
    }
    dir.to_path_buf()
}

/// Returns a directory to put on `PYTHONPATH` that holds the pinned redis-py.
pub fn must_redis_py() -> PathBuf {
    must_have("python3", "apt-get install python3 python3-pip");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("python-{}", REDIS_PY.replace("==", "-")));
    let ready = dir.join("redis").join("__init__.py");
    install_once(&dir, &ready, |staging| {
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
        .arg(staging)
        .arg(REDIS_PY);
        let out = run_bounded(cmd, Duration::from_secs(180));
        assert!(
            out.status.success(),
            "installing {REDIS_PY} failed; run `python3 -m pip install --target <dir> \
             {REDIS_PY}` to see why (needs pip and PyPI):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
}

/// Returns a `node_modules` directory (for `NODE_PATH`) that holds the pinned ioredis and
/// Redlock.
pub fn must_ioredis() -> PathBuf {
    must_npm_packages(&[IOREDIS, REDLOCK], "redlock")
}

/// Returns a `node_modules` directory (for `NODE_PATH`) that holds the pinned node-redis.
pub fn must_node_redis() -> PathBuf {
    must_npm_packages(&[NODE_REDIS], "redis")
}

/// Installs the pinned npm `packages` once into a directory named after them; `last` is the
/// package whose `package.json` marks the install complete. Returns its `node_modules`.
fn must_npm_packages(packages: &[&str], last: &str) -> PathBuf {
    must_have("node", "apt-get install nodejs npm");
    must_have("npm", "apt-get install npm");
    let name: Vec<String> = packages.iter().map(|p| p.replace('@', "-")).collect();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("node-{}", name.join("-")));
    let ready = dir.join("node_modules").join(last).join("package.json");
    let dir = install_once(&dir, &ready, |staging| {
        let mut cmd = Command::new("npm");
        cmd.args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--prefix",
        ])
        .arg(staging)
        .args(packages);
        let out = run_bounded(cmd, Duration::from_secs(300));
        let wanted = packages.join(" ");
        assert!(
            out.status.success(),
            "installing {wanted} failed; run `npm install --prefix <dir> {wanted}` to see why \
             (needs npm and the npm registry):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir.join("node_modules")
}

/// A command that runs `tests/testdata/<file>` with `program`: `python3` with the pinned
/// redis-py on `PYTHONPATH`, or `node` with the pinned ioredis and Redlock on `NODE_PATH`.
pub fn testdata_command(program: &str, file: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg(format!(
        "{}/tests/testdata/{file}",
        env!("CARGO_MANIFEST_DIR")
    ));
    if program == "python3" {
        cmd.env("PYTHONPATH", must_redis_py())
            .env("PYTHONDONTWRITEBYTECODE", "1");
    } else {
        cmd.env("NODE_PATH", must_ioredis());
    }
    cmd
}

/// Runs a client script that prints `ok` when every check passed: `Ok`, or why it failed.
pub fn run_ok_script(cmd: Command, timeout: Duration) -> Result<(), String> {
    let out = run_bounded(cmd, timeout);
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

/// Runs the `ok`-printing client script `tests/testdata/<file>` against `addr` (as `host
/// port`), with `program` as [`testdata_command`] runs it.
pub fn run_script_against(program: &str, file: &str, addr: &str) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = testdata_command(program, file);
    cmd.args([host, port]);
    run_ok_script(cmd, Duration::from_secs(120))
}
