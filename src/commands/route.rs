//! The route: one table from a command's name to its kind and the function that answers it.
//! Every command redraft answers has one arm in [`route`] (and one entry in the command table,
//! which checked its arity before it got here); the arm names the family file that owns it.
//!
//! The kind decides how the dispatcher (`commands/mod.rs`) runs it:
//!
//! | kind       | runs                                                                          |
//! |------------|-------------------------------------------------------------------------------|
//! | `Write`    | planned without the node ([`Plan`]: a `store::Op` and a reply shape), then     |
//! |            | proposed alone or in a run of the pipeline batch; queued into EXEC's entry     |
//! | `Read`     | planned as one `store::ReadOp` (`reads.rs`), answered through the read gate,  |
//! |            | or inside EXEC's entry                                                        |
//! | `ReadRun`  | a read that walks the keyspace or its history itself, through the read gate   |
//! | `Txn`      | MULTI EXEC DISCARD WATCH UNWATCH (`txn.rs`)                                   |
//! | `PubSub`   | answered at once, possibly with several frames (`pubsub.rs`)                  |
//! | `Stream`   | the `__watch__:` streams (`stream.rs`); XREAD may block                       |
//! | `Admin`    | connection and server commands, answered at once                              |
//! | `Cluster`  | RAFT.*, SHUTDOWN, ACL, SCRIPT, CONFIG..., which may wait for the cluster     |
//!
//! QUIT is not routed: the dispatcher answers it, since it closes the connection. A name with
//! no arm is an unknown command.

use std::future::Future;
use std::pin::Pin;

use super::reads::ReadReply;
use super::{
    acl_command, cluster, connection, expire, gray, hashes, history, keys, pubsub, schema,
    scripting, sentinel, server, stream, strings, CommandError, CommandResult, Outcome, Plan,
    Session,
};
use crate::context::ServerContext;
use crate::protocol::Parse;

/// Plans a write from its arguments.
pub(crate) type Planner = fn(&mut Parse) -> Result<Plan, CommandError>;
/// Answers a command at once.
pub(crate) type Now = fn(&ServerContext, &mut Session, &mut Parse) -> CommandResult;
/// Answers a pub/sub command at once, with one frame or several.
pub(crate) type Frames =
    fn(&ServerContext, &mut Session, &mut Parse) -> Result<Outcome, CommandError>;
/// Answers a command that waits (the read gate, the cluster, XREAD BLOCK).
pub(crate) type Waits =
    for<'a> fn(&'a ServerContext, &'a mut Session, &'a mut Parse) -> Pending<'a>;
/// The reply of a command that waits.
pub(crate) type Pending<'a> = Pin<Box<dyn Future<Output = CommandResult> + Send + 'a>>;

/// A command's kind and the function that answers it.
pub(crate) enum Route {
    Write(Planner),
    Read(ReadReply),
    ReadRun(Waits),
    Txn,
    PubSub(Frames),
    Stream(Waits),
    Admin(Now),
    Cluster(Waits),
}

/// Routes a command by its lowercase name; `None` for a command redraft does not know.
pub(crate) fn route(name: &str) -> Option<Route> {
    use Route::*;
    Some(match name {
        // Strings (`strings.rs`).
        "set" => Write(strings::set),
        "setnx" => Write(strings::setnx),
        "getset" => Write(strings::getset),
        "getdel" => Write(strings::getdel),
        "mset" | "msetnx" => Write(strings::mset),
        "incr" => Write(|p| strings::incr("incr", p)),
        "decr" => Write(|p| strings::incr("decr", p)),
        "incrby" => Write(|p| strings::incr("incrby", p)),
        "decrby" => Write(|p| strings::incr("decrby", p)),
        "incrbyfloat" => Write(strings::incrbyfloat),
        "append" => Write(strings::append),
        "setrange" => Write(strings::setrange),
        // Hashes (`hashes.rs`).
        "hset" | "hmset" => Write(hashes::hset),
        "hsetnx" => Write(hashes::hsetnx),
        "hdel" => Write(hashes::hdel),
        "hincrby" => Write(hashes::hincrby),
        "hincrbyfloat" => Write(hashes::hincrbyfloat),
        "hget" | "hmget" | "hgetall" | "hexists" | "hlen" | "hkeys" | "hvals" | "hstrlen"
        | "hscan" | "hrandfield" => Read(ReadReply::Hash(hashes::shape(name)?)),
        // TTLs (`expire.rs`).
        "expire" => Write(|p| expire::expire("expire", p)),
        "pexpire" => Write(|p| expire::expire("pexpire", p)),
        "expireat" => Write(|p| expire::expire("expireat", p)),
        "pexpireat" => Write(|p| expire::expire("pexpireat", p)),
        "persist" => Write(expire::persist),
        "getex" => Write(expire::getex),
        "setex" => Write(|p| expire::setex("setex", p)),
        "psetex" => Write(|p| expire::setex("psetex", p)),
        // Keys (`keys.rs`).
        "del" | "unlink" => Write(keys::del),
        "rename" | "renamenx" => Write(keys::rename),
        "flushdb" | "flushall" => Write(keys::flush),
        "cas" => Write(keys::cas),
        "keys" => ReadRun(|c, s, p| Box::pin(keys::keys(c, s, p))),
        "scan" => ReadRun(|c, s, p| Box::pin(keys::scan(c, s, p))),
        "revision" => ReadRun(|c, s, p| Box::pin(keys::revision(c, s, p))),
        "object" => ReadRun(|c, s, p| Box::pin(keys::object(c, s, p))),
        // Reads from one `store::ReadOp` (`reads.rs`).
        "get" => Read(ReadReply::Get),
        "mget" => Read(ReadReply::MGet),
        "strlen" => Read(ReadReply::StrLen),
        "getrange" => Read(ReadReply::GetRange { start: 0, end: 0 }),
        "exists" => Read(ReadReply::Exists),
        "type" => Read(ReadReply::Type),
        "dbsize" => Read(ReadReply::DbSize),
        "getmeta" => Read(ReadReply::GetMeta),
        "ttl" => Read(ReadReply::Ttl {
            ms: false,
            abs: false,
        }),
        "pttl" => Read(ReadReply::Ttl {
            ms: true,
            abs: false,
        }),
        "expiretime" => Read(ReadReply::Ttl {
            ms: false,
            abs: true,
        }),
        "pexpiretime" => Read(ReadReply::Ttl {
            ms: true,
            abs: true,
        }),
        // History (`history.rs`).
        "rollback" => Write(history::rollback),
        "compact" => Write(history::compact),
        // Schemas (`schema.rs`).
        "schema" => Cluster(|c, s, p| Box::pin(schema::schema(c, s, p))),
        "acl" => Cluster(|c, s, p| Box::pin(acl_command::acl(c, s, p))),
        // Gray releases (`gray.rs`).
        "gray" => Cluster(|c, s, p| Box::pin(gray::gray(c, s, p))),
        "getat" => ReadRun(|c, s, p| Box::pin(history::getat(c, s, p))),
        "history" => ReadRun(|c, s, p| Box::pin(history::history(c, s, p))),
        // Scripting (`scripting/`).
        "eval" => Write(scripting::eval),
        "evalsha" => Write(scripting::evalsha),
        "eval_ro" => ReadRun(|c, s, p| Box::pin(scripting::eval_ro(c, s, p, false))),
        "evalsha_ro" => ReadRun(|c, s, p| Box::pin(scripting::eval_ro(c, s, p, true))),
        "script" => Cluster(|c, s, p| Box::pin(scripting::script(c, s, p))),
        // Transactions (`txn.rs`).
        "multi" | "exec" | "discard" | "watch" | "unwatch" => Txn,
        // Pub/sub (`pubsub.rs`).
        "subscribe" => PubSub(|c, s, p| pubsub::subscribe(c, s, p, false)),
        "psubscribe" => PubSub(|c, s, p| pubsub::subscribe(c, s, p, true)),
        "unsubscribe" => PubSub(|_, s, p| pubsub::unsubscribe(s, p, false)),
        "punsubscribe" => PubSub(|_, s, p| pubsub::unsubscribe(s, p, true)),
        "publish" => PubSub(|c, _, p| pubsub::publish(c, p)),
        "pubsub" => PubSub(|c, _, p| pubsub::pubsub(c, p)),
        // Watch streams (`stream.rs`).
        "xread" => Stream(|c, s, p| Box::pin(stream::xread(c, s, p))),
        "xrange" => Stream(|c, s, p| Box::pin(stream::xrange(c, s, p, false))),
        "xrevrange" => Stream(|c, s, p| Box::pin(stream::xrange(c, s, p, true))),
        "xadd" | "xdel" | "xtrim" | "xsetid" | "xgroup" | "xreadgroup" | "xack" | "xclaim"
        | "xautoclaim" => Stream(|_, _, p| Box::pin(std::future::ready(stream::refused(p)))),
        // Connection (`connection.rs`).
        "ping" => Admin(|_, _, p| connection::ping(p)),
        "echo" => Admin(|_, _, p| connection::echo(p)),
        "hello" => Admin(connection::hello),
        "auth" => Admin(connection::auth),
        "select" => Admin(|_, _, p| connection::select(p)),
        "reset" => Admin(|c, s, _| connection::reset(c, s)),
        "readonly" => Admin(|_, s, _| connection::readonly(s)),
        "readwrite" => Admin(|c, s, _| connection::readwrite(c, s)),
        "readmode" => Admin(|_, s, p| connection::readmode(s, p)),
        "client" => Admin(connection::client),
        "sentinel" => Admin(sentinel::sentinel),
        // Server (`server/`).
        "command" => Admin(|_, _, p| server::command(p)),
        "config" => Cluster(|c, s, p| Box::pin(server::config(c, s, p))),
        "info" => Admin(|c, _, p| server::info_command(c, p)),
        "role" => Admin(|c, _, _| Ok(server::role(c))),
        "time" => Admin(|_, _, _| Ok(server::time())),
        // Cluster (`cluster.rs`).
        "raft.info" => Cluster(|c, _, p| Box::pin(cluster::raft_info(c, p))),
        "raft.transfer" => Cluster(|c, _, p| Box::pin(cluster::transfer(c, p))),
        "raft.snapshot" => Cluster(|c, _, p| Box::pin(cluster::raft_snapshot(c, p))),
        "raft.addnode" => Cluster(|c, _, p| Box::pin(cluster::add_node(c, p))),
        "raft.removenode" => Cluster(|c, _, p| Box::pin(cluster::remove_node(c, p))),
        "raft.backup" => Cluster(|c, _, p| Box::pin(cluster::raft_backup(c, p))),
        "shutdown" => Cluster(|c, _, p| Box::pin(cluster::shutdown(c, p))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table;

    /// Every command of the table has a route (QUIT is the dispatcher's own).
    #[test]
    fn every_table_command_is_routed() {
        for c in table::commands() {
            assert!(
                c.name == "quit" || route(c.name).is_some(),
                "{} has no route",
                c.name
            );
        }
    }
}
