//! Keyspace reads answered from one `store::ReadOp`: GET MGET STRLEN GETRANGE EXISTS TYPE DBSIZE
//! GETMETA TTL PTTL EXPIRETIME PEXPIRETIME, with Redis 7.0's replies.
//!
//! A read is planned here ([`ReadPlan`]: the store read and the reply shape) and answered the
//! same way wherever it runs: on its own, through the read gate and the state machine's read
//! lock ([`run`]), or queued inside MULTI, where EXEC's entry carries it and the store answers it
//! at apply, seeing the transaction's own writes (`txn.rs`).
//!
//! TTLs are measured on this node's wall clock against the deadline the leader stamped: a key
//! whose deadline passed but whose expiry entry has not applied yet answers TTL 0 (Redis clamps
//! to 0 too), and is still readable.
//!
//! # Format
//!
//! ```text
//! GET key                  → bulk | nil
//! MGET key [key ...]       → array of bulk | nil
//! STRLEN key               → :length (0 if absent)
//! GETRANGE key start end   → bulk (inclusive, negative from the end; "" if absent)
//! EXISTS key [key ...]     → :count (a key named twice counts twice, as Redis)
//! TYPE key                 → +string | +hash | +none
//!
//! GET, STRLEN and GETRANGE of a hash answer WRONGTYPE; MGET reads a hash as nil; EXISTS and
//! TYPE see both types.
//! DBSIZE                   → :number of live keys
//! TTL|PTTL key             → :-2 absent | :-1 no deadline | :seconds (rounded) | :milliseconds
//! EXPIRETIME|PEXPIRETIME key
//!                          → :-2 | :-1 | :unix seconds (rounded) | :unix milliseconds
//! GETMETA key              → nil | map: value, create_revision, mod_revision, version, ttl
//!                            (ttl as TTL answers it: -1 without a deadline; a hash's value
//!                            is its fields and values, flat)
//! ```

use bytes::Bytes;

use super::hashes::HashRead;
use super::reply::field;
use super::{CommandError, CommandResult, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse};
use crate::store::{ReadOp, Response, Stored};

/// A read command, planned: what to read, and how to answer.
pub(crate) struct ReadPlan {
    pub op: ReadOp,
    pub reply: ReadReply,
}

/// How a read turns the store's [`Response`] into its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadReply {
    Get,
    MGet,
    StrLen,
    GetRange {
        start: i64,
        end: i64,
    },
    Exists,
    Type,
    DbSize,
    GetMeta,
    /// TTL (`ms` false, `abs` false), PTTL, EXPIRETIME (`abs`), PEXPIRETIME.
    Ttl {
        ms: bool,
        abs: bool,
    },
    /// The hash reads (`hashes.rs`).
    Hash(HashRead),
}

/// Plans a read of shape `reply` (the route's) from its arguments.
pub(crate) fn plan(reply: ReadReply, parse: &mut Parse) -> Result<ReadPlan, CommandError> {
    // MGET reads strings only (a hash is nil); the others tell the types apart.
    let op = match reply {
        ReadReply::Get | ReadReply::StrLen | ReadReply::Type => ReadOp::Typed {
            keys: vec![parse.next_bytes()?],
        },
        ReadReply::GetMeta | ReadReply::Ttl { .. } => ReadOp::Meta {
            key: parse.next_bytes()?,
        },
        ReadReply::MGet | ReadReply::Exists => {
            let mut keys = Vec::with_capacity(parse.remaining());
            while parse.remaining() > 0 {
                keys.push(parse.next_bytes()?);
            }
            if reply == ReadReply::MGet {
                ReadOp::Get { keys }
            } else {
                ReadOp::Typed { keys }
            }
        }
        ReadReply::GetRange { .. } => {
            let key = parse.next_bytes()?;
            let (start, end) = (parse.next_i64()?, parse.next_i64()?);
            return Ok(ReadPlan {
                op: ReadOp::Typed { keys: vec![key] },
                reply: ReadReply::GetRange { start, end },
            });
        }
        ReadReply::DbSize => ReadOp::Len,
        ReadReply::Hash(shape) => {
            let (op, read) = super::hashes::plan(&shape, parse)?;
            return Ok(ReadPlan {
                op,
                reply: ReadReply::Hash(read),
            });
        }
    };
    Ok(ReadPlan { op, reply })
}

/// Answers a read on its own: through the read gate, then from the store under its read lock.
pub(crate) async fn run(
    ctx: &ServerContext,
    session: &mut Session,
    plan: ReadPlan,
) -> CommandResult {
    super::read_gate(ctx, session).await?;
    let ReadPlan { op, reply } = plan;
    // LongReadsOffRaft (`raft/store_view.rs`): a read of more keys than the threshold (`MGET`
    // of a bulk load's keys) runs on a copy of the keyspace, off this thread and the lock.
    let many = op.weight() > crate::raft::DETACH_ABOVE_ITEMS;
    let response = match session.gray_label() {
        // GrayReadOneRevision (`store/gray.rs`): candidates and keys from one state.
        Some(label) => ctx.node.read_store(|store| store.read_gray(&label, &op)),
        None if many => {
            ctx.node
                .read_store_detached(move |store| store.read(&op))
                .await?
        }
        None => ctx.node.read_store(|store| store.read(&op)),
    };
    let now_ms = crate::raft::unix_ms();
    if many || reply.is_long(&response) {
        // The reply is built on another thread too (a hash copied out in O(1)).
        return crate::raft::run_detached(move || reply.frame(response, now_ms)).await?;
    }
    reply.frame(response, now_ms)
}

/// TTL's answer for a key with `deadline` at `now_ms` (Redis's `ttlGenericCommand`): -1 without
/// a deadline, never below 0, seconds rounded to the nearest.
fn ttl(deadline: Option<i64>, now_ms: i64, ms: bool, abs: bool) -> i64 {
    let Some(at) = deadline else { return -1 };
    let left = if abs { at } else { at.saturating_sub(now_ms) }.max(0);
    if ms {
        left
    } else {
        left.saturating_add(500) / 1000
    }
}

impl ReadReply {
    /// Whether building the reply to `response` visits more than
    /// [`crate::raft::DETACH_ABOVE_ITEMS`] items (a hash read over many fields).
    pub fn is_long(&self, response: &Response) -> bool {
        match (self, response) {
            (Self::Hash(read), Response::Stored { values, .. }) => {
                read.is_long(values.last().and_then(Option::as_ref))
            }
            _ => false,
        }
    }

    /// The reply to the store's answer; `now_ms` is this node's clock, for TTLs.
    pub fn frame(self, response: Response, now_ms: i64) -> CommandResult {
        let bulk_or_nil = |value: Option<Bytes>| value.map_or(Frame::Null, Frame::Bulk);
        match (self, response) {
            (_, Response::Error(e)) => Err(CommandError::Reply(e.to_string())),
            (Self::Hash(read), Response::Stored { mut values, .. }) => {
                read.frame(values.pop().flatten())
            }
            (Self::Exists, Response::Stored { values, .. }) => Ok(Frame::Integer(
                values.iter().filter(|v| v.is_some()).count() as i64,
            )),
            (Self::Type, Response::Stored { mut values, .. }) => Ok(Frame::Simple(
                values
                    .pop()
                    .flatten()
                    .map_or("none", |v| v.type_name())
                    .into(),
            )),
            // The string reads: a hash is WRONGTYPE.
            (
                reply,
                Response::Stored {
                    mut values,
                    revision,
                },
            ) => {
                let value = match values.pop().flatten() {
                    Some(Stored::Hash(_)) => {
                        return Err(CommandError::Reply(
                            crate::store::StoreError::WrongType.to_string(),
                        ))
                    }
                    Some(Stored::String(s)) => Some(s),
                    None => None,
                };
                let values = vec![value];
                reply.frame(Response::Values { values, revision }, now_ms)
            }
            (Self::Get, Response::Values { mut values, .. }) => {
                Ok(bulk_or_nil(values.pop().flatten()))
            }
            (Self::MGet, Response::Values { values, .. }) => {
                Ok(Frame::Array(values.into_iter().map(bulk_or_nil).collect()))
            }
            (Self::StrLen, Response::Values { values, .. }) => {
                let length = values
                    .first()
                    .and_then(Option::as_ref)
                    .map_or(0, Bytes::len);
                Ok(Frame::Integer(length as i64))
            }
            (Self::GetRange { start, end }, Response::Values { mut values, .. }) => {
                let value = values.pop().flatten().unwrap_or_default();
                Ok(Frame::Bulk(match range(value.len(), start, end) {
                    Some(r) => value.slice(r),
                    None => Bytes::new(),
                }))
            }
            (Self::Exists, Response::Values { values, .. }) => Ok(Frame::Integer(
                values.iter().filter(|v| v.is_some()).count() as i64,
            )),
            (Self::Type, Response::Values { values, .. }) => {
                let exists = values.first().is_some_and(Option::is_some);
                Ok(Frame::Simple(if exists { "string" } else { "none" }.into()))
            }
            (Self::DbSize, Response::Integer { value, .. }) => Ok(Frame::Integer(value)),
            (Self::GetMeta, Response::Meta { kv, deadline, .. }) => {
                let Some(kv) = kv else {
                    return Ok(Frame::Null);
                };
                // A hash's value is its fields and values, flat, as HGETALL in RESP2.
                let value = match &kv.hash {
                    Some(h) => Frame::Array(
                        h.iter()
                            .flat_map(|(f, v)| [Frame::Bulk(f.clone()), Frame::Bulk(v.clone())])
                            .collect(),
                    ),
                    None => Frame::Bulk(kv.value),
                };
                Ok(Frame::Map(vec![
                    field("value", value),
                    field("create_revision", Frame::Integer(kv.create_revision as i64)),
                    field("mod_revision", Frame::Integer(kv.mod_revision as i64)),
                    field("version", Frame::Integer(kv.version as i64)),
                    field("ttl", Frame::Integer(ttl(deadline, now_ms, false, false))),
                ]))
            }
            (Self::Ttl { ms, abs }, Response::Meta { kv, deadline, .. }) => {
                Ok(Frame::Integer(match kv {
                    None => -2,
                    Some(_) => ttl(deadline, now_ms, ms, abs),
                }))
            }
            (_, other) => Err(CommandError::Reply(format!(
                "ERR unexpected store response {other:?}"
            ))),
        }
    }
}

/// Returns the byte range GETRANGE answers for a string of `len` bytes, as Redis 7.0's
/// `getrangeCommand` computes it (both ends inclusive, negative ends count from the end).
fn range(len: usize, start: i64, end: i64) -> Option<std::ops::Range<usize>> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    (start <= end).then(|| start as usize..end as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_bounds_as_redis() {
        // "hello": each case checked against redis-server 7.0.
        let cases: &[(i64, i64, &str)] = &[
            (0, -1, "hello"),
            (1, 3, "ell"),
            (-3, -1, "llo"),
            (-1, -5, ""),
            (3, 1, ""),
            (-100, 100, "hello"),
            (0, -100, "h"),
            (i64::MAX, i64::MIN, ""),
            (5, 10, ""),
            (4, 4, "o"),
        ];
        for &(start, end, want) in cases {
            let got = range(5, start, end).map_or("", |r| &"hello"[r]);
            assert_eq!(got, want, "GETRANGE {start} {end}");
        }
        assert_eq!(range(0, 0, -1), None);
    }

    #[test]
    fn ttl_rounds_and_clamps_as_redis() {
        // (deadline, now, ms, abs, want)
        let cases: &[(Option<i64>, i64, bool, bool, i64)] = &[
            (None, 0, false, false, -1),
            (None, 0, true, true, -1),
            (Some(10_499), 0, false, false, 10),
            (Some(10_500), 0, false, false, 11),
            (Some(10_500), 0, true, false, 10_500),
            (Some(900), 1_000, false, false, 0),
            (Some(900), 1_000, true, false, 0),
            (Some(1_700_000_000_499), 5, false, true, 1_700_000_000),
            (Some(1_700_000_000_499), 5, true, true, 1_700_000_000_499),
        ];
        for &(deadline, now, ms, abs, want) in cases {
            assert_eq!(
                ttl(deadline, now, ms, abs),
                want,
                "{deadline:?} {now} {ms} {abs}"
            );
        }
    }
}
