//! Server commands: what a client asks about the server rather than its data.
//!
//! # Format
//!
//! ```text
//! COMMAND                       → every command's COMMAND INFO entry
//! COMMAND COUNT                 → :number of (top-level) commands
//! COMMAND INFO [name ...]       → entries (nil for an unknown name; all when none given)
//! COMMAND DOCS [name ...]       → map name → docs (unknown names left out; all when none given)
//! COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p] → names, subcommands included
//! CONFIG GET pattern [pattern ...] → map parameter → value (flat array in RESP2)
//! CONFIG SET param value [param value ...] → +OK; all or none are applied
//! CONFIG RESETSTAT              → +OK (INFO stats counters back to 0)
//! INFO [section ...]            → text: server, clients, persistence, stats, replication, raft,
//!                                 keyspace (verbatim in RESP3)
//! ROLE                          → master: [master, applied_index, [[ip, port, match_index]...]]
//!                                 replica: [slave, leader_ip, leader_port, connected|connect,
//!                                 applied_index]
//! TIME                          → [unix seconds, microseconds] as bulk strings
//! ```
//!
//! `CONFIG SET` changes a setting on this node only, until restart (redraft has no CONFIG
//! REWRITE: `cluster.toml` is the configuration). Settable: `maxclients`, `timeout`,
//! `notify-keyspace-events`, `client-output-buffer-limit`, and redraft's `read-mode` (the mode
//! new connections start in; existing ones keep theirs). Any other listed parameter may be
//! "set" to the value it has (a no-op clients and test harnesses do), and is otherwise refused as
//! Redis refuses an immutable one.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::admin::{glob_match, help_reply, REDIS_VERSION};
use super::connection::verbatim;
use super::table::{self, CommandSpec};
use super::{CommandError, CommandResult, Session};
use crate::config::{NotifyKeyspaceEvents, ReadMode};
use crate::protocol::{Frame, Parse, ParseError};
use crate::server::ServerContext;

/// Runs `name` if it belongs to this file.
pub fn execute(
    ctx: &ServerContext,
    _session: &mut Session,
    name: &str,
    parse: &mut Parse,
) -> Option<CommandResult> {
    Some(match name {
        "command" => command(parse),
        "config" => config(ctx, parse),
        "info" => {
            let mut sections = Vec::new();
            while let Ok(s) = parse.next_string() {
                sections.push(s.to_ascii_lowercase());
            }
            Ok(verbatim(info(ctx, &sections)))
        }
        "role" => Ok(role(ctx)),
        "time" => Ok(time()),
        _ => return None,
    })
}

fn bulk(s: impl Into<String>) -> Frame {
    Frame::Bulk(Bytes::from(s.into()))
}

fn time() -> Frame {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Frame::Array(vec![
        bulk(now.as_secs().to_string()),
        bulk(now.subsec_micros().to_string()),
    ])
}

fn command(parse: &mut Parse) -> CommandResult {
    if parse.remaining() == 0 {
        return Ok(Frame::Array(
            table::commands()
                .iter()
                .map(CommandSpec::info_frame)
                .collect(),
        ));
    }
    let sub = parse.next_string()?.to_ascii_lowercase();
    let mut names = Vec::new();
    while let Ok(n) = parse.next_string() {
        names.push(n);
    }
    match sub.as_str() {
        "count" => Ok(Frame::Integer(table::commands().len() as i64)),
        "info" if names.is_empty() => Ok(Frame::Array(
            table::commands()
                .iter()
                .map(CommandSpec::info_frame)
                .collect(),
        )),
        "info" => Ok(Frame::Array(
            names
                .iter()
                .map(|n| table::find(n).map_or(Frame::Null, CommandSpec::info_frame))
                .collect(),
        )),
        "docs" => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                table::commands().iter().collect()
            } else {
                names.iter().filter_map(|n| table::find(n)).collect()
            };
            Ok(Frame::Map(
                specs
                    .into_iter()
                    .map(|s| (bulk(s.name), s.docs_frame()))
                    .collect(),
            ))
        }
        "list" => command_list(&names),
        "help" => Ok(help_reply(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
            ],
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try COMMAND HELP."
        ))),
    }
}

/// `COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]`; `args` follow `LIST`.
fn command_list(args: &[String]) -> CommandResult {
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match args {
        [] => Box::new(|_| true),
        [filterby, kind, value] if filterby.eq_ignore_ascii_case("filterby") => {
            match kind.to_ascii_lowercase().as_str() {
                // redraft loads no modules.
                "module" => Box::new(|_| false),
                "aclcat" => {
                    let cat = format!("@{}", value.to_ascii_lowercase());
                    Box::new(move |c: &CommandSpec| c.acl_categories.contains(&cat.as_str()))
                }
                "pattern" => {
                    let pattern = value.clone().into_bytes();
                    Box::new(move |c: &CommandSpec| glob_match(&pattern, c.name.as_bytes(), true))
                }
                _ => return Err(ParseError::Syntax.into()),
            }
        }
        _ => return Err(ParseError::Syntax.into()),
    };
    let mut out = Vec::new();
    for c in table::commands() {
        for spec in std::iter::once(c).chain(c.subcommands.iter()) {
            if keep(spec) {
                out.push(bulk(spec.name));
            }
        }
    }
    Ok(Frame::Array(out))
}

/// One parameter `CONFIG GET` answers.
struct Param {
    name: &'static str,
    get: Value,
    /// Validates a new value; `None` for a parameter redraft does not change at run time.
    parse: Option<ParseValue>,
}

/// Validates a `CONFIG SET` value, or returns the reason Redis would give.
type ParseValue = fn(&str) -> Result<NewValue, String>;

/// A parameter's current value.
enum Value {
    /// What redraft always has (e.g. `appendonly no`: durability is the Raft log's).
    Fixed(&'static str),
    Live(fn(&ServerContext) -> String),
}

impl Param {
    fn value(&self, ctx: &ServerContext) -> String {
        match self.get {
            Value::Fixed(v) => v.to_string(),
            Value::Live(f) => f(ctx),
        }
    }
}

/// A validated `CONFIG SET` value, applied only once every pair is valid.
enum NewValue {
    MaxClients(usize),
    Timeout(u64),
    NotifyKeyspaceEvents(NotifyKeyspaceEvents),
    OutputBufferLimit(Vec<(String, [u64; 3])>),
    ReadMode(ReadMode),
}

/// The parameters, in the order `CONFIG GET *` lists them.
fn params() -> Vec<Param> {
    vec![
        Param {
            name: "save",
            get: Value::Fixed(""),
            parse: None,
        },
        Param {
            name: "appendonly",
            get: Value::Fixed("no"),
            parse: None,
        },
        Param {
            name: "appendfsync",
            get: Value::Fixed("always"),
            parse: None,
        },
        Param {
            name: "databases",
            get: Value::Fixed("1"),
            parse: None,
        },
        Param {
            name: "maxmemory",
            get: Value::Fixed("0"),
            parse: None,
        },
        Param {
            name: "maxmemory-policy",
            get: Value::Fixed("noeviction"),
            parse: None,
        },
        Param {
            name: "maxclients",
            get: Value::Live(|ctx| ctx.settings.max_clients().to_string()),
            parse: Some(|v| {
                parse_bounded(v, 1, u32::MAX as u64).map(|n| NewValue::MaxClients(n as usize))
            }),
        },
        Param {
            name: "timeout",
            get: Value::Live(|ctx| ctx.settings.timeout_secs().to_string()),
            parse: Some(|v| parse_bounded(v, 0, i32::MAX as u64).map(NewValue::Timeout)),
        },
        Param {
            name: "notify-keyspace-events",
            get: Value::Live(|ctx| ctx.settings.notify_keyspace_events().render()),
            parse: Some(|v| {
                NotifyKeyspaceEvents::parse(v)
                    .map(NewValue::NotifyKeyspaceEvents)
                    .ok_or_else(|| {
                        format!(
                            "Invalid event class character. Use '{}'.",
                            NotifyKeyspaceEvents::LETTERS
                        )
                    })
            }),
        },
        Param {
            name: "read-mode",
            get: Value::Live(|ctx| ctx.settings.read_mode().to_string()),
            parse: Some(|v| {
                v.parse::<ReadMode>().map(NewValue::ReadMode).map_err(|_| {
                    "argument(s) must be one of the following: linearizable, lease, stale".into()
                })
            }),
        },
        Param {
            name: "proto-max-bulk-len",
            get: Value::Live(|ctx| ctx.limits.max_bulk_len.to_string()),
            parse: None,
        },
        Param {
            name: "client-output-buffer-limit",
            get: Value::Live(output_buffer_limit_string),
            parse: Some(|v| parse_output_buffer_limit(v).map(NewValue::OutputBufferLimit)),
        },
        Param {
            name: "cluster-enabled",
            get: Value::Fixed("no"),
            parse: None,
        },
        Param {
            name: "port",
            get: Value::Live(|ctx| ctx.tcp_port.to_string()),
            parse: None,
        },
        Param {
            name: "tcp-keepalive",
            get: Value::Fixed("0"),
            parse: None,
        },
        Param {
            name: "io-threads",
            get: Value::Fixed("1"),
            parse: None,
        },
    ]
}

/// Parses an integer setting as Redis's numeric configs do, with their error texts.
fn parse_bounded(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: i128 = v
        .parse()
        .ok()
        .filter(|_| !v.starts_with('+'))
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if n < min as i128 || n > max as i128 {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n as u64)
}

/// Redis's `memtoull`: digits with an optional b, k, kb, m, mb, g or gb (any case) suffix.
fn parse_memory(v: &str) -> Option<u64> {
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.is_empty() {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// Parses `<class> <hard> <soft> <soft_seconds> ...` as Redis's
/// `setConfigClientOutputBufferLimitOption` does.
fn parse_output_buffer_limit(v: &str) -> Result<Vec<(String, [u64; 3])>, String> {
    let tokens: Vec<&str> = if v.is_empty() {
        Vec::new()
    } else {
        v.split(' ').collect()
    };
    if tokens.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = Vec::new();
    for chunk in tokens.chunks(4) {
        let class = chunk[0].to_ascii_lowercase();
        let class = match class.as_str() {
            "normal" | "pubsub" => class,
            "slave" | "replica" => "replica".to_string(),
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let mut values = [0u64; 3];
        for (slot, text) in values.iter_mut().zip(&chunk[1..]) {
            *slot = parse_memory(text).ok_or_else(|| {
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    .to_string()
            })?;
        }
        out.push((class, values));
    }
    Ok(out)
}

fn output_buffer_limit_string(ctx: &ServerContext) -> String {
    let classes = ctx
        .settings
        .output_buffer_classes
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let [rh, rs, rt] = classes.replica;
    let [ph, ps, pt] = classes.pubsub;
    format!(
        "normal {} {} {} slave {rh} {rs} {rt} pubsub {ph} {ps} {pt}",
        ctx.settings.output_buffer_limit(),
        classes.normal_soft,
        classes.normal_soft_secs
    )
}

fn apply(ctx: &ServerContext, value: NewValue) {
    let s = &ctx.settings;
    match value {
        NewValue::MaxClients(n) => s.max_clients.store(n, Ordering::Relaxed),
        NewValue::Timeout(t) => s.timeout_secs.store(t, Ordering::Relaxed),
        NewValue::ReadMode(m) => s.set_read_mode(m),
        NewValue::NotifyKeyspaceEvents(f) => s.notify_keyspace_events.store(f.0, Ordering::Relaxed),
        NewValue::OutputBufferLimit(classes) => {
            let mut stored = s
                .output_buffer_classes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for (class, [hard, soft, secs]) in classes {
                match class.as_str() {
                    "normal" => {
                        s.output_buffer_limit.store(hard, Ordering::Relaxed);
                        stored.normal_soft = soft;
                        stored.normal_soft_secs = secs;
                    }
                    "replica" => stored.replica = [hard, soft, secs],
                    _ => stored.pubsub = [hard, soft, secs],
                }
            }
        }
    }
}

fn config(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    match sub.as_str() {
        "get" => config_get(ctx, parse),
        "set" => config_set(ctx, parse),
        "resetstat" => {
            ctx.total_commands.store(0, Ordering::Relaxed);
            ctx.total_connections.store(0, Ordering::Relaxed);
            ctx.rejected_connections.store(0, Ordering::Relaxed);
            Ok(Frame::ok())
        }
        "help" => Ok(help_reply(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ],
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try CONFIG HELP."
        ))),
    }
}

fn config_get(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let params = params();
    let mut pairs: Vec<(Frame, Frame)> = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    while let Ok(pattern) = parse.next_string() {
        if !pattern.contains(['*', '?', '[']) {
            // An exact name answers under the name as asked, as Redis 7.0 does.
            if let Some(p) = params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(&pattern))
            {
                if !seen.contains(&p.name) {
                    seen.push(p.name);
                    pairs.push((bulk(pattern), bulk(p.value(ctx))));
                }
            }
            continue;
        }
        for p in &params {
            if !seen.contains(&p.name) && glob_match(pattern.as_bytes(), p.name.as_bytes(), true) {
                seen.push(p.name);
                pairs.push((bulk(p.name), bulk(p.value(ctx))));
            }
        }
    }
    Ok(Frame::Map(pairs))
}

fn config_set(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let mut args = Vec::new();
    while let Ok(a) = parse.next_string() {
        args.push(a);
    }
    if args.len() % 2 != 0 {
        return Err(ParseError::Syntax.into());
    }
    let params = params();
    let failed = |name: &str, why: &str| {
        CommandError::Reply(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    // First pass, as Redis: an unknown name wins over every other error; otherwise the first
    // immutable or duplicate parameter is reported.
    let mut chosen: Vec<(&Param, &str, &str)> = Vec::new();
    let mut first_error = None;
    for pair in args.chunks(2) {
        let (name, value) = (pair[0].as_str(), pair[1].as_str());
        let Some(p) = params.iter().find(|p| p.name.eq_ignore_ascii_case(name)) else {
            return Err(CommandError::Reply(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if first_error.is_some() {
            continue;
        }
        if p.parse.is_none() && value != p.value(ctx) {
            first_error = Some(failed(name, "can't set immutable config"));
        } else if chosen.iter().any(|(q, _, _)| q.name == p.name) {
            first_error = Some(failed(name, "duplicate parameter"));
        }
        chosen.push((p, name, value));
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    // Second pass: validate every value before applying any, so the change is all or nothing.
    let mut values = Vec::new();
    for (p, name, value) in chosen {
        if let Some(parse_value) = p.parse {
            values.push(parse_value(value).map_err(|why| failed(name, &why))?);
        }
    }
    for v in values {
        apply(ctx, v);
    }
    Ok(Frame::ok())
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
    let m = ctx.node.status();
    let applied = m.last_applied.as_ref().map(|l| l.index()).unwrap_or(0) as i64;
    if m.current_leader == Some(ctx.node.id) {
        let membership = &m.membership;
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
                    bulk(host),
                    bulk(port.to_string()),
                    bulk(matched.to_string()),
                ])
            })
            .collect();
        Frame::Array(vec![
            bulk("master"),
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
            bulk("slave"),
            bulk(host),
            Frame::Integer(port),
            bulk(state),
            Frame::Integer(applied),
        ])
    }
}

/// The sections `INFO` (and `INFO default`/`all`/`everything`) shows, in order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "persistence",
    "stats",
    "replication",
    "raft",
    "reads",
    "keyspace",
];

/// `INFO [section ...]`: Redis's `# Section` / `key:value` text, sections separated by a blank
/// line. Unknown section names add nothing, as in Redis.
pub fn info(ctx: &ServerContext, sections: &[String]) -> String {
    let all = sections.is_empty()
        || sections
            .iter()
            .any(|s| matches!(s.as_str(), "all" | "everything" | "default"));
    let mut parts = Vec::new();
    for &name in SECTIONS {
        if all || sections.iter().any(|s| s == name) {
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
                 cluster_name:{}\r\nnode_id:{}\r\n",
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
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\n\
                 client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n\
                 blocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                ctx.connected.load(Ordering::Relaxed),
                ctx.settings.max_clients(),
            );
        }
        "persistence" => out.push_str(
            "# Persistence\r\nloading:0\r\naof_enabled:0\r\nrdb_bgsave_in_progress:0\r\n",
        ),
        "stats" => {
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 rejected_connections:{}\r\n",
                ctx.total_connections.load(Ordering::Relaxed),
                ctx.total_commands.load(Ordering::Relaxed),
                ctx.rejected_connections.load(Ordering::Relaxed),
            );
        }
        "replication" => replication_section(ctx, &mut out),
        "raft" => raft_section(ctx, &mut out),
        "reads" => reads_section(ctx, &mut out),
        "keyspace" => {
            let st = ctx.node.sm.read();
            out.push_str("# Keyspace\r\n");
            if !st.store.is_empty() {
                let _ = write!(out, "db0:keys={},expires=0,avg_ttl=0\r\n", st.store.len());
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
         lease_fallbacks:{}\r\n\
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
    let (revision, compact_revision, dedup_clients) = {
        let st = ctx.node.sm.read();
        (
            st.store.revision(),
            st.store.compact_revision(),
            st.store.dedup_clients(),
        )
    };
    let _ = write!(
        out,
        "# Raft\r\nraft_node_id:{}\r\nraft_state:{:?}\r\nraft_term:{}\r\nraft_leader_id:{}\r\n\
         raft_voters:{}\r\nraft_last_log_index:{}\r\nraft_commit_index:{}\r\n\
         raft_applied_index:{}\r\nraft_snapshot_index:{}\r\nraft_purged_index:{}\r\n\
         raft_log_flushes:{}\r\nraft_log_appends_flushed:{}\r\nraft_log_entries_flushed:{}\r\n\
         raft_log_entries_per_flush:{:.2}\r\nraft_read_index_rounds:{}\r\n\
         raft_read_index_reads:{}\r\nrevision:{}\r\ncompact_revision:{}\r\n\
         dedup_clients:{}\r\ndedup_window_ms:{}\r\ndedup_max_clients:{}\r\n",
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
        ctx.node.reads.stats.index_rounds.load(Ordering::Relaxed),
        ctx.node.reads.stats.index_reads.load(Ordering::Relaxed),
        revision,
        compact_revision,
        dedup_clients,
        crate::store::DEDUP_WINDOW_MS,
        crate::store::MAX_DEDUP_CLIENTS,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::OutputBufferClasses;

    #[test]
    fn output_buffer_limit_parses_like_redis() {
        assert_eq!(
            parse_output_buffer_limit("normal 1mb 0 0").unwrap(),
            vec![("normal".to_string(), [1 << 20, 0, 0])]
        );
        assert_eq!(
            parse_output_buffer_limit("slave 256mb 64mb 60 pubsub 32MB 8mb 60").unwrap(),
            vec![
                ("replica".to_string(), [256 << 20, 64 << 20, 60]),
                ("pubsub".to_string(), [32 << 20, 8 << 20, 60]),
            ]
        );
        assert_eq!(parse_output_buffer_limit("").unwrap(), vec![]);
        assert_eq!(
            parse_output_buffer_limit("normal 1mb").unwrap_err(),
            "Wrong number of arguments in buffer limit configuration."
        );
        assert_eq!(
            parse_output_buffer_limit("master 1 0 0").unwrap_err(),
            "Invalid client class specified in buffer limit configuration."
        );
        assert_eq!(
            parse_output_buffer_limit("normal x 0 0").unwrap_err(),
            "Error in hard, soft or soft_seconds setting in buffer limit configuration."
        );
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("k"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn bounded_integers_use_redis_texts() {
        assert_eq!(parse_bounded("10", 1, 20), Ok(10));
        assert_eq!(
            parse_bounded("abc", 1, 20).unwrap_err(),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(
            parse_bounded("-1", 0, 2147483647).unwrap_err(),
            "argument must be between 0 and 2147483647 inclusive"
        );
    }

    #[test]
    fn default_output_buffer_classes_render_like_redis() {
        let c = OutputBufferClasses::default();
        assert_eq!(c.replica, [268435456, 67108864, 60]);
        assert_eq!(c.pubsub, [33554432, 8388608, 60]);
    }
}
