//! INFO: Redis's `# Section` / `key:value` text about this node (server, clients, memory,
//! persistence, stats, replication, cpu, raft, reads, commandstats, errorstats, latencystats,
//! keyspace). The process figures (memory, cpu) are read in `process.rs`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::process;
use super::role::{role_name, split_host_port};
use crate::commands::reply::verbatim;
use crate::commands::{CommandResult, REDIS_VERSION};
use crate::context::ServerContext;

use crate::protocol::Parse;

/// `INFO [section ...]`, as the client sees it: the sections asked for, lowercased.
pub(in crate::commands) fn info_command(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let mut sections = Vec::new();
    while let Ok(s) = parse.next_string() {
        sections.push(s.to_ascii_lowercase());
    }
    Ok(verbatim(info(ctx, &sections)))
}

/// Every section, in the order `INFO` shows them (Redis 7.0's, with redraft's `raft` and
/// `reads` after `modules`), and whether plain `INFO` (`default`) includes it: as in Redis,
/// `commandstats` and `latencystats` only come with `all`, `everything` or by name.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("raft", true),
    ("reads", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// `INFO [section ...]`: Redis's `# Section` / `key:value` text, sections separated by a blank
/// line. Unknown section names add nothing, as in Redis.
pub fn info(ctx: &ServerContext, sections: &[String]) -> String {
    let asked = |s: &str| sections.iter().any(|a| a == s);
    let all = asked("all") || asked("everything");
    let default = sections.is_empty() || asked("default");
    let mut parts = Vec::new();
    for &(name, in_default) in SECTIONS {
        if all || (default && in_default) || asked(name) {
            parts.push(info_section(ctx, name));
        }
    }
    parts.join("\r\n")
}

fn info_section(ctx: &ServerContext, name: &str) -> String {
    let mut out = String::new();
    match name {
        "server" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let uptime = ctx.started.elapsed().as_secs();
            let _ = write!(
                out,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\n\
                 redis_git_dirty:0\r\nredraft_version:{}\r\nredis_mode:standalone\r\n\
                 os:{} {}\r\narch_bits:{}\r\nprocess_id:{}\r\nrun_id:{:040x}\r\ntcp_port:{}\r\n\
                 server_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
                 cluster_name:{}\r\nnode_id:{}\r\nworker_threads:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                ctx.node.id,
                ctx.tcp_port,
                now.as_micros(),
                uptime / 86400,
                ctx.cluster_name,
                ctx.node.id,
                ctx.worker_threads,
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\n\
                 client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n\
                 blocked_clients:0\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
                ctx.connected.load(Ordering::Relaxed),
                ctx.settings.max_clients(),
                ctx.tracker.stats().clients,
            );
        }
        "persistence" => out.push_str(
            "# Persistence\r\nloading:0\r\naof_enabled:0\r\nrdb_bgsave_in_progress:0\r\n",
        ),
        "stats" => {
            let tracking = ctx.tracker.stats();
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 rejected_connections:{}\r\nunexpected_error_replies:0\r\n\
                 total_error_replies:{}\r\ntracking_total_keys:{}\r\n\
                 tracking_total_items:{}\r\ntracking_total_prefixes:{}\r\n",
                ctx.total_connections.load(Ordering::Relaxed),
                ctx.total_commands.load(Ordering::Relaxed),
                ctx.rejected_connections.load(Ordering::Relaxed),
                ctx.command_stats.total_errors(),
                tracking.keys,
                tracking.items,
                tracking.prefixes,
            );
        }
        "memory" => process::memory_section(&mut out),
        // No modules; not Redis Cluster (clients read `cluster_enabled` to decide).
        "modules" => out.push_str("# Modules\r\n"),
        "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "cpu" => process::cpu_section(&mut out),
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            ctx.command_stats.commandstats(&mut out);
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            ctx.command_stats.errorstats(&mut out);
        }
        "latencystats" => {
            out.push_str("# Latencystats\r\n");
            ctx.command_stats.latencystats(&mut out);
        }
        "replication" => replication_section(ctx, &mut out),
        "raft" => raft_section(ctx, &mut out),
        "reads" => reads_section(ctx, &mut out),
        "keyspace" => {
            let now = crate::raft::unix_ms();
            let (keys, expires, avg_ttl) = ctx
                .node
                .read_store(|store| (store.len(), store.expiring(), store.mean_ttl(now)));
            out.push_str("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(
                    out,
                    "db0:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n"
                );
            }
        }
        _ => {}
    }
    out
}

/// Redis's 40-hex `master_replid`: names the replication history a leader serves. redraft's
/// history changes owner at each new term, as Redis's does at a failover, so the id is derived
/// from the cluster name and the term (the same on every node of one term).
fn repl_id(cluster: &str, term: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(cluster.as_bytes());
    h.update(b"\0");
    h.update(term.to_be_bytes());
    h.finalize()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `INFO replication` with Redis 7.0's fields, in its order. The replication offset is the
/// Raft applied index (on a leader: each follower's matched index); `lag` is seconds since the
/// follower last acknowledged the leader.
fn replication_section(ctx: &ServerContext, out: &mut String) {
    let m = ctx.node.status();
    let applied = m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0);
    let _ = write!(out, "# Replication\r\nrole:{}\r\n", role_name(ctx));
    let membership = &m.membership;
    if m.current_leader == Some(ctx.node.id) {
        let reps: Vec<_> = m
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != ctx.node.id)
            .collect();
        let _ = write!(out, "connected_slaves:{}\r\n", reps.len());
        for (i, (id, matched)) in reps.iter().enumerate() {
            let addr = membership
                .get_node(id)
                .map(|n| n.redis_addr.clone())
                .unwrap_or_default();
            let (h, p) = split_host_port(&addr);
            let (state, off) = match matched {
                Some(l) => ("online", l.index()),
                None => ("wait_bgsave", 0),
            };
            let lag = m
                .heartbeat
                .as_ref()
                .and_then(|hb| hb.get(id).cloned().flatten())
                .map_or(0, |t| t.as_secs());
            let _ = write!(
                out,
                "slave{i}:ip={h},port={p},state={state},offset={off},lag={lag}\r\n"
            );
        }
    } else {
        let (h, p, up) = match ctx.node.leader() {
            Some((_, addr)) => {
                let (h, p) = split_host_port(&addr);
                (h, p, "up")
            }
            None => (String::new(), -1, "down"),
        };
        let last_io: i64 = if up == "up" { 0 } else { -1 };
        let _ = write!(
            out,
            "master_host:{h}\r\nmaster_port:{p}\r\nmaster_link_status:{up}\r\n\
             master_last_io_seconds_ago:{last_io}\r\nmaster_sync_in_progress:0\r\n\
             slave_read_repl_offset:{applied}\r\nslave_repl_offset:{applied}\r\n"
        );
        if up == "down" {
            out.push_str("master_link_down_since_seconds:-1\r\n");
        }
        out.push_str(
            "slave_priority:100\r\nslave_read_only:0\r\nreplica_announced:1\r\n\
             connected_slaves:0\r\n",
        );
    }
    let _ = write!(
        out,
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\n\
         master_replid2:0000000000000000000000000000000000000000\r\n\
         master_repl_offset:{applied}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\n\
         repl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:1\r\n\
         repl_backlog_histlen:{applied}\r\n",
        repl_id(&ctx.cluster_name, m.current_term),
    );
}

/// `# Reads`: the read gate (DESIGN §4) — reads served per mode, ReadIndex rounds and reads per
/// round, lease checks, hits and fallbacks, and whether stale reads were served out of touch.
fn reads_section(ctx: &ServerContext, out: &mut String) {
    let r = &ctx.node.reads;
    let s = &r.stats;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let (rounds, barriers) = (get(&s.index_rounds), get(&s.index_reads));
    let per_round = if rounds == 0 {
        0.0
    } else {
        barriers as f64 / rounds as f64
    };
    let contact = if ctx.node.is_leader() {
        "0".to_owned()
    } else {
        r.liveness
            .since_leader_contact()
            .map(|d| d.as_millis().to_string())
            .unwrap_or_else(|| "-1".into())
    };
    let _ = write!(
        out,
        "# Reads\r\nread_mode_default:{}\r\nreads_linearizable:{}\r\nreads_lease:{}\r\n\
         reads_stale:{}\r\nreads_stale_unsynced:{}\r\nread_index_rounds:{rounds}\r\n\
         read_index_barriers:{barriers}\r\nread_index_barriers_per_round:{per_round:.2}\r\n\
         lease_ms:{}\r\nlease_checks:{}\r\nlease_hits:{}\r\nlease_fast_hits:{}\r\n\
         lease_fallbacks:{}\r\nlease_leader_rounds:{}\r\n\
         leader_last_contact_ms:{contact}\r\nleader_in_touch:{}\r\n",
        ctx.settings.read_mode(),
        get(&s.linearizable),
        get(&s.lease),
        get(&s.stale),
        get(&s.stale_unsynced),
        r.lease.as_millis(),
        get(&s.lease_rounds),
        get(&s.lease_hits),
        get(&s.lease_fast_hits),
        get(&s.lease_fallbacks),
        get(&s.leader_lease_rounds),
        u8::from(ctx.node.in_touch()),
    );
}

fn raft_section(ctx: &ServerContext, out: &mut String) {
    let m = ctx.node.status();
    let applied = m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0);
    let fs = &ctx.node.flush_stats;
    let flushes = fs.flushes.load(Ordering::Relaxed);
    let entries = fs.entries.load(Ordering::Relaxed);
    let appends = fs.appends.load(Ordering::Relaxed);
    let per_flush = if flushes == 0 {
        0.0
    } else {
        entries as f64 / flushes as f64
    };
    let voters: Vec<String> = m.membership.voter_ids().map(|i| i.to_string()).collect();
    let (revision, compact_revision, dedup_clients) = ctx.node.read_store(|store| {
        (
            store.revision(),
            store.compact_revision(),
            store.dedup_clients(),
        )
    });
    let nm = &ctx.node.node_metrics;
    let _ = write!(
        out,
        "# Raft\r\nraft_node_id:{}\r\nraft_state:{:?}\r\nraft_term:{}\r\nraft_leader_id:{}\r\n\
         raft_voters:{}\r\nraft_last_log_index:{}\r\nraft_commit_index:{}\r\n\
         raft_durable_commit_index:{}\r\nraft_applied_index:{}\r\nraft_snapshot_index:{}\r\nraft_purged_index:{}\r\n\
         raft_log_flushes:{}\r\nraft_log_appends_flushed:{}\r\nraft_log_entries_flushed:{}\r\n\
         raft_log_entries_per_flush:{:.2}\r\nraft_log_syncs:{}\r\nraft_log_syncs_inline:{}\r\n\
         raft_log_bytes_written:{}\r\n\
         raft_read_index_rounds:{}\r\n\
         raft_read_index_reads:{}\r\nraft_proposal_entries:{}\r\n\
         raft_proposal_requests:{}\r\nraft_flush_announcements:{}\r\nraft_early_commits:{}\r\n\
         raft_commit_probes_skipped:{}\r\nraft_expiry_wakeups:{}\r\nraft_thread_sessions:{}\r\n\
         raft_snapshot_builds:{}\r\nraft_snapshot_deltas:{}\r\n\
         raft_snapshot_bytes:{}\r\nrevision:{}\r\ncompact_revision:{}\r\n\
         dedup_clients:{}\r\ndedup_window_ms:{}\r\ndedup_max_clients:{}\r\n",
        ctx.node.id,
        m.state,
        m.current_term,
        m.current_leader.map(|l| l.to_string()).unwrap_or_default(),
        voters.join(","),
        m.last_log_index.unwrap_or(0),
        m.local_committed.as_ref().map(|l| l.index()).unwrap_or(0),
        ctx.node.sm.durable_committed().unwrap_or(0),
        applied,
        m.snapshot.as_ref().map(|l| l.index()).unwrap_or(0),
        m.purged.as_ref().map(|l| l.index()).unwrap_or(0),
        flushes,
        appends,
        entries,
        per_flush,
        ctx.node.flush_stats.syncs.load(Ordering::Relaxed),
        ctx.node.flush_stats.syncs_inline.load(Ordering::Relaxed),
        ctx.node.flush_stats.bytes.load(Ordering::Relaxed),
        ctx.node.reads.stats.index_rounds.load(Ordering::Relaxed),
        ctx.node.reads.stats.index_reads.load(Ordering::Relaxed),
        nm.batched_entries.load(Ordering::Relaxed),
        nm.batched_requests.load(Ordering::Relaxed),
        nm.flush_announcements.load(Ordering::Relaxed),
        nm.early_commits.load(Ordering::Relaxed),
        nm.commit_probes_skipped.load(Ordering::Relaxed),
        nm.expiry_wakeups.load(Ordering::Relaxed),
        ctx.beside_raft.as_ref().map_or(0, |b| b.hosted()),
        nm.snapshot_builds.load(Ordering::Relaxed),
        nm.snapshot_deltas.load(Ordering::Relaxed),
        nm.snapshot_bytes.load(Ordering::Relaxed),
        revision,
        compact_revision,
        dedup_clients,
        crate::store::DEDUP_WINDOW_MS,
        crate::store::MAX_DEDUP_CLIENTS,
    );
}
