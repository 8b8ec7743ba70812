//! FailStop: a node whose log flush fails stops rather than lie.
//!
//! With the failpoint `REDRAFT_FAILPOINTS=log_flush_fail_after=N`, every log flush after the
//! N-th fails. The node must not acknowledge the write whose flush failed, and the process
//! must exit (status 3, saying raft stopped) instead of going on answering clients.

use crate::common;

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{connect, free_ports, BIN};

#[test]
fn failed_flush_is_not_acknowledged_and_the_node_exits() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let config = dir.path().join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"failstop\"\n[[node]]\nid = 1\nraft_addr = \"127.0.0.1:{}\"\n\
             redis_addr = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n[server]\nwrite_timeout_ms = 2000\n",
            ports[0],
            ports[1],
            dir.path().join("node1").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("node1.log");
    let mut child = Command::new(BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--node",
            "1",
            "--log",
            "info",
        ])
        // Enough flushes to initialise, elect and take some writes; then the disk "dies".
        .env("REDRAFT_FAILPOINTS", "log_flush_fail_after=30")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{}", ports[1]);

    let mut con = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match connect(&addr, Duration::from_secs(1)) {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("node never answered: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    };

    // Write until a write fails. Every acknowledged write happened before the failure.
    let mut acked = 0u32;
    let mut failed = None;
    for i in 0..1000u32 {
        let r: redis::RedisResult<String> = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con);
        match r {
            Ok(ok) => {
                assert_eq!(ok, "OK");
                acked += 1;
            }
            Err(e) => {
                failed = Some((i, e.to_string()));
                break;
            }
        }
    }
    let (at, err) = failed.expect("a write must fail once flushes fail");
    assert!(acked > 0, "some writes succeed before the failpoint");
    eprintln!("{acked} writes acknowledged; write {at} failed with: {err}");

    // The process exits by itself, with status 3.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "node still running 20 s after a failed flush:\n{}",
                common::file_tail(&log, 30)
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    let text = common::strip_ansi(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(status.code(), Some(3), "exit status; log:\n{text}");
    assert!(text.contains("raft stopped"), "log says why:\n{text}");
    assert!(
        text.contains("flush failed"),
        "log names the flush:\n{text}"
    );
}
