//! Sentinel-compatible discovery on every node: `SENTINEL` answers as a Redis Sentinel
//! monitoring one master named after the cluster (`[cluster] name`), whose master is the Raft
//! leader and whose replicas are the other members; every member is also one of the
//! "sentinels". So a Sentinel client (redis-py `Sentinel`, ioredis `sentinels`, Jedis,
//! Lettuce, go-redis `FailoverClient`) given the nodes' addresses as its sentinels always finds
//! the leader, moves by itself after a failover, and can send reads to replicas.
//!
//! The answers are this node's view: the leader it knows (none during an election, when the
//! master entry carries Sentinel's `s_down,o_down` flags and no client takes it), the
//! membership it has applied. A node's `runid` is the SHA-1 of the cluster name and its id, so
//! every node names every other one the same way. The reply shapes and field names are a Redis
//! 7.0 Sentinel's (`sentinel.c`); the timing fields Sentinel measures (pings, refreshes) are 0.
//!
//! `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>` is published to this node's
//! subscribers when the leader it knows changes ([`switch_master_message`], sent by
//! `node.rs`).
//!
//! # Format
//!
//! ```text
//! SENTINEL GET-MASTER-ADDR-BY-NAME name → [ip, port] | nil array (another name, or no leader)
//! SENTINEL MASTERS                      → [master entry]
//! SENTINEL MASTER name                  → master entry | -ERR No such master with that name
//! SENTINEL REPLICAS|SLAVES name         → [replica entry, ...] (the members but the leader)
//! SENTINEL SENTINELS name               → [sentinel entry, ...] (the members but this node)
//! SENTINEL MYID                         → bulk runid
//! SENTINEL HELP                         → the subcommands
//! ```

use bytes::Bytes;

use super::reply::{bulk, help_reply};
use super::scripting::body::sha1hex;
use super::{CommandError, CommandResult, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse};

const HELP: &[&str] = &[
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
];

/// The runid a node goes by: the same on every node for a given node.
fn runid(cluster: &str, id: u64) -> String {
    sha1hex(format!("redraft {cluster} node {id}").as_bytes())
}

/// `host:port` split as Sentinel reports it (`ip`, `port`).
fn host_port(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').into(),
            p.into(),
        ),
        None => (addr.into(), "0".into()),
    }
}

/// A flat Sentinel state entry (a map in RESP3, field/value pairs in RESP2).
fn entry(fields: Vec<(&'static str, String)>) -> Frame {
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (bulk(k), Frame::Bulk(Bytes::from(v))))
            .collect(),
    )
}

/// What this node knows: members (id, Redis address), the leader, itself.
struct View {
    cluster: String,
    me: u64,
    leader: Option<(u64, String)>,
    members: Vec<(u64, String)>,
}

impl View {
    fn of(ctx: &ServerContext) -> View {
        let status = ctx.node.status();
        let members = status
            .membership
            .nodes()
            .map(|(id, n)| (*id, n.redis_addr.clone()))
            .collect();
        View {
            cluster: ctx.cluster_name.clone(),
            me: status.id,
            leader: ctx.node.leader(),
            members,
        }
    }

    /// The master entry (`SENTINEL MASTER`): the leader, or without one the last member
    /// flagged down so that no client takes it.
    fn master(&self) -> Frame {
        let (id, addr, flags) = match &self.leader {
            Some((id, addr)) => (*id, addr.clone(), "master"),
            None => (0, String::from("0.0.0.0:0"), "master,s_down,o_down"),
        };
        let (ip, port) = host_port(&addr);
        let replicas = self.members.iter().filter(|(m, _)| *m != id).count();
        entry(vec![
            ("name", self.cluster.clone()),
            ("ip", ip),
            ("port", port),
            ("runid", runid(&self.cluster, id)),
            ("flags", flags.into()),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", "0".into()),
            ("last-ping-reply", "0".into()),
            ("down-after-milliseconds", "30000".into()),
            ("info-refresh", "0".into()),
            ("role-reported", "master".into()),
            ("role-reported-time", "0".into()),
            ("config-epoch", "0".into()),
            ("num-slaves", replicas.to_string()),
            (
                "num-other-sentinels",
                self.members.len().saturating_sub(1).to_string(),
            ),
            ("quorum", (self.members.len() / 2 + 1).to_string()),
            ("failover-timeout", "180000".into()),
            ("parallel-syncs", "1".into()),
        ])
    }

    fn replicas(&self) -> Frame {
        let leader = self.leader.as_ref();
        let (master_host, master_port) =
            leader.map_or((String::new(), "0".into()), |(_, a)| host_port(a));
        Frame::Array(
            self.members
                .iter()
                .filter(|(id, _)| leader.is_none_or(|(l, _)| l != id))
                .map(|(id, addr)| {
                    let (ip, port) = host_port(addr);
                    entry(vec![
                        ("name", format!("{ip}:{port}")),
                        ("ip", ip),
                        ("port", port),
                        ("runid", runid(&self.cluster, *id)),
                        ("flags", "slave".into()),
                        ("link-pending-commands", "0".into()),
                        ("link-refcount", "1".into()),
                        ("last-ping-sent", "0".into()),
                        ("last-ok-ping-reply", "0".into()),
                        ("last-ping-reply", "0".into()),
                        ("down-after-milliseconds", "30000".into()),
                        ("info-refresh", "0".into()),
                        ("role-reported", "slave".into()),
                        ("role-reported-time", "0".into()),
                        ("master-link-down-time", "0".into()),
                        ("master-link-status", "ok".into()),
                        ("master-host", master_host.clone()),
                        ("master-port", master_port.clone()),
                        ("slave-priority", "100".into()),
                        ("slave-repl-offset", "0".into()),
                        ("replica-announced", "1".into()),
                    ])
                })
                .collect(),
        )
    }

    fn sentinels(&self) -> Frame {
        Frame::Array(
            self.members
                .iter()
                .filter(|(id, _)| *id != self.me)
                .map(|(id, addr)| {
                    let (ip, port) = host_port(addr);
                    entry(vec![
                        ("name", runid(&self.cluster, *id)),
                        ("ip", ip),
                        ("port", port),
                        ("runid", runid(&self.cluster, *id)),
                        ("flags", "sentinel".into()),
                        ("link-pending-commands", "0".into()),
                        ("link-refcount", "1".into()),
                        ("last-ping-sent", "0".into()),
                        ("last-ok-ping-reply", "0".into()),
                        ("last-ping-reply", "0".into()),
                        ("down-after-milliseconds", "30000".into()),
                        ("last-hello-message", "0".into()),
                        ("voted-leader", "?".into()),
                        ("voted-leader-epoch", "0".into()),
                    ])
                })
                .collect(),
        )
    }
}

/// `SENTINEL <subcommand> ...`.
pub(super) fn sentinel(
    ctx: &ServerContext,
    _session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    let view = View::of(ctx);
    let named = |parse: &mut Parse| -> Result<(), CommandError> {
        let name = parse.next_bytes()?;
        parse.finish()?;
        if name.as_ref() == view.cluster.as_bytes() {
            Ok(())
        } else {
            Err(CommandError::Reply(
                "ERR No such master with that name".into(),
            ))
        }
    };
    let arity = || {
        CommandError::Reply(format!(
            "ERR wrong number of arguments for 'sentinel|{sub}' command"
        ))
    };
    match sub.as_str() {
        "get-master-addr-by-name" => {
            let name = parse.next_bytes().map_err(|_| arity())?;
            parse.finish().map_err(|_| arity())?;
            Ok(match &view.leader {
                Some((_, addr)) if name.as_ref() == view.cluster.as_bytes() => {
                    let (ip, port) = host_port(addr);
                    Frame::Array(vec![bulk(ip), bulk(port)])
                }
                _ => Frame::NullArray,
            })
        }
        "masters" => {
            parse.finish().map_err(|_| arity())?;
            Ok(Frame::Array(vec![view.master()]))
        }
        "master" => {
            if parse.remaining() != 1 {
                return Err(arity());
            }
            named(parse)?;
            Ok(view.master())
        }
        "replicas" | "slaves" => {
            if parse.remaining() != 1 {
                return Err(arity());
            }
            named(parse)?;
            Ok(view.replicas())
        }
        "sentinels" => {
            if parse.remaining() != 1 {
                return Err(arity());
            }
            named(parse)?;
            Ok(view.sentinels())
        }
        "myid" => {
            parse.finish().map_err(|_| arity())?;
            Ok(bulk(runid(&view.cluster, view.me)))
        }
        "help" => Ok(help_reply("SENTINEL", HELP)),
        _ => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{sub}'. Try SENTINEL HELP."
        ))),
    }
}

/// The `+switch-master` message for a leader change from `old` to `new` (Redis addresses).
pub fn switch_master_message(cluster: &str, old: &str, new: &str) -> Bytes {
    let ((oh, op), (nh, np)) = (host_port(old), host_port(new));
    Bytes::from(format!("{cluster} {oh} {op} {nh} {np}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runids_are_sentinel_shaped_and_the_same_everywhere() {
        let a = runid("prod", 1);
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, runid("prod", 1));
        assert_ne!(a, runid("prod", 2));
        assert_ne!(a, runid("test", 1));
    }

    #[test]
    fn switch_master_is_sentinels_message() {
        assert_eq!(
            switch_master_message("prod", "127.0.0.1:7001", "127.0.0.1:7002"),
            Bytes::from_static(b"prod 127.0.0.1 7001 127.0.0.1 7002")
        );
        assert_eq!(host_port("[::1]:6379"), ("::1".into(), "6379".into()));
    }
}
