//! Connection and server commands: PING ECHO AUTH SELECT CLIENT COMMAND CONFIG INFO ROLE.
//!
//! # Format
//!
//! ```text
//! PING [message]          → +PONG | bulk message
//! ECHO message            → bulk message
//! AUTH [user] password    → +OK | -WRONGPASS ... | -ERR AUTH <password> called without any password configured ...
//! SELECT index            → +OK for 0; -ERR DB index is out of range otherwise (one database)
//! CLIENT ID|GETNAME|SETNAME name|SETINFO attr value
//! COMMAND [COUNT|DOCS|INFO|LIST] → the full table comes with the command surface; empty now
//! CONFIG GET pattern      → map of the settings clients ask for (save, appendonly, ...)
//! INFO [section]          → bulk text: server, clients, persistence (loading:0), replication,
//!                           raft, keyspace
//! ROLE                    → master: [master, applied_index, [[ip, port, match_index]...]]
//!                           replica: [slave, leader_ip, leader_port, connected|connect, applied_index]
//! ```

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{CommandError, CommandResult, Session};
use crate::protocol::{Frame, Parse, ParseError};
use crate::server::ServerContext;

/// The commands this family owns.
const OWN: &[&str] = &[
    "ping", "echo", "auth", "select", "client", "command", "config", "info", "role",
];

/// Runs `name` if it belongs to this family.
pub async fn execute(
    ctx: &ServerContext,
    session: &mut Session,
    name: &str,
    parse: &mut Parse,
) -> Option<CommandResult> {
    if !OWN.contains(&name) {
        return None;
    }
    Some(run(ctx, session, name, parse).await)
}

async fn run(
    ctx: &ServerContext,
    session: &mut Session,
    name: &str,
    parse: &mut Parse,
) -> CommandResult {
    match name {
        "ping" => ping(parse),
        "echo" => {
            let msg = parse.next_bytes().map_err(|_| arity("echo"))?;
            parse.finish().map_err(|_| arity("echo"))?;
            Ok(Frame::Bulk(msg))
        }
        "auth" => auth(ctx, session, parse),
        "select" => {
            let db = parse.next_string().map_err(|_| arity("select"))?;
            parse.finish().map_err(|_| arity("select"))?;
            match db.parse::<i64>() {
                Ok(0) => Ok(Frame::ok()),
                Ok(_) => Err(CommandError::Reply("ERR DB index is out of range".into())),
                Err(_) => Err(ParseError::NotInteger.into()),
            }
        }
        "client" => client(session, parse),
        "command" => Ok(Frame::Array(Vec::new())),
        "config" => config(ctx, parse),
        "info" => {
            let section = parse.next_string().ok().map(|s| s.to_ascii_lowercase());
            Ok(Frame::Bulk(Bytes::from(info(ctx, section.as_deref()))))
        }
        "role" => Ok(role(ctx)),
        other => Err(CommandError::Reply(format!(
            "ERR command '{other}' is not routed here"
        ))),
    }
}

fn arity(name: &str) -> CommandError {
    CommandError::Parse(ParseError::WrongArity(name.to_string()))
}

fn ping(parse: &mut Parse) -> CommandResult {
    match parse.remaining() {
        0 => Ok(Frame::Simple("PONG".into())),
        1 => Ok(Frame::Bulk(parse.next_bytes()?)),
        _ => Err(arity("ping")),
    }
}

fn auth(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    let (user, pass) = match parse.remaining() {
        1 => (None, parse.next_bytes()?),
        2 => (Some(parse.next_bytes()?), parse.next_bytes()?),
        _ => return Err(arity("auth")),
    };
    let Some(expected) = &ctx.requirepass else {
        return Err(CommandError::Reply(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?"
                .into(),
        ));
    };
    let user_ok = user.as_deref().is_none_or(|u| u == b"default");
    if user_ok && pass.as_ref() == expected.as_bytes() {
        session.authenticated = true;
        Ok(Frame::ok())
    } else {
        Err(CommandError::Reply(
            "WRONGPASS invalid username-password pair or user is disabled.".into(),
        ))
    }
}

fn client(session: &mut Session, parse: &mut Parse) -> CommandResult {
    let sub = parse
        .next_string()
        .map_err(|_| arity("client"))?
        .to_ascii_lowercase();
    match sub.as_str() {
        "id" => Ok(Frame::Integer(session.id as i64)),
        "getname" => Ok(match &session.name {
            Some(n) => Frame::Bulk(Bytes::from(n.clone())),
            None => Frame::Null,
        }),
        "setname" => {
            let name = parse.next_string().map_err(|_| arity("client|setname"))?;
            if name.contains([' ', '\n']) {
                return Err(CommandError::Reply(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                        .into(),
                ));
            }
            session.name = (!name.is_empty()).then_some(name);
            Ok(Frame::ok())
        }
        "setinfo" => {
            parse.next_bytes().map_err(|_| arity("client|setinfo"))?;
            parse.next_bytes().map_err(|_| arity("client|setinfo"))?;
            Ok(Frame::ok())
        }
        _ => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{sub}'. Try CLIENT HELP."
        ))),
    }
}

fn config(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let sub = parse
        .next_string()
        .map_err(|_| arity("config"))?
        .to_ascii_lowercase();
    if sub != "get" {
        return Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{sub}'. Try CONFIG HELP."
        )));
    }
    let mut pairs = Vec::new();
    let settings = [
        ("save", String::new()),
        ("appendonly", "no".to_string()),
        ("appendfsync", "always".to_string()),
        ("databases", "1".to_string()),
        ("maxmemory", "0".to_string()),
        ("maxclients", ctx.max_clients.to_string()),
        ("notify-keyspace-events", String::new()),
        ("proto-max-bulk-len", ctx.limits.max_bulk_len.to_string()),
    ];
    let mut any = false;
    while let Ok(pattern) = parse.next_string() {
        any = true;
        for (k, v) in &settings {
            if glob_match(pattern.to_ascii_lowercase().as_bytes(), k.as_bytes())
                && !pairs
                    .iter()
                    .any(|(pk, _): &(Frame, Frame)| pk == &Frame::Bulk(Bytes::from(*k)))
            {
                pairs.push((
                    Frame::Bulk(Bytes::from(*k)),
                    Frame::Bulk(Bytes::from(v.clone())),
                ));
            }
        }
    }
    if !any {
        return Err(arity("config|get"));
    }
    Ok(Frame::Map(pairs))
}

/// Redis-style glob (`*`, `?`), enough for CONFIG GET patterns.
fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    match (pattern.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], s) || (!s.is_empty() && glob_match(pattern, &s[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob_match(&pattern[1..], &s[1..]),
        _ => false,
    }
}

fn role_name(ctx: &ServerContext) -> &'static str {
    if ctx.node.is_leader() {
        "master"
    } else {
        "slave"
    }
}

fn split_host_port(addr: &str) -> (String, i64) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse().unwrap_or(-1),
        ),
        None => (addr.to_string(), -1),
    }
}

fn role(ctx: &ServerContext) -> Frame {
    let m = ctx.node.metrics();
    let applied = m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0) as i64;
    if m.current_leader == Some(ctx.node.id) {
        let membership = m.membership_config.membership();
        let replicas = m
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != ctx.node.id)
            .map(|(id, matched)| {
                let addr = membership
                    .get_node(id)
                    .map(|n| n.redis_addr.clone())
                    .unwrap_or_default();
                let (host, port) = split_host_port(&addr);
                let matched = matched.as_ref().map(|l| l.index()).unwrap_or(0);
                Frame::Array(vec![
                    Frame::Bulk(Bytes::from(host)),
                    Frame::Bulk(Bytes::from(port.to_string())),
                    Frame::Bulk(Bytes::from(matched.to_string())),
                ])
            })
            .collect();
        Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"master")),
            Frame::Integer(applied),
            Frame::Array(replicas),
        ])
    } else {
        let (host, port, state) = match ctx.node.leader() {
            Some((_, addr)) => {
                let (h, p) = split_host_port(&addr);
                (h, p, "connected")
            }
            None => (String::new(), -1, "connect"),
        };
        Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"slave")),
            Frame::Bulk(Bytes::from(host)),
            Frame::Integer(port),
            Frame::Bulk(Bytes::from(state)),
            Frame::Integer(applied),
        ])
    }
}

/// `INFO [section]`: Redis's `# Section` / `key:value` text.
pub fn info(ctx: &ServerContext, section: Option<&str>) -> String {
    let want = |s: &str| match section {
        None | Some("all") | Some("everything") | Some("default") => true,
        Some(x) => x == s,
    };
    let m = ctx.node.metrics();
    let mut out = String::new();
    if want("server") {
        let _ = write!(
            out,
            "# Server\r\nredis_version:7.2.0\r\nredraft_version:{}\r\nredis_mode:standalone\r\n\
             process_id:{}\r\nrun_id:{:040x}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\
             cluster_name:{}\r\nnode_id:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            ctx.node.id,
            ctx.tcp_port,
            ctx.started.elapsed().as_secs(),
            ctx.cluster_name,
            ctx.node.id,
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n",
            ctx.connected.load(Ordering::Relaxed),
            ctx.max_clients
        );
    }
    if want("persistence") {
        out.push_str(
            "# Persistence\r\nloading:0\r\naof_enabled:0\r\nrdb_bgsave_in_progress:0\r\n\r\n",
        );
    }
    if want("stats") {
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            ctx.total_connections.load(Ordering::Relaxed),
            ctx.total_commands.load(Ordering::Relaxed)
        );
    }
    let applied = m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0);
    let leader = m.current_leader == Some(ctx.node.id);
    if want("replication") {
        let _ = write!(out, "# Replication\r\nrole:{}\r\n", role_name(ctx));
        if leader {
            let reps: Vec<_> = m
                .replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != ctx.node.id)
                .collect();
            let _ = write!(out, "connected_slaves:{}\r\n", reps.len());
            let membership = m.membership_config.membership();
            for (i, (id, matched)) in reps.iter().enumerate() {
                let addr = membership
                    .get_node(id)
                    .map(|n| n.redis_addr.clone())
                    .unwrap_or_default();
                let (h, p) = split_host_port(&addr);
                let off = matched.as_ref().map(|l| l.index()).unwrap_or(0);
                let _ = write!(
                    out,
                    "slave{i}:ip={h},port={p},state=online,offset={off},lag=0\r\n"
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
            let _ = write!(
                out,
                "master_host:{h}\r\nmaster_port:{p}\r\nmaster_link_status:{up}\r\nslave_repl_offset:{applied}\r\n"
            );
        }
        let _ = write!(out, "master_repl_offset:{applied}\r\n\r\n");
    }
    if want("raft") {
        let fs = &ctx.node.flush_stats;
        let flushes = fs.flushes.load(Ordering::Relaxed);
        let entries = fs.entries.load(Ordering::Relaxed);
        let appends = fs.appends.load(Ordering::Relaxed);
        let per_flush = if flushes == 0 {
            0.0
        } else {
            entries as f64 / flushes as f64
        };
        let voters: Vec<String> = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|i| i.to_string())
            .collect();
        let _ = write!(
            out,
            "# Raft\r\nraft_node_id:{}\r\nraft_state:{:?}\r\nraft_term:{}\r\nraft_leader_id:{}\r\n\
             raft_voters:{}\r\nraft_last_log_index:{}\r\nraft_commit_index:{}\r\nraft_applied_index:{}\r\n\
             raft_snapshot_index:{}\r\nraft_purged_index:{}\r\nraft_log_flushes:{}\r\n\
             raft_log_appends_flushed:{}\r\nraft_log_entries_flushed:{}\r\nraft_log_entries_per_flush:{:.2}\r\n\
             revision:{}\r\ncompact_revision:{}\r\n\r\n",
            ctx.node.id,
            m.state,
            m.current_term,
            m.current_leader.map(|l| l.to_string()).unwrap_or_default(),
            voters.join(","),
            m.last_log_index.unwrap_or(0),
            m.local_committed.as_ref().map(|l| l.index()).unwrap_or(0),
            applied,
            m.snapshot.as_ref().map(|l| l.index()).unwrap_or(0),
            m.purged.as_ref().map(|l| l.index()).unwrap_or(0),
            flushes,
            appends,
            entries,
            per_flush,
            ctx.node.sm.read().store.revision(),
            ctx.node.sm.read().store.compact_revision(),
        );
    }
    if want("keyspace") {
        let st = ctx.node.sm.read();
        let _ = write!(out, "# Keyspace\r\n");
        if !st.store.is_empty() {
            let _ = write!(out, "db0:keys={},expires=0,avg_ttl=0\r\n", st.store.len());
        }
        out.push_str("\r\n");
    }
    out
}
