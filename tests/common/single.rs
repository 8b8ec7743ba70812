//! A single-node `redraft` process and a real `redis-server`, side by side, for command tests
//! and differential tests (the same command script against both must give the same replies).
//!
//! Both are killed on drop. Every wait is bounded and panics with the process's log tail.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{connect_with_password, file_tail, free_ports, spawn_node_env, strip_ansi};

/// How long a server may take to answer PING after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A single-node redraft store on an ephemeral port.
pub struct Single {
    dir: TempDir,
    child: Child,
    pub addr: String,
    pub port: u16,
    log: PathBuf,
    /// The `requirepass` the node was started with, if any.
    password: Option<String>,
    /// What [`Single::restart`] spawns again: the config file and the environment.
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl Single {
    /// Starts a single-node store with default settings.
    pub fn start() -> Single {
        Single::start_with("")
    }

    /// Starts a single-node store; `extra` is appended to the generated `cluster.toml` (e.g.
    /// `"[server]\nrequirepass = \"pw\"\n"`).
    pub fn start_with(extra: &str) -> Single {
        Single::start_inner(extra, None, &[])
    }

    /// Like [`Single::start_with`], with `env` added to the process's environment (e.g. a
    /// failpoint in `REDRAFT_FAILPOINTS`).
    pub fn start_with_env(extra: &str, env: &[(String, String)]) -> Single {
        Single::start_inner(extra, None, env)
    }

    /// Starts a single-node store with `requirepass` set to `password` (readiness and
    /// [`Single::must_connect`] authenticate with it); `extra` as for [`Single::start_with`],
    /// without a `[server]` section.
    pub fn start_with_password(password: &str, extra: &str) -> Single {
        let extra = format!("[server]\nrequirepass = \"{password}\"\n{extra}");
        Single::start_inner(&extra, Some(password), &[])
    }

    fn start_inner(extra: &str, password: Option<&str>, env: &[(String, String)]) -> Single {
        let dir = tempfile::Builder::new()
            .prefix("redraft-single-")
            .tempdir()
            .expect("tempdir");
        let ports = free_ports(2);
        let config = dir.path().join("cluster.toml");
        let toml = format!(
            "[cluster]\nname = \"single\"\n\n[[node]]\nid = 1\nraft_addr = \"127.0.0.1:{}\"\n\
             redis_addr = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n\n{extra}",
            ports[0],
            ports[1],
            dir.path().join("node1").display()
        );
        std::fs::write(&config, toml).expect("write cluster.toml");
        let log = dir.path().join("node1.log");
        let child = spawn_node_env(&config, 1, &log, &[], env);
        let mut s = Single {
            dir,
            child,
            addr: format!("127.0.0.1:{}", ports[1]),
            port: ports[1],
            log,
            password: password.map(str::to_string),
            config,
            env: env.to_vec(),
        };
        s.must_ready();
        s
    }

    /// Kills the node (kill -9) and starts it again on the same data dir and config; returns
    /// once it leads again.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_node_env(&self.config, 1, &self.log, &[], &self.env);
        self.must_ready();
    }

    /// Waits until the node answers PING and is the leader of its one-node cluster.
    fn must_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("redraft exited at start ({status}):\n{}", self.log_tail());
            }
            match connect_with_password(
                &self.addr,
                self.password.as_deref(),
                Duration::from_secs(1),
            )
            .and_then(|mut c| {
                redis::cmd("ROLE")
                    .query::<redis::Value>(&mut c)
                    .map_err(|e| e.to_string())
            }) {
                Ok(v) if format!("{v:?}").contains("master") => return,
                Ok(v) => last = format!("ROLE = {v:?}"),
                Err(e) => last = e,
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "single node at {} not ready within {START_TIMEOUT:?} ({last}):\n{}",
            self.addr,
            self.log_tail()
        );
    }

    /// A connected client (RESP2), or a panic with the log tail.
    pub fn must_connect(&self) -> redis::Connection {
        connect_with_password(&self.addr, self.password.as_deref(), Duration::from_secs(5))
            .unwrap_or_else(|e| {
                panic!("connect to redraft {}: {e}\n{}", self.addr, self.log_tail())
            })
    }

    pub fn log_tail(&self) -> String {
        file_tail(&self.log, 40)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The node's process id (for RSS checks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Single {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "redraft single node log ({}):\n{}",
                self.log.display(),
                strip_ansi(&file_tail(&self.log, 80))
            );
        }
    }
}

/// A real `redis-server` (Debian's) with no persistence, on an ephemeral port.
pub struct RealRedis {
    _dir: TempDir,
    child: Child,
    pub addr: String,
    pub port: u16,
    /// The `--requirepass` it was started with, if any.
    password: Option<String>,
}

impl RealRedis {
    /// Starts `redis-server`; panics saying how to install it when it is missing (tests that
    /// need it never skip silently).
    pub fn start() -> RealRedis {
        RealRedis::start_with_args(&[])
    }

    /// Starts `redis-server` with `requirepass` set to `password`.
    pub fn start_with_password(password: &str) -> RealRedis {
        RealRedis::start_with_args(&["--requirepass", password])
    }

    /// Starts `redis-server` with `extra` command-line settings appended (e.g.
    /// `["--requirepass", "pw"]`).
    pub fn start_with_args(extra: &[&str]) -> RealRedis {
        let password = extra
            .iter()
            .position(|&a| a == "--requirepass")
            .and_then(|i| extra.get(i + 1))
            .map(|pw| pw.to_string());
        let dir = tempfile::Builder::new()
            .prefix("redis-real-")
            .tempdir()
            .expect("tempdir");
        let port = free_ports(1)[0];
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): install it with `apt-get install redis-server`"
                )
            });
        let r = RealRedis {
            _dir: dir,
            child,
            addr: format!("127.0.0.1:{port}"),
            port,
            password,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if connect_with_password(&r.addr, r.password.as_deref(), Duration::from_secs(1)).is_ok()
            {
                return r;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server on {} did not answer PING within {START_TIMEOUT:?}",
            r.addr
        );
    }

    pub fn must_connect(&self) -> redis::Connection {
        connect_with_password(&self.addr, self.password.as_deref(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to redis-server {}: {e}", self.addr))
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
