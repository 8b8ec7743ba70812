//! Keys: the keyspace commands that are not string commands (DEL RENAME KEYS SCAN FLUSHDB) and
//! redraft's own REVISION and CAS. The writing string commands are `strings.rs`'s, the writing
//! TTL commands `expire.rs`'s, the reads that answer from one `store::ReadOp` `reads.rs`'s;
//! KEYS and SCAN MATCH use `glob.rs` (Redis's `stringmatchlen`).
//!
//! Replies and error texts are Redis 7.0's. Reads pass the read gate once per command; writes
//! are one `store::Op` each, decided at apply. A write is only planned here (a [`Plan`]: its op and
//! its reply shape); `commands` proposes it, alone or in a run of a pipeline batch.
//!
//! # Format
//!
//! ```text
//! DEL key [key ...]        → :deleted count        (UNLINK is the same)
//! RENAME key newkey        → +OK | -ERR no such key   (one revision: delete key, put newkey)
//! RENAMENX key newkey      → :1 | :0 (newkey exists) | -ERR no such key
//! KEYS pattern             → array of keys (byte order)
//! SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]
//!                          → [next cursor, [keys]]; cursor "0" starts and ends. COUNT (default
//!                            10) keys are examined per call, then MATCH and TYPE filter them.
//! FLUSHDB|FLUSHALL [ASYNC|SYNC] → +OK (one revision deleting every key)
//! OBJECT ENCODING|REFCOUNT key → what Redis 7.0 answers for a freshly written value like it;
//!                            FREQ → Redis's error without an LFU policy; no IDLETIME
//!
//! redraft's own:
//! REVISION                 → map: revision, compact_revision, raft_term, raft_leader (id|nil)
//! CAS key expected_mod_revision value [EX seconds]
//!                          → :1 if the key's mod_revision was expected_mod_revision (0: the key
//!                            must not exist) and value was put, else :0. Decided at apply. The
//!                            put clears the key's TTL, or with EX gives it one (a lock with a
//!                            lease; the fencing token is the new mod_revision).
//! ```
//!
//! # SCAN cursors
//!
//! A cursor is a 64-bit number, the FNV-1a hash of the next key to visit (`store/kv.rs`, "Scan
//! cursors"): keys are visited in hash order, so a key present for the whole iteration is
//! returned exactly once, and one added or deleted meanwhile at most once. Cursors are the same
//! on every node, so an iteration may continue on another node. Any number is a valid cursor;
//! it is parsed as Redis does (`strtoul`).

use bytes::Bytes;

use super::args::{positive_expiry, rest, TimeUnit};
use super::reply::{field, help_reply};
use super::{read_gate, CommandError, CommandResult, Plan, Session, WriteReply};
use crate::context::ServerContext;
use crate::glob;
use crate::protocol::{Frame, Parse, ParseError};
use crate::raft::{unix_ms, DETACH_ABOVE_ITEMS};
use crate::store::{Op, Store, Stored};

/// SCAN's default COUNT, as Redis.
const SCAN_DEFAULT_COUNT: usize = 10;

pub(super) fn del(parse: &mut Parse) -> Result<Plan, CommandError> {
    let keys = rest(parse)?;
    Ok(Plan {
        op: Op::Delete { keys },
        reply: WriteReply::Deleted,
    })
}

pub(super) fn rename(parse: &mut Parse) -> Result<Plan, CommandError> {
    let if_absent = parse.command_name() == "renamenx";
    let (src, dst) = (parse.next_bytes()?, parse.next_bytes()?);
    Ok(Plan {
        op: Op::Rename {
            src,
            dst,
            if_absent,
        },
        reply: WriteReply::Applied {
            as_integer: if_absent,
        },
    })
}

pub(super) async fn keys(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let pattern = parse.next_bytes()?;
    read_gate(ctx, session).await?;
    // Redis answers `*` without matching (so it includes the empty key, which `*` alone does
    // not match in stringmatchlen).
    let all = pattern.as_ref() == b"*";
    let limits = session.key_limits(ctx);
    let matching = move |store: &Store| -> Vec<Frame> {
        store
            .keys()
            .filter(|key| all || glob::matches(&pattern, key))
            .filter(|key| limits.as_ref().is_none_or(|u| u.may_read_key(key)))
            .map(|key| Frame::Bulk(key.clone()))
            .collect()
    };
    // LongReadsOffRaft (`raft/store_view.rs`): a large keyspace is visited off Raft's lock
    // and thread.
    let keys = if ctx.node.read_store(Store::len) > DETACH_ABOVE_ITEMS {
        ctx.node.read_store_detached(matching).await?
    } else {
        ctx.node.read_store(matching)
    };
    Ok(Frame::Array(keys))
}

/// Parses a SCAN cursor as Redis's `parseScanCursorOrReply` (`strtoul`, base 10): no leading
/// space, an optional sign (`-n` wraps around), digits up to the end (C stops at a NUL byte),
/// no overflow. An empty cursor converts nothing and reads as 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let text = arg.split(|&b| b == 0).next().unwrap_or_default();
    let (negative, digits) = match text.first() {
        None => return Some(0),
        Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') => return None,
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        Some(_) => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// A SCAN-family cursor and options, as Redis's `scanGenericCommand` parses them.
pub(super) struct ScanArgs {
    pub cursor: u64,
    /// COUNT, default 10.
    pub count: usize,
    /// MATCH, `None` for `*`.
    pub pattern: Option<Bytes>,
    /// TYPE (SCAN only).
    pub type_name: Option<String>,
}

/// Parses a cursor and `[MATCH p] [COUNT n]` (and `[TYPE t]` when `with_type`): `ERR invalid
/// cursor`, a syntax error for COUNT below 1, an unknown option or a missing value.
pub(super) fn scan_args(parse: &mut Parse, with_type: bool) -> Result<ScanArgs, CommandError> {
    let cursor = scan_cursor(parse)?;
    Ok(ScanArgs {
        cursor,
        ..scan_options(parse, with_type)?
    })
}

/// Parses a SCAN-family cursor: `ERR invalid cursor`.
pub(super) fn scan_cursor(parse: &mut Parse) -> Result<u64, CommandError> {
    parse_cursor(&parse.next_bytes()?)
        .ok_or_else(|| CommandError::Reply("ERR invalid cursor".into()))
}

/// Parses the options after a SCAN-family cursor (the returned cursor is 0).
pub(super) fn scan_options(parse: &mut Parse, with_type: bool) -> Result<ScanArgs, CommandError> {
    let cursor = 0;
    let (mut count, mut pattern, mut type_name) = (SCAN_DEFAULT_COUNT, None, None);
    while let Some(opt) = parse.peek_upper() {
        parse.next_bytes()?;
        if parse.remaining() == 0 {
            return Err(ParseError::Syntax.into());
        }
        match opt.as_str() {
            "COUNT" => {
                let n = parse.next_i64()?;
                if n < 1 {
                    return Err(ParseError::Syntax.into());
                }
                count = usize::try_from(n).unwrap_or(usize::MAX);
            }
            "MATCH" => {
                let p = parse.next_bytes()?;
                pattern = (p.as_ref() != b"*").then_some(p);
            }
            "TYPE" if with_type => type_name = Some(parse.next_string()?),
            _ => return Err(ParseError::Syntax.into()),
        }
    }
    Ok(ScanArgs {
        cursor,
        count,
        pattern,
        type_name,
    })
}

pub(super) async fn scan(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let ScanArgs {
        cursor,
        count,
        pattern,
        type_name,
    } = scan_args(parse, true)?;
    read_gate(ctx, session).await?;
    let limits = session.key_limits(ctx);
    let page_at = move |store: &Store| {
        let (keys, next) = store.scan(cursor, count);
        let typed: Vec<(Bytes, bool)> = keys
            .into_iter()
            .map(|k| {
                let hash = store.get(&k).is_some_and(|kv| kv.is_hash());
                (k, hash)
            })
            .collect();
        (typed, next)
    };
    // LongReadsOffRaft (`raft/store_view.rs`): a large COUNT over a large keyspace.
    let (page, next) =
        if count > DETACH_ABOVE_ITEMS && ctx.node.read_store(Store::len) > DETACH_ABOVE_ITEMS {
            ctx.node.read_store_detached(page_at).await?
        } else {
            ctx.node.read_store(page_at)
        };
    let keys = page
        .into_iter()
        .filter(|(key, hash)| {
            let type_ok = type_name
                .as_ref()
                .is_none_or(|t| t.eq_ignore_ascii_case(if *hash { "hash" } else { "string" }));
            type_ok
                && pattern.as_ref().is_none_or(|p| glob::matches(p, key))
                && limits.as_ref().is_none_or(|u| u.may_read_key(key))
        })
        .map(|(key, _)| Frame::Bulk(key))
        .collect();
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(keys),
    ]))
}

pub(super) fn flush(parse: &mut Parse) -> Result<Plan, CommandError> {
    // Redis: at most one option, ASYNC or SYNC; both flush at once here.
    match parse.remaining() {
        0 => {}
        1 if matches!(parse.peek_upper().as_deref(), Some("ASYNC" | "SYNC")) => {}
        _ => return Err(ParseError::Syntax.into()),
    }
    Ok(Plan {
        op: Op::Flush,
        reply: WriteReply::Flushed,
    })
}

pub(super) async fn revision(
    ctx: &ServerContext,
    session: &mut Session,
    _parse: &mut Parse,
) -> CommandResult {
    read_gate(ctx, session).await?;
    let (revision, compact_revision) = ctx
        .node
        .read_store(|store| (store.revision(), store.compact_revision()));
    // RevisionAfterInvalidations: the invalidations of every change up to `revision` were
    // queued before it could be read (AppliedHookBeforeReaders); they go out before this
    // reply, so a tracking client that has this reply has them all (`watch/tracking.rs`).
    if session.tracking.is_some() {
        session.take_queued_pushes();
    }
    let metrics = ctx.node.status();
    let leader = metrics
        .current_leader
        .map_or(Frame::Null, |id| Frame::Integer(id as i64));
    Ok(Frame::Map(vec![
        field("revision", Frame::Integer(revision as i64)),
        field("compact_revision", Frame::Integer(compact_revision as i64)),
        field("raft_term", Frame::Integer(metrics.current_term as i64)),
        field("raft_leader", leader),
    ]))
}

pub(super) fn cas(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let expected_mod_revision = parse.next_u64()?;
    let value = parse.next_bytes()?;
    let reply = WriteReply::Applied { as_integer: true };
    match parse.peek_upper().as_deref() {
        None => Ok(Plan {
            op: Op::Cas {
                key,
                expected_mod_revision,
                value,
            },
            reply,
        }),
        Some("EX") if parse.remaining() == 2 => {
            parse.next_bytes()?;
            let unit = TimeUnit {
                seconds: true,
                absolute: false,
            };
            let expiry = positive_expiry(&parse.next_bytes()?, unit, "cas", unix_ms())
                .map_err(|e| CommandError::Reply(e.to_string()))?;
            Ok(Plan {
                op: Op::CasEx {
                    key,
                    expected_mod_revision,
                    value,
                    expiry,
                    now_ms: 0,
                },
                reply,
            })
        }
        Some(_) => Err(ParseError::Syntax.into()),
    }
}

/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`: strings up to this many bytes are `embstr`.
const EMBSTR_SIZE_LIMIT: usize = 44;
/// Redis's `hash-max-listpack-entries` and `hash-max-listpack-value` defaults.
const LISTPACK_ENTRIES: usize = 128;
const LISTPACK_VALUE: usize = 64;
/// Redis shares the integers below this (`OBJ_SHARED_INTEGERS`); their refcount reads as
/// `OBJ_SHARED_REFCOUNT` (INT_MAX).
const SHARED_INTEGERS: i64 = 10_000;

/// The integer Redis would store `value` as (`string2l`: no sign but `-`, no leading zeros,
/// at most 20 bytes), if any.
fn redis_integer(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    let canonical = digits == b"0" && value.len() == 1
        || digits.first().is_some_and(|d| (b'1'..=b'9').contains(d))
            && digits.iter().all(u8::is_ascii_digit);
    canonical
        .then(|| std::str::from_utf8(value).ok()?.parse().ok())
        .flatten()
}

/// The encoding Redis 7.0 gives a freshly written value like `stored` (`OBJECT ENCODING`).
/// Derived from the value alone: Redis also keeps `raw` after `APPEND`/`SETRANGE` and
/// `hashtable` after a hash shrinks, which redraft does not track.
fn encoding(stored: &Stored) -> &'static str {
    match stored {
        Stored::String(v) if redis_integer(v).is_some() => "int",
        Stored::String(v) if v.len() <= EMBSTR_SIZE_LIMIT => "embstr",
        Stored::String(_) => "raw",
        Stored::Hash(h)
            if h.len() <= LISTPACK_ENTRIES
                && h.iter()
                    .all(|(f, v)| f.len() <= LISTPACK_VALUE && v.len() <= LISTPACK_VALUE) =>
        {
            "listpack"
        }
        Stored::Hash(_) => "hashtable",
    }
}

/// OBJECT ENCODING|REFCOUNT|FREQ|HELP, through the read gate. `IDLETIME` is not answered
/// (redraft does not track access times): it is not in the command table.
pub(super) async fn object(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    if sub == "help" {
        return Ok(help_reply(
            "OBJECT",
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        ));
    }
    let key = parse.next_bytes()?;
    read_gate(ctx, session).await?;
    let Some(kv) = ctx.node.read_store(|s| s.get(&key)) else {
        return Ok(Frame::Null);
    };
    let stored = kv.stored();
    match sub.as_str() {
        "encoding" => Ok(Frame::Bulk(Bytes::from_static(
            encoding(&stored).as_bytes(),
        ))),
        "refcount" => Ok(Frame::Integer(match &stored {
            Stored::String(v)
                if redis_integer(v).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n)) =>
            {
                i64::from(i32::MAX)
            }
            _ => 1,
        })),
        "freq" => Err(CommandError::Reply(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please \
             note that when switching between policies at runtime LRU and LFU data will take \
             some time to adjust."
                .into(),
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try OBJECT HELP."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_as_strtoul() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"", Some(0)),
            (b"007", Some(7)),
            (b"+5", Some(5)),
            (b"-1", Some(u64::MAX)),
            (b"-0", Some(0)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"-18446744073709551615", Some(1)),
            (b"12\0junk", Some(12)),
            (b" 0", None),
            (b"0 ", None),
            (b"0x", None),
            (b"abc", None),
            (b"-", None),
            (b"1.5", None),
        ];
        for &(arg, want) in cases {
            assert_eq!(
                parse_cursor(arg),
                want,
                "{:?}",
                String::from_utf8_lossy(arg)
            );
        }
    }
}
