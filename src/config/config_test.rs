//! The schema and validation of `cluster.toml`: what parses, what is refused and how the
//! refusal names its field.

use std::path::Path;

use super::*;

mod sections;
mod tls;

const CLUSTER_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cluster.toml");

/// A valid three-node config; tests append to or edit it.
const BASE: &str = r#"
[cluster]
name = "demo"

[[node]]
id = 1
raft_addr = "127.0.0.1:7101"
redis_addr = "127.0.0.1:6381"
data_dir = "data/node1"

[[node]]
id = 2
raft_addr = "127.0.0.1:7102"
redis_addr = "127.0.0.1:6382"
data_dir = "data/node2"

[[node]]
id = 3
raft_addr = "127.0.0.1:7103"
redis_addr = "127.0.0.1:6383"
data_dir = "data/node3"
"#;

fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
    ClusterConfig::parse(text, Path::new("test.toml"))
}

fn must_parse(text: &str) -> ClusterConfig {
    parse(text).unwrap_or_else(|e| panic!("config should be valid: {e}\n{text}"))
}

/// Asserts that `text` fails validation at `want_field` with a reason containing
/// `want_reason`.
fn must_be_invalid(text: &str, want_field: &str, want_reason: &str) {
    match parse(text) {
        Err(ConfigError::Invalid { field, reason }) => {
            assert_eq!(field, want_field, "reason: {reason}");
            assert!(
                reason.contains(want_reason),
                "{field}: {reason:?} lacks {want_reason:?}"
            );
        }
        other => panic!("want Invalid {want_field}, got {other:?}"),
    }
}

/// Asserts that `text` fails to parse with a message containing every one of `want`.
fn must_not_parse(text: &str, want: &[&str]) {
    match parse(text) {
        Err(e @ ConfigError::Parse { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with("invalid config test.toml: "), "{msg}");
            for w in want {
                assert!(msg.contains(w), "{msg:?} lacks {w:?}");
            }
        }
        other => panic!("want Parse error, got {other:?}"),
    }
}

#[test]
fn base_parses_with_defaults_for_missing_sections() {
    let c = must_parse(BASE);
    assert_eq!(c.cluster.name, "demo");
    assert_eq!(c.cluster.secret, None);
    assert_eq!(c.nodes.len(), 3);
    assert_eq!(c.nodes[1].data_dir, PathBuf::from("data/node2"));
    assert_eq!(c.nodes[0].metrics_addr, None);
    assert_eq!(c.raft, RaftSection::default());
    assert_eq!(c.raft.heartbeat_ms, 50);
    assert_eq!(c.raft.election_timeout_ms, 250);
    assert_eq!(c.raft.snapshot_every, 100_000);
    assert_eq!(c.raft.snapshot_log_percent, 25);
    assert_eq!(c.raft.max_in_snapshot_log_to_keep, 1000);
    assert_eq!(c.server, ServerSection::default());
    assert_eq!(c.server.requirepass, None);
    assert_eq!(c.server.read_mode, ReadMode::Linearizable);
    assert_eq!(c.server.max_clients, 10_000);
    assert_eq!(c.server.proto_max_bulk_len, 512 * 1024 * 1024);
    assert_eq!(c.server.write_timeout_ms, 5000);
    assert_eq!(c.server.timeout, 0);
    assert_eq!(c.server.client_output_buffer_limit, 1 << 30);
    assert_eq!(c.server.notify_keyspace_events, "");
    assert_eq!(c.server.sched_policy, SchedPolicy::Batch);
    assert_eq!(c.store, StoreSection::default());
    assert_eq!(c.store.history_revisions, None);
}

/// `sched_policy` takes the two policy names and refuses anything else, naming the choices.
#[test]
fn sched_policy_is_batch_or_other() {
    let c = must_parse(&format!("{BASE}\n[server]\nsched_policy = \"other\"\n"));
    assert_eq!(c.server.sched_policy, SchedPolicy::Other);
    let c = must_parse(&format!("{BASE}\n[server]\nsched_policy = \"batch\"\n"));
    assert_eq!(c.server.sched_policy, SchedPolicy::Batch);
    must_not_parse(
        &format!("{BASE}\n[server]\nsched_policy = \"fifo\"\n"),
        &["sched_policy", "unknown variant `fifo`", "batch", "other"],
    );
}

/// `worker_threads`: 0 (one per CPU) by default, any count up to the guard, and a clear error
/// naming the field past it.
#[test]
fn worker_threads_defaults_to_one_per_cpu_and_refuses_absurd_counts() {
    assert_eq!(must_parse(BASE).server.worker_threads, 0);
    let c = must_parse(&format!("{BASE}\n[server]\nworker_threads = 1\n"));
    assert_eq!(c.server.worker_threads, 1);
    must_be_invalid(
        &format!("{BASE}\n[server]\nworker_threads = 100000\n"),
        "server.worker_threads",
        "must be between 0 (one per CPU) and 1024",
    );
    must_not_parse(
        &format!("{BASE}\n[server]\nworker_threads = -1\n"),
        &["worker_threads"],
    );
}

/// `raft_thread`: on by default, a boolean, anything else refused naming the field.
#[test]
fn raft_thread_is_a_boolean_on_by_default() {
    assert!(must_parse(BASE).server.raft_thread);
    let c = must_parse(&format!("{BASE}\n[server]\nraft_thread = false\n"));
    assert!(!c.server.raft_thread);
    must_not_parse(
        &format!("{BASE}\n[server]\nraft_thread = \"yes\"\n"),
        &["raft_thread"],
    );
}

/// `raft_thread_sessions`: 4 by default, any count (0 keeps every session on the workers).
#[test]
fn raft_thread_sessions_defaults_to_four() {
    assert_eq!(must_parse(BASE).server.raft_thread_sessions, 4);
    let c = must_parse(&format!("{BASE}\n[server]\nraft_thread_sessions = 0\n"));
    assert_eq!(c.server.raft_thread_sessions, 0);
    must_not_parse(
        &format!("{BASE}\n[server]\nraft_thread_sessions = -1\n"),
        &["raft_thread_sessions"],
    );
}

#[test]
fn partial_sections_keep_other_defaults() {
    let c = must_parse(&format!(
        "{BASE}\n[raft]\nheartbeat_ms = 40\n[server]\nread_mode = \"lease\"\n\
         [store]\nhistory_minutes = 60\n"
    ));
    assert_eq!(c.raft.heartbeat_ms, 40);
    assert_eq!(c.raft.election_timeout_ms, 250);
    assert_eq!(c.server.read_mode, ReadMode::Lease);
    assert_eq!(c.server.max_clients, 10_000);
    assert_eq!(c.store.history_minutes, Some(60));
    assert_eq!(c.store.history_revisions, None);
}

#[test]
fn node_order_does_not_matter() {
    let c = must_parse(
        r#"
[cluster]
name = "demo"
[[node]]
id = 3
raft_addr = "127.0.0.1:7103"
redis_addr = "127.0.0.1:6383"
data_dir = "d3"
[[node]]
id = 1
raft_addr = "127.0.0.1:7101"
redis_addr = "127.0.0.1:6381"
data_dir = "d1"
"#,
    );
    assert_eq!(c.node(1).unwrap().data_dir, PathBuf::from("d1"));
    assert_eq!(c.node(3).unwrap().redis_addr, "127.0.0.1:6383");
}

#[test]
fn shipped_cluster_toml_parses() {
    let c = ClusterConfig::from_file(Path::new(CLUSTER_TOML)).unwrap();
    assert_eq!(c.cluster.name, "demo");
    assert_eq!(c.cluster.secret, None);
    let ids: Vec<u64> = c.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    for (i, n) in c.nodes.iter().enumerate() {
        assert_eq!(n.raft_addr, format!("127.0.0.1:{}", 7101 + i));
        assert_eq!(n.redis_addr, format!("127.0.0.1:{}", 6381 + i));
        assert_eq!(n.data_dir, PathBuf::from(format!("data/node{}", i + 1)));
        assert_eq!(n.metrics_addr, None);
    }
    // The file spells out the defaults; they must agree with the code.
    assert_eq!(c.raft, RaftSection::default());
    assert_eq!(c.server, ServerSection::default());
    assert_eq!(c.store, StoreSection::default());
}

#[test]
fn single_node_validates() {
    let c = ClusterConfig::single_node();
    c.validate().unwrap();
    assert_eq!(c.cluster.name, "redraft");
    let n = c.node(1).unwrap();
    assert_eq!(n.redis_addr, "127.0.0.1:6379");
    assert_eq!(n.raft_addr, "127.0.0.1:7379");
    assert_eq!(n.data_dir, PathBuf::from("./data"));
}

#[test]
fn missing_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let e = ClusterConfig::from_file(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("nope.toml"), "{e}");
}

#[test]
fn refuses_malformed_toml() {
    must_not_parse(
        "[cluster\nname = \"demo\"\n",
        &["line 1", "invalid table header; expected"],
    );
    must_not_parse(
        &BASE.replace("id = 2", "id = \"two\""),
        &["line 12", "invalid type"],
    );
}

#[test]
fn refuses_missing_required_fields() {
    must_not_parse("[cluster]\nname = \"demo\"\n", &["missing field `node`"]);
    must_not_parse(
        &BASE.replace("data_dir = \"data/node2\"", ""),
        &["`data_dir`"],
    );
}

#[test]
fn refuses_unknown_field_at_top_level() {
    must_not_parse(
        &format!("verbose = true\n{BASE}"),
        &["line 1", "unknown field `verbose`"],
    );
    must_not_parse(
        &format!("{BASE}\n[raftt]\nheartbeat_ms = 1\n"),
        &["`raftt`"],
    );
}

#[test]
fn refuses_unknown_field_in_cluster() {
    must_not_parse(
        &BASE.replace("name = \"demo\"", "name = \"demo\"\nsecrett = \"x\""),
        &["line 4", "unknown field `secrett`"],
    );
}

#[test]
fn refuses_unknown_field_in_node() {
    let text = BASE.replace("id = 2\n", "id = 2\nredis_port = 6382\n");
    must_not_parse(&text, &["line 13", "unknown field `redis_port`"]);
}

#[test]
fn refuses_unknown_field_in_raft_server_store() {
    let raft = format!("{BASE}\n[raft]\nheartbeat = 100\n");
    must_not_parse(&raft, &["unknown field `heartbeat`", "heartbeat_ms"]);
    must_not_parse(
        &format!("{BASE}\n[server]\nport = 1\n"),
        &["unknown field `port`"],
    );
    must_not_parse(
        &format!("{BASE}\n[store]\nkeep = 1\n"),
        &["unknown field `keep`"],
    );
}

/// QuotedLineCut: an error on a line of 100 MiB (here 1 MiB) quotes its first 120 characters,
/// not the whole line (it printed all of it to stderr).
#[test]
fn an_error_quotes_only_the_start_of_a_long_line() {
    let text = format!(
        "{BASE}\n[store]\nhistory_revisions = {}\n",
        "9".repeat(1 << 20)
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("history_revisions = 999"), "{msg}");
    assert!(msg.len() < 400, "{} bytes: {}…", msg.len(), &msg[..200]);
}

#[test]
fn refuses_bad_cluster_name() {
    must_be_invalid(
        &BASE.replace("\"demo\"", "\"\""),
        "cluster.name",
        "must not be empty",
    );
    must_be_invalid(
        &BASE.replace("\"demo\"", "\"my demo\""),
        "cluster.name",
        "' '",
    );
    must_be_invalid(&BASE.replace("\"demo\"", "\"démo\""), "cluster.name", "'é'");
    let long = format!("\"{}\"", "a".repeat(65));
    must_be_invalid(
        &BASE.replace("\"demo\"", &long),
        "cluster.name",
        "at most 64",
    );
    must_parse(&BASE.replace("\"demo\"", "\"prod-eu.1_a\""));
}

#[test]
fn refuses_empty_secret() {
    let text = BASE.replace("name = \"demo\"", "name = \"demo\"\nsecret = \"\"");
    must_be_invalid(&text, "cluster.secret", "must not be empty");
}

#[test]
fn refuses_no_nodes() {
    must_be_invalid(
        "node = []\n[cluster]\nname = \"demo\"\n",
        "node",
        "at least one",
    );
}

#[test]
fn refuses_node_id_zero() {
    must_be_invalid(
        &BASE.replace("id = 3", "id = 0"),
        "node[2].id",
        "at least 1",
    );
}

#[test]
fn refuses_duplicate_node_id() {
    must_be_invalid(
        &BASE.replace("id = 3", "id = 1"),
        "node[2].id",
        "duplicate node id 1 (also node[0].id)",
    );
}

#[test]
fn refuses_unparseable_addresses() {
    must_be_invalid(
        &BASE.replace("127.0.0.1:7102", "127.0.0.1"),
        "node[1].raft_addr",
        "\"127.0.0.1\" is not an ip:port address",
    );
    must_be_invalid(
        &BASE.replace("127.0.0.1:6383", "localhost:6383"),
        "node[2].redis_addr",
        "not an ip:port",
    );
    let text = BASE.replace(
        "data_dir = \"data/node1\"",
        "data_dir = \"data/node1\"\nmetrics_addr = \"127.0.0.1:99999\"",
    );
    must_be_invalid(&text, "node[0].metrics_addr", "not an ip:port");
    // IPv6 is fine.
    must_parse(&BASE.replace("127.0.0.1:6383", "[::1]:6383"));
}

#[test]
fn refuses_undialable_raft_addr_in_a_cluster() {
    let text = with_secret(&BASE.replace("127.0.0.1:7102", "0.0.0.0:7102"));
    must_be_invalid(&text, "node[1].raft_addr", "concrete IP");
    let text = BASE.replace("127.0.0.1:7102", "127.0.0.1:0");
    must_be_invalid(&text, "node[1].raft_addr", "fixed port");
    // A lone node is never dialled; ephemeral ports are fine for it (tests use them).
    let mut c = ClusterConfig::single_node();
    c.cluster.secret = Some("s".into());
    c.nodes[0].raft_addr = "0.0.0.0:0".into();
    c.nodes[0].redis_addr = "127.0.0.1:0".into();
    c.nodes[0].metrics_addr = Some("127.0.0.1:0".into());
    c.validate().unwrap();
}

fn with_secret(text: &str) -> String {
    text.replace("name = \"demo\"", "name = \"demo\"\nsecret = \"s3cret\"")
}

#[test]
fn refuses_a_cluster_off_loopback_without_a_secret() {
    let off = BASE
        .replace("127.0.0.1:7101", "10.0.0.1:7100")
        .replace("127.0.0.1:7102", "10.0.0.2:7100")
        .replace("127.0.0.1:7103", "10.0.0.3:7100");
    must_be_invalid(&off, "cluster.secret", "node[0].raft_addr 10.0.0.1:7100");
    must_parse(&with_secret(&off));
    // One node off loopback is enough; 0.0.0.0 listens on every interface.
    let one = BASE.replace("127.0.0.1:7103", "192.168.1.3:7103");
    must_be_invalid(&one, "cluster.secret", "node[2].raft_addr");
    let mut lone = ClusterConfig::single_node();
    lone.nodes[0].raft_addr = "0.0.0.0:7100".into();
    let e = lone.validate().unwrap_err().to_string();
    assert!(
        e.contains("cluster.secret") && e.contains("redraft gen-secret"),
        "{e}"
    );
    // All loopback (the embedded default, tests, the example): no secret needed.
    must_parse(BASE);
    ClusterConfig::single_node().validate().unwrap();
}

#[test]
fn refuses_duplicate_addresses() {
    // Across nodes, across kinds.
    must_be_invalid(
        &BASE.replace("127.0.0.1:6383", "127.0.0.1:7101"),
        "node[2].redis_addr",
        "127.0.0.1:7101 is already used by node[0].raft_addr",
    );
    // Within one node.
    must_be_invalid(
        &BASE.replace("127.0.0.1:6382", "127.0.0.1:7102"),
        "node[1].redis_addr",
        "already used by node[1].raft_addr",
    );
    // Metrics too.
    let text = BASE.replace(
        "data_dir = \"data/node3\"",
        "data_dir = \"data/node3\"\nmetrics_addr = \"127.0.0.1:6381\"",
    );
    must_be_invalid(
        &text,
        "node[2].metrics_addr",
        "already used by node[0].redis_addr",
    );
    // 0.0.0.0 and a concrete IP on one port of one node cannot both bind.
    let text = BASE.replace("127.0.0.1:6381", "0.0.0.0:7101");
    must_be_invalid(&text, "node[0].redis_addr", "overlaps node[0].raft_addr");
    // The same port on different hosts is the normal layout.
    must_parse(
        &with_secret(BASE)
            .replace("127.0.0.1:7101", "10.0.0.1:7100")
            .replace("127.0.0.1:7102", "10.0.0.2:7100")
            .replace("127.0.0.1:7103", "10.0.0.3:7100"),
    );
}

#[test]
fn refuses_duplicate_data_dir_on_one_host() {
    must_be_invalid(
        &BASE.replace("data/node3", "./data/node1/"),
        "node[2].data_dir",
        "already node[0].data_dir (node 1)",
    );
    must_be_invalid(
        &BASE.replace("data/node2", ""),
        "node[1].data_dir",
        "must not be empty",
    );
    // On separate hosts every node may use the same path.
    must_parse(
        &with_secret(BASE)
            .replace("127.0.0.1:7101", "10.0.0.1:7100")
            .replace("127.0.0.1:7102", "10.0.0.2:7100")
            .replace("127.0.0.1:7103", "10.0.0.3:7100")
            .replace("data/node1", "/var/lib/redraft")
            .replace("data/node2", "/var/lib/redraft")
            .replace("data/node3", "/var/lib/redraft"),
    );
}

#[test]
fn unknown_node_id_lists_the_known_ones() {
    let c = must_parse(BASE);
    let e = c.node(7).unwrap_err();
    assert!(matches!(e, ConfigError::UnknownNode { id: 7, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "node id 7 is not in the config (ids: 1, 2, 3)"
    );
}

#[test]
fn debug_redacts_secrets() {
    let text = format!(
        "{}\n[server]\nrequirepass = \"hunter2\"\n",
        BASE.replace("name = \"demo\"", "name = \"demo\"\nsecret = \"s3cret\"")
    );
    let c = must_parse(&text);
    assert_eq!(c.cluster.secret.as_deref(), Some("s3cret"));
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("hunter2"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"), "{debug}");
}
