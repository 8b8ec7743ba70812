//! The cluster's names, configuration, certificates and namespaces, against real `ip` and
//! `iptables` where the machine allows.

use super::cleanup::owner_alive;
use super::*;

#[test]
fn owner_pid_reads_only_harness_names() {
    assert_eq!(owner_pid("rdjp1234n1"), Some(1234));
    assert_eq!(owner_pid("rdjp99b"), Some(99));
    assert_eq!(owner_pid("rdjp1234"), None);
    assert_eq!(owner_pid("rdjpn1"), None);
    assert_eq!(owner_pid("eth0"), None);
    assert_eq!(owner_pid("docker0"), None);
}

/// SweepOnlyTheDead: a live process of any binary owns its names (this test binary is one:
/// the jepsen tests run the harness in-process); a reaped or zombie process does not.
#[test]
fn only_a_dead_owner_is_swept() {
    assert!(owner_alive(std::process::id()));
    assert!(!owner_alive(0));
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    assert!(owner_alive(pid));
    child.kill().unwrap();
    // Killed but not yet reaped: a zombie, whose leftovers must be swept.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while owner_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!owner_alive(pid), "a killed, unreaped child is a zombie");
    child.wait().unwrap();
    assert!(!owner_alive(pid));
}

#[test]
fn peer_tls_gives_every_node_its_certificate_and_the_ca() {
    let opts = DbOpts {
        bin: "redraft".into(),
        nodes: 2,
        run_dir: "/tmp/x".into(),
        netns: false,
        heartbeat_ms: 50,
        election_timeout_ms: 500,
        write_timeout_ms: 5000,
        snapshot_every: 1000,
        read_mode: "lease".into(),
        peer_tls: true,
        clock: None,
        history_revisions: None,
        lossyfs: None,
        env: Vec::new(),
    };
    let nodes: Vec<NodeInfo> = (1..=2)
        .map(|id| NodeInfo {
            id,
            ip: "127.0.0.1".into(),
            redis_addr: format!("127.0.0.1:{}", 6000 + id),
            raft_addr: format!("127.0.0.1:{}", 7000 + id),
            ns: None,
            data_dir: format!("/tmp/x/n{id}").into(),
            log: format!("/tmp/x/n{id}.log").into(),
        })
        .collect();
    let text = render_config("j2", &opts, &nodes);
    assert!(
        text.contains("tls_cert_file = \"/tmp/x/certs/node2.crt\""),
        "{text}"
    );
    assert!(
        text.contains("tls_key_file = \"/tmp/x/certs/node1.key\""),
        "{text}"
    );
    assert!(
        text.contains("[tls]\npeers = true\nca_cert_file = \"/tmp/x/certs/ca.crt\""),
        "{text}"
    );
}

#[test]
fn config_names_every_node_and_the_read_mode() {
    let opts = DbOpts {
        bin: "redraft".into(),
        nodes: 3,
        run_dir: "/tmp/x".into(),
        netns: false,
        heartbeat_ms: 50,
        election_timeout_ms: 500,
        write_timeout_ms: 1000,
        snapshot_every: 500,
        read_mode: "stale".into(),
        peer_tls: false,
        clock: None,
        history_revisions: None,
        lossyfs: None,
        env: Vec::new(),
    };
    let nodes: Vec<NodeInfo> = (1..=3)
        .map(|id| NodeInfo {
            id,
            ip: format!("10.231.7.{id}"),
            redis_addr: format!("10.231.7.{id}:6379"),
            raft_addr: format!("10.231.7.{id}:7000"),
            ns: None,
            data_dir: format!("/tmp/x/node{id}").into(),
            log: format!("/tmp/x/node{id}.log").into(),
        })
        .collect();
    let text = render_config("j1", &opts, &nodes);
    assert_eq!(text.matches("[[node]]").count(), 3);
    assert!(text.contains("redis_addr = \"10.231.7.2:6379\""), "{text}");
    assert!(text.contains("read_mode = \"stale\""), "{text}");
    assert!(text.contains("election_timeout_ms = 500"), "{text}");
}

/// A real namespace round trip when run as root with the tools installed: set up two
/// "nodes" without starting redraft, cut them, check the rules, heal, tear down, and see
/// that nothing with our pid is left. Without root it checks that it is refused.
#[test]
fn namespaces_partition_heal_and_clean_up() {
    if let Err(why) = netns_available() {
        eprintln!("netns unavailable ({why}); checking the refusal path only");
        return;
    }
    let dir = std::env::temp_dir().join(format!("jepsen-db-test-{}", std::process::id()));
    let opts = DbOpts {
        bin: "/bin/true".into(),
        nodes: 3,
        run_dir: dir.clone(),
        netns: true,
        heartbeat_ms: 50,
        election_timeout_ms: 500,
        write_timeout_ms: 1000,
        snapshot_every: 500,
        read_mode: "linearizable".into(),
        peer_tls: false,
        clock: None,
        history_revisions: None,
        lossyfs: None,
        env: Vec::new(),
    };
    let mut db = Db::setup(opts).expect("setup");
    db.partition(&[(1, 2)]).expect("partition");
    let rules = db.rules(1).unwrap();
    assert!(
        rules.contains(&format!("-A INPUT -s {}/32 -j DROP", db.nodes[1].ip)),
        "{rules}"
    );
    assert!(db.rules(3).unwrap().lines().all(|l| !l.contains("DROP")));
    db.heal_network().unwrap();
    assert!(!db.rules(1).unwrap().contains("DROP"));
    let pid = std::process::id().to_string();
    drop(db);
    let left = run(Command::new("ip").args(["netns", "list"])).unwrap();
    assert!(!left.contains(&format!("{PREFIX}{pid}n")), "left: {left}");
    let links = run(Command::new("ip").args(["-o", "link", "show"])).unwrap();
    assert!(!links.contains(&format!("{PREFIX}{pid}")), "left: {links}");
    let _ = fs::remove_dir_all(dir);
}
