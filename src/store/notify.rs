//! Keyspace notifications: the Redis event names (`set`, `del`, `expired`, `incrby`, `new`, ...)
//! an applied op emits, in Redis 7.0's order (`notify.c` callers in `t_string.c`, `db.c`,
//! `expire.c`, `t_hash.c`).
//!
//! A [`Notice`] is derived from the op and the changes it made, inside `apply`, so every node
//! derives the same notices from the same entry (DeterministicApply); which classes are
//! published is each node's `notify-keyspace-events` setting, decided by the publisher, not
//! here. Notices are not stored: history and the watch stream name changes by their
//! [`EventKind`] only.
//!
//! Differences from Redis, where the store decides differently:
//! - SET with an expiry already passed: Redis stores the key and expires it on next access
//!   (`set`, `expire`, later `expired`); the store never makes it visible, so the three come
//!   together (with `new` first when the key did not exist).
//! - FLUSHDB/FLUSHALL emit nothing, as in Redis.

use bytes::Bytes;

use super::{Event, EventKind, GetExAction, Op, PutTtl, Response};

/// The `notify-keyspace-events` class a notice belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeClass {
    /// `g`: DEL, EXPIRE, PERSIST, RENAME, ...
    Generic,
    /// `$`: the string commands.
    String,
    /// `x`: a key deleted by expiry.
    Expired,
    /// `n`: a key added to the keyspace.
    New,
    /// `h`: the hash commands.
    Hash,
}

/// One keyspace notification: `event` happened to `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub class: NoticeClass,
    /// Redis's event name, e.g. `set`, `incrby`, `rename_from`.
    pub event: &'static str,
    pub key: Bytes,
}

fn notice(out: &mut Vec<Notice>, class: NoticeClass, event: &'static str, key: &Bytes) {
    out.push(Notice {
        class,
        event,
        key: key.clone(),
    });
}

/// Pushes `new` (if the key did not exist before) and then `event` for each put in `events`.
fn puts(out: &mut Vec<Notice>, events: &[Event], class: NoticeClass, event: &'static str) {
    for e in events.iter().filter(|e| e.kind == EventKind::Put) {
        if e.prev.is_none() {
            notice(out, NoticeClass::New, "new", &e.kv.key);
        }
        notice(out, class, event, &e.kv.key);
    }
}

/// Pushes `event` for each tombstone in `events`.
fn tombstones(out: &mut Vec<Notice>, events: &[Event], class: NoticeClass, event: &'static str) {
    for e in events.iter().filter(|e| e.kind != EventKind::Put) {
        notice(out, class, event, &e.kv.key);
    }
}

/// Appends the notices of one applied op (not a transaction: its ops are passed one by one)
/// to `out`, given its response and the changes it made.
pub(super) fn notices(op: &Op, response: &Response, events: &[Event], out: &mut Vec<Notice>) {
    use NoticeClass::{Expired, Generic, Hash, String};
    if matches!(response, Response::Error(_)) {
        return;
    }
    match op {
        Op::Put { .. } | Op::Set { .. } | Op::MSet { .. } | Op::Cas { .. } => {
            puts(out, events, String, "set")
        }
        Op::Delete { .. } | Op::GetDel { .. } => tombstones(out, events, Generic, "del"),
        Op::IncrBy { .. } => puts(out, events, String, "incrby"),
        Op::IncrByFloat { .. } => puts(out, events, String, "incrbyfloat"),
        Op::Append { .. } => puts(out, events, String, "append"),
        Op::SetRange { .. } => puts(out, events, String, "setrange"),
        Op::Rename { src, dst, .. } => {
            if !events.is_empty() {
                // Redis deletes an existing destination and adds it anew (`dbAdd`).
                notice(out, NoticeClass::New, "new", dst);
                notice(out, Generic, "rename_from", src);
                notice(out, Generic, "rename_to", dst);
            }
        }
        Op::CasEx { .. } => {
            for e in events {
                puts(out, std::slice::from_ref(e), String, "set");
                notice(out, Generic, "expire", &e.kv.key);
            }
        }
        Op::SetEx { key, ttl, .. } => {
            let written = matches!(response, Response::Set { written: true, .. });
            let expires = matches!(ttl, PutTtl::Expire(_));
            match events.first() {
                Some(e) if e.kind == EventKind::Put => {
                    puts(out, events, String, "set");
                    if expires {
                        notice(out, Generic, "expire", key);
                    }
                }
                // A deadline already passed: set, expire and expired at once (module doc).
                first if written => {
                    if first.is_none() {
                        notice(out, NoticeClass::New, "new", key);
                    }
                    notice(out, String, "set", key);
                    notice(out, Generic, "expire", key);
                    notice(out, Expired, "expired", key);
                }
                _ => {}
            }
        }
        Op::Expire { .. } => {
            for e in events {
                let (class, event) = match e.kind {
                    EventKind::Put => (Generic, "expire"),
                    _ => (Generic, "del"),
                };
                notice(out, class, event, &e.kv.key);
            }
        }
        Op::Persist { .. } => puts_named(out, events, "persist"),
        Op::GetEx { action, .. } => {
            let event = match action {
                GetExAction::Persist => "persist",
                _ => "expire",
            };
            puts_named(out, events, event);
            tombstones(out, events, Generic, "del");
        }
        Op::ExpireDue { .. } => tombstones(out, events, Expired, "expired"),
        Op::Rollback { .. } => {
            puts(out, events, String, "set");
            tombstones(out, events, Generic, "del");
        }
        // A batch is unpacked before apply: it never reaches here with changes.
        // A script's calls notify one by one (`script.rs`).
        Op::HSet { .. } => puts(out, events, Hash, "hset"),
        Op::HIncrBy { .. } => puts(out, events, Hash, "hincrby"),
        Op::HIncrByFloat { .. } => puts(out, events, Hash, "hincrbyfloat"),
        // Redis: `hdel`, then `del` when the last field went and the key with it.
        Op::HDel { key, .. } => {
            if !events.is_empty() {
                notice(out, Hash, "hdel", key);
            }
            tombstones(out, events, Generic, "del");
        }
        Op::Compact { .. }
        | Op::Flush
        | Op::Read(_)
        | Op::Txn { .. }
        | Op::Batch(_)
        | Op::Script { .. }
        | Op::ScriptLoad { .. }
        | Op::ScriptFlush
        | Op::AclSetUser { .. }
        | Op::AclDelUser { .. }
        | Op::AsUser { .. }
        | Op::Authored { .. } => {}
    }
}

/// Pushes a generic `event` for each put that changed a key's TTL (no `new`: the key existed).
fn puts_named(out: &mut Vec<Notice>, events: &[Event], event: &'static str) {
    for e in events.iter().filter(|e| e.kind == EventKind::Put) {
        notice(out, NoticeClass::Generic, event, &e.kv.key);
    }
}
