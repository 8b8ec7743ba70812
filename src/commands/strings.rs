//! String commands: GET SET SETNX GETSET GETDEL MGET MSET MSETNX INCR DECR INCRBY DECRBY
//! INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE, with Redis 7.0's replies and error texts.
//!
//! Reads pass the read gate once and answer from the store under its read lock. Every write,
//! read-modify-writes included, is one `store::Op` decided inside `Store::apply`, so INCR from
//! many clients on many nodes never loses an update. What Redis refuses before looking at the
//! key (arity, syntax, a non-integer argument, a negative offset) is refused here without
//! proposing anything; what depends on the value (INCR of "abc") comes back from the store.
//! So a write is a [`Plan`] made here without touching the node, proposed by `commands`.
//!
//! # Format
//!
//! ```text
//! GET key                          → bulk | nil
//! SET key value [NX|XX] [GET] [KEEPTTL]
//!                                  → +OK | nil (NX/XX refused) | with GET: the old value or nil
//!                                    (EX PX EXAT PXAT: -ERR SET option EX is not supported yet)
//! SETNX key value                  → :1 set | :0 key exists
//! GETSET key value                 → old value | nil
//! GETDEL key                       → value | nil
//! MGET key [key ...]               → array of bulk | nil
//! MSET key value [key value ...]   → +OK (one revision for all pairs)
//! MSETNX key value [key value ...] → :1 all set | :0 none set (some key existed)
//! INCR|DECR key                    → :new value
//! INCRBY|DECRBY key n              → :new value
//! INCRBYFLOAT key x                → bulk new value (x86 long double arithmetic, %.17Lf)
//! APPEND key value                 → :new length
//! STRLEN key                       → :length (0 if absent)
//! GETRANGE key start end           → bulk (inclusive, negative from the end; "" if absent)
//! SETRANGE key offset value        → :new length
//! ```

use bytes::Bytes;

use super::{arity_of, check_arity, CommandError, CommandResult, ParseError};
use crate::commands::{read_gate, Plan, Session, WriteReply};
use crate::protocol::{Frame, Parse};
use crate::server::ServerContext;
use crate::store::{LongDouble, Op, SetWhen, MAX_STRING_LEN};

/// Plans `name` if it is a writing string command.
pub fn plan(name: &str, parse: &mut Parse) -> Option<Result<Plan, CommandError>> {
    Some(match name {
        "set" => set(parse),
        "setnx" => setnx(parse),
        "getset" => getset(parse),
        "getdel" => getdel(parse),
        "mset" | "msetnx" => mset(parse),
        "incr" | "decr" | "incrby" | "decrby" => incr(name, parse),
        "incrbyfloat" => incrbyfloat(parse),
        "append" => append(parse),
        "setrange" => setrange(parse),
        _ => return None,
    })
}

/// Runs `name` if it is a reading string command.
pub async fn execute(
    ctx: &ServerContext,
    session: &mut Session,
    name: &str,
    parse: &mut Parse,
) -> Option<CommandResult> {
    Some(match name {
        "get" => get(ctx, session, parse).await,
        "mget" => mget(ctx, session, parse).await,
        "strlen" => strlen(ctx, session, parse).await,
        "getrange" => getrange(ctx, session, parse).await,
        _ => return None,
    })
}

fn bulk_or_nil(value: Option<Bytes>) -> Frame {
    value.map_or(Frame::Null, Frame::Bulk)
}

async fn get(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    check_arity(parse, 2)?;
    let key = parse.next_bytes()?;
    read_gate(ctx, session).await?;
    let st = ctx.node.sm.read();
    Ok(bulk_or_nil(st.store.get(&key).map(|kv| kv.value)))
}

/// SET's options, parsed with Redis 7.0's grammar (`parseExtendedStringArgumentsOrReply`):
/// NX and XX exclude each other, KEEPTTL excludes the expiry options, an expiry option needs
/// an argument; anything else is a syntax error.
struct SetOptions {
    when: SetWhen,
    get: bool,
    /// The first expiry option given (EX, PX, EXAT, PXAT), which redraft does not support yet.
    expiry: Option<&'static str>,
}

fn parse_set_options(parse: &mut Parse) -> Result<SetOptions, CommandError> {
    let mut opts = SetOptions {
        when: SetWhen::Always,
        get: false,
        expiry: None,
    };
    let mut keepttl = false;
    while let Some(opt) = parse.peek_upper() {
        parse.next_bytes()?;
        let has_next = parse.remaining() > 0;
        match opt.as_str() {
            "NX" if opts.when != SetWhen::Present => opts.when = SetWhen::Absent,
            "XX" if opts.when != SetWhen::Absent => opts.when = SetWhen::Present,
            "GET" => opts.get = true,
            "KEEPTTL" if opts.expiry.is_none() => keepttl = true,
            "EX" | "PX" | "EXAT" | "PXAT" if !keepttl && has_next => {
                let name = match opt.as_str() {
                    "EX" => "EX",
                    "PX" => "PX",
                    "EXAT" => "EXAT",
                    _ => "PXAT",
                };
                // Redis allows the same option twice, not two different ones.
                if opts.expiry.is_some_and(|first| first != name) {
                    return Err(ParseError::Syntax.into());
                }
                opts.expiry = Some(name);
                parse.next_bytes()?;
            }
            _ => return Err(ParseError::Syntax.into()),
        }
    }
    Ok(opts)
}

fn set(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, -3)?;
    let key = parse.next_bytes()?;
    let value = parse.next_bytes()?;
    let opts = parse_set_options(parse)?;
    if let Some(option) = opts.expiry {
        return Err(CommandError::Reply(format!(
            "ERR SET option {option} is not supported yet"
        )));
    }
    if opts.when == SetWhen::Always && !opts.get {
        // KEEPTTL alone changes nothing while there are no TTLs: a plain put.
        return Ok(Plan {
            op: Op::Put { key, value },
            reply: WriteReply::Put,
        });
    }
    Ok(Plan {
        op: Op::Set {
            key,
            value,
            when: opts.when,
            get: opts.get,
        },
        reply: WriteReply::Set { get: opts.get },
    })
}

fn setnx(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 3)?;
    let (key, value) = (parse.next_bytes()?, parse.next_bytes()?);
    Ok(Plan {
        op: Op::Set {
            key,
            value,
            when: SetWhen::Absent,
            get: false,
        },
        reply: WriteReply::SetNx,
    })
}

fn getset(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 3)?;
    let (key, value) = (parse.next_bytes()?, parse.next_bytes()?);
    Ok(Plan {
        op: Op::Set {
            key,
            value,
            when: SetWhen::Always,
            get: true,
        },
        reply: WriteReply::Set { get: true },
    })
}

fn getdel(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 2)?;
    let key = parse.next_bytes()?;
    Ok(Plan {
        op: Op::GetDel { key },
        reply: WriteReply::Value,
    })
}

async fn mget(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    check_arity(parse, -2)?;
    let mut keys = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        keys.push(parse.next_bytes()?);
    }
    read_gate(ctx, session).await?;
    let st = ctx.node.sm.read();
    let values = keys
        .iter()
        .map(|key| bulk_or_nil(st.store.get(key).map(|kv| kv.value)))
        .collect();
    Ok(Frame::Array(values))
}

fn mset(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, -3)?;
    let name = parse.command_name();
    if parse.remaining() % 2 != 0 {
        return Err(arity_of(&name));
    }
    let mut pairs = Vec::with_capacity(parse.remaining() / 2);
    while parse.remaining() > 0 {
        pairs.push((parse.next_bytes()?, parse.next_bytes()?));
    }
    let if_none_exist = name == "msetnx";
    Ok(Plan {
        op: Op::MSet {
            pairs,
            if_none_exist,
        },
        reply: WriteReply::Applied {
            as_integer: if_none_exist,
        },
    })
}

fn incr(name: &str, parse: &mut Parse) -> Result<Plan, CommandError> {
    let by = name.ends_with("by");
    check_arity(parse, if by { 3 } else { 2 })?;
    let key = parse.next_bytes()?;
    let n = if by { parse.next_i64()? } else { 1 };
    let delta = if name.starts_with("decr") {
        // Redis refuses to negate LLONG_MIN before looking at the key.
        n.checked_neg()
            .ok_or_else(|| CommandError::Reply("ERR decrement would overflow".into()))?
    } else {
        n
    };
    Ok(Plan {
        op: Op::IncrBy { key, delta },
        reply: WriteReply::Integer,
    })
}

fn incrbyfloat(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 3)?;
    let (key, increment) = (parse.next_bytes()?, parse.next_bytes()?);
    if LongDouble::parse(&increment).is_none() {
        return Err(CommandError::Reply("ERR value is not a valid float".into()));
    }
    Ok(Plan {
        op: Op::IncrByFloat { key, increment },
        reply: WriteReply::Value,
    })
}

fn append(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 3)?;
    let (key, value) = (parse.next_bytes()?, parse.next_bytes()?);
    Ok(Plan {
        op: Op::Append { key, value },
        reply: WriteReply::Length,
    })
}

async fn strlen(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    check_arity(parse, 2)?;
    let key = parse.next_bytes()?;
    read_gate(ctx, session).await?;
    let st = ctx.node.sm.read();
    let length = st.store.get(&key).map_or(0, |kv| kv.value.len());
    Ok(Frame::Integer(length as i64))
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

async fn getrange(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    check_arity(parse, 4)?;
    let key = parse.next_bytes()?;
    let (start, end) = (parse.next_i64()?, parse.next_i64()?);
    read_gate(ctx, session).await?;
    let st = ctx.node.sm.read();
    let value = st.store.get(&key).map(|kv| kv.value).unwrap_or_default();
    Ok(Frame::Bulk(match range(value.len(), start, end) {
        Some(r) => value.slice(r),
        None => Bytes::new(),
    }))
}

fn setrange(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 4)?;
    let key = parse.next_bytes()?;
    let offset = parse.next_i64()?;
    let value = parse.next_bytes()?;
    let offset = u64::try_from(offset)
        .map_err(|_| CommandError::Reply("ERR offset is out of range".into()))?;
    // Redis checks the size before looking at the key, unless there is nothing to write.
    if !value.is_empty() && offset.saturating_add(value.len() as u64) > MAX_STRING_LEN {
        return Err(CommandError::Reply(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)".into(),
        ));
    }
    Ok(Plan {
        op: Op::SetRange { key, offset, value },
        reply: WriteReply::Length,
    })
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
}
