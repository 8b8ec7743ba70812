//! `ACL`: users and permissions, Redis 7.0's subcommands and texts. SETUSER and DELUSER are
//! Raft entries (`Op::AclSetUser`, `Op::AclDelUser`: the users are cluster state, applied on
//! every node); the rest answer from this node's view (`crate::acl`). `ACL LOG` is per node.
//!
//! # Format
//!
//! ```text
//! ACL SETUSER name [rule ...]   → +OK | -ERR Error in ACL SETUSER modifier '<rule>': <why>
//! ACL DELUSER name [name ...]   → :users deleted (their connections close)
//! ACL GETUSER name              → map: flags passwords commands keys channels selectors | nil
//! ACL LIST | USERS | WHOAMI     → "user <name> <rules>" per user | names | this user's name
//! ACL CAT [category]            → categories | the commands in one
//! ACL DRYRUN name command [arg ...] → +OK | bulk: why the user may not run it
//! ACL LOG [count | RESET]       → the newest refusals on this node
//! ACL GENPASS [bits]            → random hex (256 bits by default)
//! ACL LOAD | SAVE               → -ERR (no ACL file: users live in the cluster)
//! ```
//!
//! Differences from Redis: selectors (`(...)` rules) are refused; rules name only commands
//! redraft has; a user switched `off` loses its connections too (Redis closes them only when
//! the user is deleted).

use bytes::Bytes;
use rand::RngCore;

use super::reply::help_reply;
use super::{CommandError, CommandResult, Session};
use crate::acl::check_command;
use crate::acl::rules::{self, describe, is_command_rule, CATEGORIES};
use crate::commands::table::{self, Lookup};
use crate::config::ReadMode;
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse};
use crate::store::{hash_password, AclUser, Op, Response, RuleError, StoreError};

fn err(text: impl Into<String>) -> CommandError {
    CommandError::Reply(text.into())
}

fn bulk(s: impl Into<String>) -> Frame {
    Frame::Bulk(Bytes::from(s.into()))
}

pub(super) async fn acl(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let typed = parse.next_string()?;
    let sub = typed.to_ascii_lowercase();
    let mut args = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        args.push(parse.next_bytes()?);
    }
    match sub.as_str() {
        "setuser" => set_user(ctx, session, args).await,
        "deluser" => del_user(ctx, session, args).await,
        "getuser" => get_user(ctx, &args[0]),
        "list" | "users" => {
            let view = ctx.acl.view();
            Ok(Frame::Array(
                view.users
                    .values()
                    .map(|u| {
                        if sub == "users" {
                            Frame::Bulk(u.name.clone())
                        } else {
                            let name = String::from_utf8_lossy(&u.name);
                            bulk(format!("user {name} {}", describe_user(&u.user, &u.perms)))
                        }
                    })
                    .collect(),
            ))
        }
        "whoami" => Ok(Frame::Bulk(session.user.clone())),
        "cat" => cat(&args, &typed),
        "genpass" => genpass(&args, &typed),
        "log" => log(ctx, &args, &typed),
        "dryrun" => dryrun(ctx, &args),
        "load" | "save" => Err(err(
            "ERR This Redis instance is not configured to use an ACL file. You may want to \
             specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
             (assuming you have a Redis configuration file set) in order to store users in the \
             Redis configuration.",
        )),
        _ => Ok(help_reply("ACL", HELP)),
    }
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

/// `ACL SETUSER`: checks what can be checked without the user (command names, syntax), turns
/// passwords into hashes (HashedOnly), and proposes the rules; the store applies them all or
/// none and names a refused rule by its index, which is answered with the rule as written.
async fn set_user(ctx: &ServerContext, session: &mut Session, args: Vec<Bytes>) -> CommandResult {
    let name = args[0].clone();
    if name.iter().any(|&b| b.is_ascii_whitespace() || b == 0) {
        return Err(err("ERR Usernames can't contain spaces or null characters"));
    }
    let given = &args[1..];
    let mut rules = Vec::with_capacity(given.len());
    let modifier = |rule: &[u8], why: &str| {
        err(format!(
            "ERR Error in ACL SETUSER modifier '{}': {why}",
            String::from_utf8_lossy(rule)
        ))
    };
    for rule in given {
        if rule.first() == Some(&b'(') {
            return Err(modifier(rule, "selectors are not supported by redraft"));
        }
        if is_command_rule(rule) {
            rules::validate(&String::from_utf8_lossy(rule))
                .map_err(|e| modifier(rule, e.text()))?;
            rules.push(rule.clone());
            continue;
        }
        // Errors that do not depend on the user's state (the store finds the others).
        if let Err(e @ (RuleError::Syntax | RuleError::BadHash)) = AclUser::new().apply_rule(rule) {
            return Err(modifier(rule, e.text()));
        }
        rules.push(match rule.first() {
            Some(b'>') => Bytes::from(format!("#{}", hash_password(&rule[1..]))),
            Some(b'<') => Bytes::from(format!("!{}", hash_password(&rule[1..]))),
            _ => rule.clone(),
        });
    }
    match set_rules(ctx, session, name, rules).await {
        Err(SetRulesError::Rule { index, reason }) => {
            let rule = given.get(index as usize).map_or(&[][..], |r| &r[..]);
            Err(modifier(rule, &reason))
        }
        Err(SetRulesError::Command(e)) => Err(e),
        Ok(()) => Ok(Frame::ok()),
    }
}

/// Why [`set_rules`] failed: a rule the store refused (by its index), or anything else.
pub(in crate::commands) enum SetRulesError {
    Rule { index: u64, reason: String },
    Command(CommandError),
}

impl From<CommandError> for SetRulesError {
    fn from(e: CommandError) -> Self {
        SetRulesError::Command(e)
    }
}

impl From<SetRulesError> for CommandError {
    fn from(e: SetRulesError) -> Self {
        match e {
            SetRulesError::Rule { reason, .. } => err(format!("ERR {reason}")),
            SetRulesError::Command(e) => e,
        }
    }
}

/// Proposes `rules` (checked, passwords already hashed) for user `name`, creating it (for
/// `default`: from this node's `requirepass` user first), and waits until this node applied it.
pub(in crate::commands) async fn set_rules(
    ctx: &ServerContext,
    session: &mut Session,
    name: Bytes,
    rules: Vec<Bytes>,
) -> Result<(), SetRulesError> {
    let create = if &name[..] == b"default" {
        ctx.acl.default_rules().to_vec()
    } else {
        Vec::new()
    };
    let op = Op::AclSetUser {
        name,
        rules,
        create,
    };
    match propose(ctx, session, op).await? {
        Response::Noop { .. } => Ok(()),
        Response::Error(StoreError::AclRule { index, reason }) => {
            Err(SetRulesError::Rule { index, reason })
        }
        Response::Error(e) => Err(err(e.to_string()).into()),
        other => Err(err(format!("ERR unexpected response {other:?}")).into()),
    }
}

async fn del_user(ctx: &ServerContext, session: &mut Session, args: Vec<Bytes>) -> CommandResult {
    if args.iter().any(|n| &n[..] == b"default") {
        return Err(err("ERR The 'default' user cannot be removed"));
    }
    match propose(ctx, session, Op::AclDelUser { names: args }).await? {
        Response::Integer { value, .. } => Ok(Frame::Integer(value)),
        Response::Error(e) => Err(err(e.to_string())),
        other => Err(err(format!("ERR unexpected response {other:?}"))),
    }
}

/// Proposes an ACL change and waits until this node has applied it, so that this
/// connection's next command (and every other of this node's) is checked against it.
async fn propose(
    ctx: &ServerContext,
    session: &mut Session,
    op: Op,
) -> Result<Response, CommandError> {
    session.barrier_valid = false;
    let req = session.request(op);
    let response = ctx.node.write(req).await?;
    ctx.node.read_barrier(ReadMode::Linearizable).await?;
    Ok(response)
}

/// Redis's `ACLDescribeUser`: flags, `#hash`es, keys, channels, command rules.
fn describe_user(user: &AclUser, perms: &crate::acl::Perms) -> String {
    let mut out = String::new();
    for f in user.flags() {
        out.push_str(f);
        out.push(' ');
    }
    for p in &user.passwords {
        out.push('#');
        out.push_str(p);
        out.push(' ');
    }
    if user.allkeys {
        out.push_str("~* ");
    } else {
        for k in &user.keys {
            out.push_str(&k.describe());
            out.push(' ');
        }
    }
    if user.allchannels {
        out.push_str("&* ");
    } else {
        out.push_str("resetchannels ");
        for c in &user.channels {
            out.push('&');
            out.push_str(&String::from_utf8_lossy(c));
            out.push(' ');
        }
    }
    out.push_str(&describe(perms));
    out
}

fn get_user(ctx: &ServerContext, name: &[u8]) -> CommandResult {
    let Some(u) = ctx.acl.user(name) else {
        return Ok(Frame::Null);
    };
    let keys = if u.user.allkeys {
        "~*".to_string()
    } else {
        let keys: Vec<String> = u.user.keys.iter().map(|k| k.describe()).collect();
        keys.join(" ")
    };
    let channels = if u.user.allchannels {
        "&*".to_string()
    } else {
        let channels: Vec<String> = u
            .user
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        channels.join(" ")
    };
    Ok(Frame::Map(vec![
        (
            bulk("flags"),
            Frame::Set(u.user.flags().into_iter().map(bulk).collect()),
        ),
        (
            bulk("passwords"),
            Frame::Array(u.user.passwords.iter().map(|p| bulk(p.clone())).collect()),
        ),
        (bulk("commands"), bulk(describe(&u.perms))),
        (bulk("keys"), bulk(keys)),
        (bulk("channels"), bulk(channels)),
        (bulk("selectors"), Frame::Array(Vec::new())),
    ]))
}

fn subcommand_error(typed: &str) -> CommandError {
    let sub: String = typed.chars().take(128).collect();
    err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try ACL HELP."
    ))
}

fn cat(args: &[Bytes], typed: &str) -> CommandResult {
    match args {
        [] => Ok(Frame::Array(CATEGORIES.iter().map(|c| bulk(*c)).collect())),
        [cat] => {
            let cat = String::from_utf8_lossy(cat);
            if !rules::is_category(&cat) {
                let shown: String = cat.chars().take(128).collect();
                return Err(err(format!("ERR Unknown category '{shown}'")));
            }
            Ok(Frame::Array(
                rules::category_commands(&cat)
                    .into_iter()
                    .map(bulk)
                    .collect(),
            ))
        }
        _ => Err(subcommand_error(typed)),
    }
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("ERR value is not an integer or out of range"))
}

fn genpass(args: &[Bytes], typed: &str) -> CommandResult {
    let bits = match args {
        [] => 256,
        [bits] => integer(bits)?,
        _ => return Err(subcommand_error(typed)),
    };
    if bits <= 0 || bits > 4096 {
        return Err(err(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to 4096",
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut raw = vec![0u8; chars.div_ceil(2)];
    rand::thread_rng().fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(bulk(hex[..chars].to_string()))
}

fn log(ctx: &ServerContext, args: &[Bytes], typed: &str) -> CommandResult {
    let count = match args {
        [] => 10,
        [a] if a.eq_ignore_ascii_case(b"reset") => {
            ctx.acl
                .log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .reset();
            return Ok(Frame::ok());
        }
        [a] => integer(a)?.max(0) as usize,
        _ => return Err(subcommand_error(typed)),
    };
    let entries = ctx
        .acl
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .newest(count);
    Ok(Frame::Array(
        entries
            .into_iter()
            .map(|(e, age)| {
                Frame::Map(vec![
                    (bulk("count"), Frame::Integer(e.count as i64)),
                    (bulk("reason"), bulk(e.reason.name())),
                    (bulk("context"), bulk(e.context.name())),
                    (bulk("object"), bulk(e.object)),
                    (bulk("username"), bulk(e.username)),
                    (bulk("age-seconds"), Frame::Double(age)),
                    (bulk("client-info"), bulk(e.client_info)),
                ])
            })
            .collect(),
    ))
}

fn dryrun(ctx: &ServerContext, args: &[Bytes]) -> CommandResult {
    let Some(user) = ctx.acl.user(&args[0]) else {
        return Err(err(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(&args[0])
        )));
    };
    let argv = &args[1..];
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let Lookup::Found(spec, id) = table::lookup(&name, argv.get(1).map(|a| &a[..])) else {
        return Err(err(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&argv[0])
        )));
    };
    if !spec.arity_ok(argv.len()) {
        return Err(err(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    match check_command(&user, spec, id, argv) {
        Ok(()) => Ok(Frame::ok()),
        Err(denied) => Ok(bulk(denied.dryrun(spec.name, argv))),
    }
}
