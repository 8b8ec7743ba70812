//! The `redraft` binary refuses bad input before it starts, and a peer of another cluster.
//!
//! Checks that each bad invocation exits with status 2 and a stderr line naming the problem:
//! malformed TOML, unknown fields (top level and `[[node]]`), a duplicate node id, a `--node`
//! missing from the file, `--config` without `--node`, and a data dir that belongs to another
//! cluster or another node (OwnedDataDir). `--help` exits 0 and lists the flags. Finally, a
//! process of cluster "b" pointed at cluster "a"'s raft addresses is refused by a's nodes
//! (`refused peer ... cluster "b"`), cannot disturb a's leader or term, and never leads.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{file_tail, free_ports, phase, spawn_node, Cluster, BIN};

/// Runs the binary with `args`; panics if it is still running after 10 s (it started instead
/// of refusing).
fn must_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "redraft {args:?} was still running after 10 s; want it to refuse and exit 2. \
                 stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the binary and checks it exits 2 with every one of `want` in its stderr.
fn must_refuse(args: &[&str], want: &[&str]) {
    let out = must_exit(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "redraft {args:?}: want exit status 2, got {}; stderr:\n{stderr}",
        out.status
    );
    for w in want {
        assert!(
            stderr.contains(w),
            "redraft {args:?}: stderr does not contain {w:?}; stderr:\n{stderr}"
        );
    }
}

/// A valid three-node config of cluster `name` whose data dirs live under `dir`.
fn config_text(name: &str, dir: &Path) -> String {
    let ports = free_ports(6);
    let mut text = format!("[cluster]\nname = \"{name}\"\n");
    for id in 1..=3u64 {
        let i = 2 * (id as usize - 1);
        let data = dir.join(format!("node{id}")).display().to_string();
        text.push_str(&format!(
            "\n[[node]]\nid = {id}\nraft_addr = \"127.0.0.1:{}\"\nredis_addr = \"127.0.0.1:{}\"\n\
             data_dir = {data:?}\n",
            ports[i],
            ports[i + 1]
        ));
    }
    text.push_str("\n[raft]\nheartbeat_ms = 50\nelection_timeout_ms = 300\n");
    text
}

/// Writes `text` to `dir/name` and returns the path as a string.
fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).expect("write config");
    path.display().to_string()
}

#[test]
fn help_lists_the_flags() {
    let out = must_exit(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--help exited {}: {stdout}",
        out.status
    );
    for flag in ["--config", "--node", "--log"] {
        assert!(
            stdout.contains(flag),
            "--help does not mention {flag}:\n{stdout}"
        );
    }
}

#[test]
fn refuses_malformed_config() {
    let tmp = tempfile::tempdir().unwrap();
    let good = config_text("a", tmp.path());

    {
        phase("malformed TOML: the line is named");
        let path = write_config(tmp.path(), "broken.toml", "[cluster\nname = \"a\"\n");
        must_refuse(
            &["--config", &path, "--node", "1"],
            &["redraft: invalid config", "line 1"],
        );
    }
    {
        phase("an unknown field at the top level");
        let path = write_config(tmp.path(), "top.toml", &format!("verbose = true\n{good}"));
        must_refuse(
            &["--config", &path, "--node", "1"],
            &["redraft: invalid config", "unknown field `verbose`"],
        );
    }
    {
        phase("an unknown field inside [[node]]");
        let text = good.replacen("id = 2\n", "id = 2\nredis_port = 6382\n", 1);
        let path = write_config(tmp.path(), "node.toml", &text);
        must_refuse(
            &["--config", &path, "--node", "1"],
            &["redraft: invalid config", "unknown field `redis_port`"],
        );
    }
    {
        phase("a duplicate node id");
        let path = write_config(
            tmp.path(),
            "dup.toml",
            &good.replacen("id = 3", "id = 2", 1),
        );
        must_refuse(
            &["--config", &path, "--node", "1"],
            &["redraft: ", "node[2].id", "duplicate node id 2"],
        );
    }
    {
        phase("--node that is not in the file");
        let path = write_config(tmp.path(), "good.toml", &good);
        must_refuse(
            &["--config", &path, "--node", "9"],
            &["redraft: node id 9 is not in the config (ids: 1, 2, 3)"],
        );
    }
    {
        phase("--config without --node");
        let path = write_config(tmp.path(), "good.toml", &good);
        must_refuse(&["--config", &path], &["--node"]);
    }
    {
        phase("a missing config file");
        let path = tmp.path().join("absent.toml").display().to_string();
        must_refuse(
            &["--config", &path, "--node", "1"],
            &["redraft: cannot read", "absent.toml"],
        );
    }
    assert!(
        !tmp.path().join("node1").exists(),
        "a refused config must not create a data dir"
    );
}

#[test]
fn refuses_data_dir_of_another_cluster_or_node() {
    let tmp = tempfile::tempdir().unwrap();

    {
        phase("node 1 of cluster \"a\" starts once and claims its data dir");
        let ports = free_ports(2);
        let data = tmp.path().join("shared");
        let text = format!(
            "[cluster]\nname = \"a\"\n\n[[node]]\nid = 1\nraft_addr = \"127.0.0.1:{}\"\n\
             redis_addr = \"127.0.0.1:{}\"\ndata_dir = {:?}\n",
            ports[0],
            ports[1],
            data.display().to_string()
        );
        let path = write_config(tmp.path(), "a.toml", &text);
        let log = tmp.path().join("a.log");
        let mut child = spawn_node(Path::new(&path), 1, &log);
        let deadline = Instant::now() + Duration::from_secs(10);
        let started = loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("node started") {
                break true;
            }
            if Instant::now() >= deadline || child.try_wait().ok().flatten().is_some() {
                break false;
            }
            thread::sleep(Duration::from_millis(50));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            started,
            "node 1 of cluster a did not log `node started` within 10 s:\n{}",
            file_tail(&log, 40)
        );

        phase("cluster \"b\" on the same data dir is refused");
        let b = write_config(
            tmp.path(),
            "b.toml",
            &text.replace("name = \"a\"", "name = \"b\""),
        );
        must_refuse(
            &["--config", &b, "--node", "1"],
            &[
                "redraft: data dir",
                "belongs to cluster \"a\" node 1, not to cluster \"b\" node 1",
            ],
        );
    }

    {
        phase("node 1 on a data dir whose IDENTITY names node 2 is refused");
        let good = config_text("a", tmp.path());
        let dir = tmp.path().join("node1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("IDENTITY"),
            "# Written by redraft when this node first started. Do not edit.\n\
             cluster = \"a\"\nnode_id = 2\nformat = 1\n",
        )
        .unwrap();
        let path = write_config(tmp.path(), "a3.toml", &good);
        must_refuse(
            &["--config", &path, "--node", "1"],
            &["belongs to cluster \"a\" node 2, not to cluster \"a\" node 1"],
        );
    }
}

/// What a node of cluster "a" logs when node 1 of cluster "b" dials it.
const REFUSAL: &str = "refused peer node 1 of cluster \"b\": this node belongs to cluster \"a\"";

#[test]
fn refuses_a_peer_of_another_cluster() {
    let mut a = Cluster::builder().name("a").start();
    let (leader, term) = {
        phase("cluster a elects a leader");
        let leader = a.must_leader(Duration::from_secs(20));
        a.must_set(leader, "k", "v");
        (leader, a.must_raft_u64(leader, "raft_term"))
    };

    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("b1.log");
    let (mut b1, b1_addr) = {
        phase("start node 1 of cluster b, whose peers 2 and 3 are cluster a's nodes 2 and 3");
        let ports = free_ports(2);
        let mut text = format!(
            "[cluster]\nname = \"b\"\n\n[[node]]\nid = 1\nraft_addr = \"127.0.0.1:{}\"\n\
             redis_addr = \"127.0.0.1:{}\"\ndata_dir = {:?}\n",
            ports[0],
            ports[1],
            tmp.path().join("b1").display().to_string()
        );
        for id in [2, 3] {
            text.push_str(&format!(
                "\n[[node]]\nid = {id}\nraft_addr = {:?}\nredis_addr = {:?}\ndata_dir = {:?}\n",
                a.raft_addr(id),
                a.redis_addr(id),
                tmp.path().join(format!("b{id}")).display().to_string()
            ));
        }
        text.push_str("\n[raft]\nheartbeat_ms = 50\nelection_timeout_ms = 300\n");
        let path = write_config(tmp.path(), "b.toml", &text);
        let addr = format!("127.0.0.1:{}", ports[1]);
        (spawn_node(Path::new(&path), 1, &log), addr)
    };

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        {
            phase("cluster a's nodes 2 and 3 refuse b's node 1 by cluster name");
            let what = "the refusal of b's node 1 in the logs of a's nodes 2 and 3";
            a.must_wait(Duration::from_secs(20), what, |a| {
                let missing: Vec<u64> = [2, 3]
                    .into_iter()
                    .filter(|&id| !a.log_contains(id, REFUSAL))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("not yet in the logs of nodes {missing:?}"))
                }
            });
        }

        {
            phase("for 3 s (5+ election rounds of b) a keeps leader and term; b never leads");
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                if let Ok(mut con) = common::connect(&b1_addr, Duration::from_millis(500)) {
                    if let Ok(role) = common::try_role(&mut con) {
                        if role == "master" {
                            a.fail("b's node 1 says ROLE master with no peer of its own cluster");
                        }
                    }
                }
                for id in a.ids() {
                    let t = a.must_raft_u64(id, "raft_term");
                    if t != term {
                        a.fail(&format!(
                            "node {id} of a: raft_term {t}, was {term} before b"
                        ));
                    }
                }
                let now = a.must_leader(Duration::from_secs(5));
                if now != leader {
                    a.fail(&format!(
                        "a's leader moved from {leader} to {now} while b ran"
                    ));
                }
                thread::sleep(Duration::from_millis(100));
            }
            a.must_set(leader, "k", "still-served");
            if let Ok(Some(status)) = b1.try_wait() {
                panic!("b's node 1 exited ({status}); it should keep trying and be refused");
            }
        }
    }));
    let _ = b1.kill();
    let _ = b1.wait();
    if let Err(e) = result {
        eprintln!("----- b's node 1 log tail -----\n{}", file_tail(&log, 40));
        std::panic::resume_unwind(e);
    }
}

/// SecretOffLoopback: a cluster whose peer port is reachable from other hosts refuses to start
/// without a secret, naming the field and how to make one; `redraft gen-secret` makes one.
#[test]
fn refuses_a_cluster_off_loopback_without_a_secret_and_generates_one() {
    let tmp = tempfile::tempdir().unwrap();
    let text = config_text("a", tmp.path()).replacen(
        "raft_addr = \"127.0.0.1:",
        "raft_addr = \"10.231.250.1:",
        1,
    );
    let path = write_config(tmp.path(), "open.toml", &text);
    must_refuse(
        &["--config", &path, "--node", "2"],
        &[
            "cluster.secret",
            "is required",
            "not a loopback address",
            "redraft gen-secret",
        ],
    );
    assert!(
        !tmp.path().join("node2").exists(),
        "the refused node created its data dir"
    );

    let secrets: Vec<String> = (0..2)
        .map(|_| {
            let out = must_exit(&["gen-secret"]);
            assert!(out.status.success(), "gen-secret exited {}", out.status);
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .collect();
    for s in &secrets {
        assert_eq!(s.len(), 64, "{s:?}");
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{s:?}");
    }
    assert_ne!(secrets[0], secrets[1], "two secrets are the same");
}

/// A TLS handshake between node `id`'s certificate (as server) and node `other`'s (as client),
/// both checked against `dir/ca.crt` the way peers check each other: `Ok` or rustls's reason.
fn peer_handshake(cfg: &redraft::config::ClusterConfig, id: u64, other: u64) -> Result<(), String> {
    use redraft::tls::TlsContext;
    let server = TlsContext::load(cfg, cfg.node(id).unwrap())
        .map_err(|e| e.to_string())?
        .expect("tls");
    let client = TlsContext::load(cfg, cfg.node(other).unwrap())
        .map_err(|e| e.to_string())?
        .expect("tls");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let acceptor = server.peer_acceptor().unwrap();
        let accepted = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            acceptor
                .accept(s)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = redraft::tls::peer_server_name(&addr).unwrap();
        let dialled = client.peer_connector().unwrap().connect(name, tcp).await;
        dialled.map_err(|e| e.to_string())?;
        accepted.await.unwrap()
    })
}

#[test]
fn redraft_cert_makes_a_clusters_certificates_and_reuses_its_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let mut text = config_text("certs", dir.path());
    for id in 1..=3 {
        let line = format!("node{id}\"\n");
        let with = format!(
            "{line}tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            certs.join(format!("node{id}.crt")).display().to_string(),
            certs.join(format!("node{id}.key")).display().to_string()
        );
        text = text.replacen(&line, &with, 1);
    }
    text.push_str(&format!(
        "\n[tls]\npeers = true\nca_cert_file = {:?}\n",
        certs.join("ca.crt").display().to_string()
    ));
    let config = write_config(dir.path(), "cluster.toml", &text);

    phase("a node whose certificate is missing refuses to start, naming the file");
    must_refuse(
        &["--config", &config, "--node", "1"],
        &["TLS: tls-cert-file", "node1.crt"],
    );

    phase("redraft cert writes the CA, every node's pair and a client pair");
    let out = must_exit(&[
        "cert",
        "--config",
        &config,
        "--out",
        &certs.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "ca.crt",
        "ca.key",
        "node1.crt",
        "node2.key",
        "node3.crt",
        "client.key",
    ] {
        assert!(certs.join(f).exists(), "{f} missing");
    }
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "node1.key", "client.key"] {
            let mode = fs::metadata(certs.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key} is private");
        }
    }
    let cfg = redraft::config::ClusterConfig::from_file(Path::new(&config)).unwrap();
    peer_handshake(&cfg, 1, 2).expect("node 2 dials node 1");

    phase("run again: the CA is reused, new node certificates chain to the old ca.crt");
    let ca_before = fs::read(certs.join("ca.crt")).unwrap();
    let node_before = fs::read(certs.join("node1.crt")).unwrap();
    let out = must_exit(&[
        "cert",
        "--config",
        &config,
        "--out",
        &certs.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reused the CA"));
    assert_eq!(fs::read(certs.join("ca.crt")).unwrap(), ca_before);
    assert_ne!(fs::read(certs.join("node1.crt")).unwrap(), node_before);
    peer_handshake(&cfg, 3, 1).expect("node 1 dials node 3 with the new certificates");

    phase("a node certificate from another CA fails the handshake");
    let other = dir.path().join("other");
    let out = must_exit(&[
        "cert",
        "--config",
        &config,
        "--out",
        &other.display().to_string(),
    ]);
    assert!(out.status.success());
    fs::copy(other.join("node2.crt"), certs.join("node2.crt")).unwrap();
    fs::copy(other.join("node2.key"), certs.join("node2.key")).unwrap();
    let refused = peer_handshake(&cfg, 2, 1).expect_err("node 2's certificate is another CA's");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
}
