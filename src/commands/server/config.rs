//! CONFIG GET, SET and RESETSTAT: the parameters `CONFIG GET` lists, their values, and the ones
//! `CONFIG SET` changes on this node until restart (`context::Settings`).
//!
//! One parameter is cluster state instead: `CONFIG SET requirepass <password>` is Redis's way of
//! setting the `default` user's password (Redis's `ACLUpdateDefaultUserPassword`: `resetpass`,
//! then `><password>`, or `nopass` for an empty one), so it is proposed as that `ACL SETUSER
//! default` (a Raft entry: every node enforces it at once and keeps it over restarts, and the
//! node's `requirepass` in `cluster.toml` no longer applies). It is proposed before any other
//! parameter of the same call is applied (a refused proposal changes nothing); a TLS reload of the
//! same call that then fails leaves the password changed. `CONFIG GET requirepass` answers
//! nothing: the password is kept hashed.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::commands::reply::{bulk, help_reply};
use crate::commands::{CommandError, CommandResult, Session};
use crate::config::{NotifyKeyspaceEvents, ReadMode};
use crate::context::ServerContext;
use crate::glob;
use crate::protocol::{Frame, Parse, ParseError};

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
    /// Settable, never shown (`requirepass`: kept hashed, as cluster state).
    Hidden,
}

impl Param {
    fn value(&self, ctx: &ServerContext) -> String {
        match self.get {
            Value::Fixed(v) => v.to_string(),
            Value::Live(f) => f(ctx),
            Value::Hidden => String::new(),
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
    TrackingTableMaxKeys(usize),
    /// A TLS setting: applied with the other TLS settings of the same `CONFIG SET`, before
    /// anything else, by one reload that may still fail (`tls::TlsContext::set`).
    Tls,
    /// The `default` user's new password (`None`: no password), proposed as an ACL change.
    RequirePass(Option<String>),
}

/// A TLS setting's value (empty on a node without TLS).
fn tls_value(ctx: &ServerContext, name: &str) -> String {
    ctx.tls
        .as_ref()
        .and_then(|t| t.get(name))
        .unwrap_or_default()
}

/// The parameters, in the order `CONFIG GET *` lists them.
fn params() -> Vec<Param> {
    vec![
        Param {
            name: "requirepass",
            get: Value::Hidden,
            parse: Some(|v| {
                Ok(NewValue::RequirePass(
                    (!v.is_empty()).then(|| v.to_string()),
                ))
            }),
        },
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
            name: "tracking-table-max-keys",
            get: Value::Live(|ctx| ctx.tracker.max_keys().to_string()),
            parse: Some(|v| {
                parse_bounded(v, 0, i64::MAX as u64)
                    .map(|n| NewValue::TrackingTableMaxKeys(n as usize))
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
            name: "tls-port",
            get: Value::Live(|ctx| ctx.tls_port.to_string()),
            parse: None,
        },
        Param {
            name: "tls-cert-file",
            get: Value::Live(|ctx| tls_value(ctx, "tls-cert-file")),
            parse: Some(|_| Ok(NewValue::Tls)),
        },
        Param {
            name: "tls-key-file",
            get: Value::Live(|ctx| tls_value(ctx, "tls-key-file")),
            parse: Some(|_| Ok(NewValue::Tls)),
        },
        Param {
            name: "tls-ca-cert-file",
            get: Value::Live(|ctx| tls_value(ctx, "tls-ca-cert-file")),
            parse: Some(|_| Ok(NewValue::Tls)),
        },
        Param {
            name: "tls-auth-clients",
            get: Value::Live(|ctx| tls_value(ctx, "tls-auth-clients")),
            parse: Some(|_| Ok(NewValue::Tls)),
        },
        Param {
            name: "tls-protocols",
            get: Value::Live(|ctx| tls_value(ctx, "tls-protocols")),
            parse: Some(|_| Ok(NewValue::Tls)),
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
    let [ph, ps, pt] = ctx.node.pubsub.limits();
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
        NewValue::TrackingTableMaxKeys(n) => ctx.tracker.set_max_keys(n),
        NewValue::Tls | NewValue::RequirePass(_) => {} // applied by `config_set` first
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
                    _ => {
                        stored.pubsub = [hard, soft, secs];
                        ctx.node.pubsub.set_limits([hard, soft, secs]);
                    }
                }
            }
        }
    }
}

pub(in crate::commands) async fn config(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    match sub.as_str() {
        "get" => config_get(ctx, parse),
        "set" => config_set(ctx, session, parse).await,
        "resetstat" => {
            ctx.total_commands.store(0, Ordering::Relaxed);
            ctx.total_connections.store(0, Ordering::Relaxed);
            ctx.rejected_connections.store(0, Ordering::Relaxed);
            ctx.command_stats.reset();
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
                .filter(|p| !matches!(p.get, Value::Hidden))
                .find(|p| p.name.eq_ignore_ascii_case(&pattern))
            {
                if !seen.contains(&p.name) {
                    seen.push(p.name);
                    pairs.push((bulk(pattern), bulk(p.value(ctx))));
                }
            }
            continue;
        }
        for p in params.iter().filter(|p| !matches!(p.get, Value::Hidden)) {
            if !seen.contains(&p.name)
                && glob::matches_nocase(pattern.as_bytes(), p.name.as_bytes())
            {
                seen.push(p.name);
                pairs.push((bulk(p.name), bulk(p.value(ctx))));
            }
        }
    }
    Ok(Frame::Map(pairs))
}

async fn config_set(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
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
    let mut tls: Vec<(&str, &str)> = Vec::new();
    let mut password = None;
    for (p, name, value) in chosen {
        if let Some(parse_value) = p.parse {
            match parse_value(value).map_err(|why| failed(name, &why))? {
                NewValue::Tls => tls.push((p.name, value)),
                NewValue::RequirePass(new) => password = Some(new),
                v => values.push(v),
            }
        }
    }
    if !tls.is_empty() && ctx.tls.is_none() {
        return Err(failed(
            tls[0].0,
            "TLS is not enabled on this node (set tls_addr, or peers or metrics in [tls])",
        ));
    }
    // The password first: cluster state, proposed; refused, it leaves everything as it was.
    if let Some(new) = password {
        set_default_password(ctx, session, new.as_deref()).await?;
    }
    // TLS next (a node without TLS was refused above): its reload reads files and may still
    // fail, and then nothing else is applied.
    if let (false, Some(t)) = (tls.is_empty(), &ctx.tls) {
        t.set(&tls).map_err(|(name, why)| failed(&name, &why))?;
    }
    for v in values {
        apply(ctx, v);
    }
    Ok(Frame::ok())
}

/// `CONFIG SET requirepass`: Redis's `ACLUpdateDefaultUserPassword` as `ACL SETUSER default
/// resetpass >password` (or `nopass`), the password hashed before it is proposed (HashedOnly).
async fn set_default_password(
    ctx: &ServerContext,
    session: &mut Session,
    password: Option<&str>,
) -> Result<(), CommandError> {
    let rules = vec![
        Bytes::from_static(b"resetpass"),
        match password {
            Some(p) => Bytes::from(format!("#{}", crate::store::hash_password(p.as_bytes()))),
            None => Bytes::from_static(b"nopass"),
        },
    ];
    crate::commands::acl_command::set_rules(ctx, session, Bytes::from_static(b"default"), rules)
        .await
        .map_err(CommandError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::OutputBufferClasses;

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
