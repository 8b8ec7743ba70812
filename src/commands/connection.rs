//! Connection commands: the state of one client's connection. They answer from the session and
//! the client registry only; none touches the store or Raft (except `HELLO`'s role).
//!
//! # Format
//!
//! ```text
//! PING [message]                → +PONG | bulk message
//! ECHO message                  → bulk message
//! HELLO [protover [AUTH user pass] [SETNAME name]]
//!                               → map: server, version, proto, id, mode, role, modules;
//!                                 switches the connection to RESP2 or RESP3
//! AUTH [user] password          → +OK | -WRONGPASS ... | -ERR AUTH <password> called without ...
//! SELECT index                  → +OK for 0; -ERR SELECT is not allowed in cluster mode
//! RESET                         → +RESET (RESP2, no name, default read mode, re-AUTH if needed)
//! READONLY | READWRITE          → +OK (read mode stale | the server's default)
//! READMODE [linearizable|lease|stale] → bulk mode | +OK
//! CLIENT ID                     → :id
//! CLIENT SETNAME name | GETNAME → +OK | bulk name or nil
//! CLIENT SETINFO LIB-NAME|LIB-VER value → +OK
//! CLIENT INFO                   → verbatim text: this client's CLIENT LIST line
//! CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...] → verbatim text, a line a client
//! CLIENT KILL ip:port | [ID id] [TYPE t] [USER u] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no]
//!                               → +OK | :killed
//! CLIENT NO-EVICT on|off, NO-TOUCH on|off → +OK (flags only)
//! ```
//!
//! Redis's behaviour and texts (`networking.c`, `server.c`, `acl.c` of Redis 7.2), except:
//! `SELECT` answers as Redis Cluster does, and `READONLY`/`READWRITE` work outside cluster mode.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::args::wrong_arity as arity;
use super::reply::{help_reply, verbatim};
use super::session::ReplyMode;
use super::REDIS_VERSION;
use super::{CommandError, CommandResult, Session};
use crate::acl::{LogContext, LogReason};
use crate::config::ReadMode;
use crate::context::clients::{FLAG_NO_EVICT, FLAG_NO_TOUCH};
use crate::context::{ClientHandle, ServerContext};
use crate::protocol::{Frame, Parse, ParseError, Protocol};

/// RESET: back to a new connection's state (`Session::reset`).
pub(super) fn reset(ctx: &ServerContext, session: &mut Session) -> CommandResult {
    session.reset(ctx);
    Ok(Frame::Simple("RESET".into()))
}

/// READONLY: stale reads from now on (redraft's meaning of Redis's replica reads).
pub(super) fn readonly(session: &mut Session) -> CommandResult {
    session.set_read_mode(ReadMode::Stale);
    Ok(Frame::ok())
}

/// READWRITE: back to the read mode new connections start in.
pub(super) fn readwrite(ctx: &ServerContext, session: &mut Session) -> CommandResult {
    session.set_read_mode(ctx.settings.read_mode());
    Ok(Frame::ok())
}

pub(super) fn ping(parse: &mut Parse) -> CommandResult {
    match parse.remaining() {
        0 => Ok(Frame::Simple("PONG".into())),
        1 => Ok(Frame::Bulk(parse.next_bytes()?)),
        _ => Err(arity("ping")),
    }
}

pub(super) fn echo(parse: &mut Parse) -> CommandResult {
    let msg = parse.next_bytes().map_err(|_| arity("echo"))?;
    parse.finish().map_err(|_| arity("echo"))?;
    Ok(Frame::Bulk(msg))
}

/// Logs the session in as `user` if `pass` is one of its passwords (or it is `nopass`) and it
/// is on (Redis's `ACLAuthenticateUser`); a refusal is an `auth` entry of the ACL LOG, whose
/// object is the command's name as sent.
fn authenticate(
    ctx: &ServerContext,
    session: &mut Session,
    command: &str,
    user: &[u8],
    pass: &[u8],
) -> Result<(), CommandError> {
    match ctx.acl.user(user) {
        Some(u) if u.user.password_ok(pass) => {
            session.log_in(u);
            Ok(())
        }
        _ => {
            let context = if session.txn.in_multi() {
                LogContext::Multi
            } else {
                LogContext::Toplevel
            };
            let user = String::from_utf8_lossy(user).into_owned();
            session.log_refusal(ctx, LogReason::Auth, context, command.into(), Some(user));
            Err(wrongpass())
        }
    }
}

fn wrongpass() -> CommandError {
    CommandError::Reply("WRONGPASS invalid username-password pair or user is disabled.".into())
}

pub(super) fn auth(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    let (user, pass) = match parse.remaining() {
        1 => {
            if ctx.acl.user(b"default").is_none_or(|u| u.user.nopass) {
                return Err(CommandError::Reply(
                    "ERR AUTH <password> called without any password configured for the \
                     default user. Are you sure your configuration is correct?"
                        .into(),
                ));
            }
            (Bytes::from_static(b"default"), parse.next_bytes()?)
        }
        2 => (parse.next_bytes()?, parse.next_bytes()?),
        0 => return Err(arity("auth")),
        _ => return Err(ParseError::Syntax.into()),
    };
    authenticate(ctx, session, "AUTH", &user, &pass)?;
    Ok(Frame::ok())
}

/// Redis's rule for client names and library fields (`validateClientAttr`): printable ASCII
/// without spaces, so `CLIENT LIST` stays parseable.
fn valid_client_attr(value: &[u8]) -> bool {
    value.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn client_name_error() -> CommandError {
    CommandError::Reply(
        "ERR Client names cannot contain spaces, newlines or special characters.".into(),
    )
}

/// Sets the client's name; "" clears it. The caller has validated it.
fn set_name(handle: &ClientHandle, name: &[u8]) {
    handle.names().name = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
}

pub(super) fn hello(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let mut proto = None;
    if parse.remaining() > 0 {
        let ver = parse.next_i64().map_err(|_| {
            CommandError::Reply("ERR Protocol version is not an integer or out of range".into())
        })?;
        proto = Some(match ver {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => {
                return Err(CommandError::Reply(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
        });
    }
    let (mut credentials, mut setname) = (None, None);
    while parse.remaining() > 0 {
        let opt = parse.next_string()?;
        let more = parse.remaining();
        if opt.eq_ignore_ascii_case("auth") && more >= 2 {
            credentials = Some((parse.next_bytes()?, parse.next_bytes()?));
        } else if opt.eq_ignore_ascii_case("setname") && more >= 1 {
            let name = parse.next_bytes()?;
            if !valid_client_attr(&name) {
                return Err(client_name_error());
            }
            setname = Some(name);
        } else {
            return Err(CommandError::Reply(format!(
                "ERR Syntax error in HELLO option '{opt}'"
            )));
        }
    }
    if let Some((user, pass)) = credentials {
        authenticate(ctx, session, "HELLO", &user, &pass)?;
    }
    if !session.authenticated {
        return Err(CommandError::Reply(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time"
                .into(),
        ));
    }
    if let Some(name) = setname {
        set_name(&session.handle, &name);
    }
    if let Some(proto) = proto {
        session.set_proto(proto);
    }
    let role = if ctx.node.is_leader() {
        "master"
    } else {
        "replica"
    };
    let bulk = |s: &str| Frame::Bulk(Bytes::from(s.to_string()));
    Ok(Frame::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (
            bulk("proto"),
            Frame::Integer(match session.proto {
                Protocol::Resp2 => 2,
                Protocol::Resp3 => 3,
            }),
        ),
        (bulk("id"), Frame::Integer(session.id as i64)),
        (bulk("mode"), bulk("standalone")),
        (bulk("role"), bulk(role)),
        (bulk("modules"), Frame::Array(Vec::new())),
    ]))
}

pub(super) fn select(parse: &mut Parse) -> CommandResult {
    let db = parse.next_i64()?;
    if db != 0 && i32::try_from(db).is_err() {
        return Err(ParseError::NotInteger.into());
    }
    match db {
        0 => Ok(Frame::ok()),
        _ => Err(CommandError::Reply(
            "ERR SELECT is not allowed in cluster mode".into(),
        )),
    }
}

pub(super) fn readmode(session: &mut Session, parse: &mut Parse) -> CommandResult {
    match parse.remaining() {
        0 => Ok(Frame::Bulk(Bytes::from_static(
            session.read_mode.as_str().as_bytes(),
        ))),
        1 => {
            let want = parse.next_string()?;
            let mode: ReadMode = want.parse().map_err(|_| {
                CommandError::Reply(format!(
                    "ERR unknown read mode '{want}'; use linearizable, lease or stale"
                ))
            })?;
            session.set_read_mode(mode);
            Ok(Frame::ok())
        }
        _ => Err(ParseError::Syntax.into()),
    }
}

/// The `CLIENT` subcommands redraft answers; the dispatcher has resolved the subcommand and
/// checked its arity against the table.
pub(super) fn client(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    match sub.as_str() {
        "id" => Ok(Frame::Integer(session.id as i64)),
        "getname" => Ok(match &session.handle.names().name {
            Some(n) => Frame::Bulk(Bytes::from(n.clone())),
            None => Frame::Null,
        }),
        "setname" => {
            let name = parse.next_bytes()?;
            if !valid_client_attr(&name) {
                return Err(client_name_error());
            }
            set_name(&session.handle, &name);
            Ok(Frame::ok())
        }
        "setinfo" => client_setinfo(session, parse),
        "reply" => {
            let mode = parse.next_string()?.to_ascii_lowercase();
            session.set_reply(match mode.as_str() {
                "on" => ReplyMode::On,
                "off" => ReplyMode::Off,
                "skip" => ReplyMode::Skip,
                _ => return Err(ParseError::Syntax.into()),
            });
            // OFF and SKIP mute this reply themselves (`Session::reply_muted`).
            Ok(Frame::ok())
        }
        "info" => {
            let mut line = String::new();
            session.handle.write_info_line(Instant::now(), &mut line);
            Ok(verbatim(line))
        }
        "list" => client_list(ctx, parse),
        "kill" => client_kill(ctx, session, parse),
        "tracking" => super::tracking::client_tracking(ctx, session, parse),
        "caching" => super::tracking::client_caching(session, parse),
        "getredir" => super::tracking::client_getredir(ctx, session),
        "trackinginfo" => super::tracking::client_trackinginfo(ctx, session),
        "no-evict" | "no-touch" => {
            let flag = if sub == "no-evict" {
                FLAG_NO_EVICT
            } else {
                FLAG_NO_TOUCH
            };
            let on = parse.next_string()?;
            if on.eq_ignore_ascii_case("on") {
                session.handle.set_flag(flag, true);
            } else if on.eq_ignore_ascii_case("off") {
                session.handle.set_flag(flag, false);
            } else {
                return Err(ParseError::Syntax.into());
            }
            Ok(Frame::ok())
        }
        "help" => Ok(help_reply(
            "CLIENT",
            &[
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "    * ID <client-id>",
                "      Kill connections by client id.",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "    * ID <client-id> [<client-id> ...]",
                "      Return clients of specified IDs only.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "NO-TOUCH (ON|OFF)",
                "    Will not touch LRU/LFU stats when this mode is on.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are:",
                "    * LIB-NAME: the client lib name.",
                "    * LIB-VER: the client lib version.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching.",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
            ],
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try CLIENT HELP."
        ))),
    }
}

fn client_setinfo(session: &mut Session, parse: &mut Parse) -> CommandResult {
    let attr = parse.next_string()?;
    let value = parse.next_bytes()?;
    let is_name = attr.eq_ignore_ascii_case("lib-name");
    if !is_name && !attr.eq_ignore_ascii_case("lib-ver") {
        return Err(CommandError::Reply(format!(
            "ERR Unrecognized option '{attr}'"
        )));
    }
    if !valid_client_attr(&value) {
        return Err(CommandError::Reply(format!(
            "ERR {attr} cannot contain spaces, newlines or special characters."
        )));
    }
    let value = (!value.is_empty()).then(|| String::from_utf8_lossy(&value).into_owned());
    let mut names = session.handle.names();
    if is_name {
        names.lib_name = value;
    } else {
        names.lib_ver = value;
    }
    Ok(Frame::ok())
}

/// A client type as `CLIENT LIST TYPE` / `CLIENT KILL TYPE` name them (`getClientTypeByName`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

fn client_type(name: &str) -> Result<ClientType, CommandError> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Ok(ClientType::Normal),
        "slave" | "replica" => Ok(ClientType::Replica),
        "pubsub" => Ok(ClientType::PubSub),
        "master" => Ok(ClientType::Master),
        _ => Err(CommandError::Reply(format!(
            "ERR Unknown client type '{name}'"
        ))),
    }
}

/// Every redraft client is normal, or pubsub while it has subscriptions; Raft peers are not
/// Redis clients.
fn type_of(handle: &ClientHandle) -> ClientType {
    if handle.is_pubsub() {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

fn client_list(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let argc = parse.remaining() + 2;
    let mut wanted_type = None;
    let mut ids: Option<Vec<u64>> = None;
    if argc == 4 && parse.peek_upper().as_deref() == Some("TYPE") {
        parse.next_bytes()?;
        wanted_type = Some(client_type(&parse.next_string()?)?);
    } else if argc >= 4 && parse.peek_upper().as_deref() == Some("ID") {
        parse.next_bytes()?;
        let mut list = Vec::new();
        while parse.remaining() > 0 {
            let id = parse
                .next_i64()
                .map_err(|_| CommandError::Reply("ERR Invalid client ID".into()))?;
            // Any integer is accepted; ids below 1 match no client (as Redis 7).
            if let Ok(id) = u64::try_from(id) {
                list.push(id);
            }
        }
        ids = Some(list);
    } else if argc != 2 {
        return Err(ParseError::Syntax.into());
    }
    let now = Instant::now();
    let mut out = String::new();
    let clients: Vec<Arc<ClientHandle>> = match &ids {
        // In the order asked, as Redis does.
        Some(ids) => ids.iter().filter_map(|&id| ctx.clients.get(id)).collect(),
        None => ctx.clients.list(),
    };
    for c in clients {
        if wanted_type.is_some_and(|t| t != type_of(&c)) {
            continue;
        }
        c.write_info_line(now, &mut out);
    }
    Ok(verbatim(out))
}

fn client_kill(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    let old_form = parse.remaining() == 1;
    let (mut id, mut kind, mut addr, mut laddr, mut skipme) = (None, None, None, None, true);
    let mut user: Option<String> = None;
    if old_form {
        addr = Some(parse.next_string()?);
        skipme = false; // With the old form a client can kill itself.
    } else {
        while parse.remaining() > 0 {
            let opt = parse.next_string()?;
            if parse.remaining() == 0 {
                return Err(ParseError::Syntax.into());
            }
            match opt.to_ascii_lowercase().as_str() {
                "id" => {
                    let v = parse.next_i64().ok().filter(|&v| v >= 1).ok_or_else(|| {
                        CommandError::Reply("ERR client-id should be greater than 0".into())
                    })?;
                    id = Some(v as u64);
                }
                "type" => kind = Some(client_type(&parse.next_string()?)?),
                "addr" => addr = Some(parse.next_string()?),
                "laddr" => laddr = Some(parse.next_string()?),
                "user" => {
                    let name = parse.next_string()?;
                    if ctx.acl.user(name.as_bytes()).is_none() {
                        return Err(CommandError::Reply(format!("ERR No such user '{name}'")));
                    }
                    user = Some(name);
                }
                "skipme" => {
                    let v = parse.next_string()?;
                    skipme = if v.eq_ignore_ascii_case("yes") {
                        true
                    } else if v.eq_ignore_ascii_case("no") {
                        false
                    } else {
                        return Err(ParseError::Syntax.into());
                    };
                }
                _ => return Err(ParseError::Syntax.into()),
            }
        }
    }
    let mut killed = 0i64;
    for c in ctx.clients.list() {
        let matches = id.is_none_or(|id| c.id == id)
            && kind.is_none_or(|k| k == type_of(&c))
            && addr.as_deref().is_none_or(|a| c.addr.to_string() == a)
            && laddr.as_deref().is_none_or(|a| c.laddr.to_string() == a)
            && user
                .as_deref()
                .is_none_or(|u| c.names().user.as_deref().unwrap_or("default") == u);
        if !matches || (skipme && c.id == session.id) {
            continue;
        }
        // Killing this very client closes it once the reply is sent (the session checks).
        c.kill();
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            Err(CommandError::Reply("ERR No such client".into()))
        } else {
            Ok(Frame::ok())
        }
    } else {
        Ok(Frame::Integer(killed))
    }
}
