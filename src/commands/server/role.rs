//! ROLE and TIME: this node's place in the cluster as Redis's replication roles, and its clock.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::commands::reply::bulk;
use crate::context::ServerContext;
use crate::protocol::Frame;

pub(super) fn role_name(ctx: &ServerContext) -> &'static str {
    if ctx.node.is_leader() {
        "master"
    } else {
        "slave"
    }
}

pub(super) fn split_host_port(addr: &str) -> (String, i64) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse().unwrap_or(-1),
        ),
        None => (addr.to_string(), -1),
    }
}

pub(in crate::commands) fn role(ctx: &ServerContext) -> Frame {
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

pub(in crate::commands) fn time() -> Frame {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Frame::Array(vec![
        bulk(now.as_secs().to_string()),
        bulk(now.subsec_micros().to_string()),
    ])
}
