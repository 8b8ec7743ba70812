//! The writing string commands: SET SETNX GETSET GETDEL MSET MSETNX INCR DECR INCRBY DECRBY
//! INCRBYFLOAT APPEND SETRANGE, with Redis 7.0's replies and error texts (the reads are
//! `reads.rs`'s, SETEX PSETEX GETEX `expire.rs`'s).
//!
//! Every write,
//! read-modify-writes included, is one `store::Op` decided inside `Store::apply`, so INCR from
//! many clients on many nodes never loses an update. What Redis refuses before looking at the
//! key (arity, syntax, a non-integer argument, a negative offset) is refused here without
//! proposing anything; what depends on the value (INCR of "abc") comes back from the store.
//! So a write is a [`Plan`] made here without touching the node, proposed by `commands`.
//!
//! # Format
//!
//! ```text
//! SET key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]
//!                                  → +OK | nil (NX/XX refused) | with GET: the old value or nil
//!                                    (a relative time becomes a deadline when the leader
//!                                    proposes the entry; a deadline already passed deletes)
//! SETNX key value                  → :1 set | :0 key exists
//! GETSET key value                 → old value | nil
//! GETDEL key                       → value | nil
//! MSET key value [key value ...]   → +OK (one revision for all pairs)
//! MSETNX key value [key value ...] → :1 all set | :0 none set (some key existed)
//! INCR|DECR key                    → :new value
//! INCRBY|DECRBY key n              → :new value
//! INCRBYFLOAT key x                → bulk new value (x86 long double arithmetic, %.17Lf)
//! APPEND key value                 → :new length
//! SETRANGE key offset value        → :new length
//! ```

use super::args::{parse_string_options, positive_expiry, wrong_arity, OptionsOf};
use super::{CommandError, Plan, WriteReply};
use crate::protocol::Parse;
use crate::raft::unix_ms;
use crate::store::{Op, PutTtl, SetWhen};

pub(super) fn set(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let value = parse.next_bytes()?;
    let opts = parse_string_options(parse, OptionsOf::Set)?;
    // Redis checks the time before looking at the key.
    let ttl = match &opts.expiry {
        Some((unit, arg)) => PutTtl::Expire(
            positive_expiry(arg, *unit, "set", unix_ms())
                .map_err(|e| CommandError::Reply(e.to_string()))?,
        ),
        None if opts.keepttl => PutTtl::Keep,
        None => PutTtl::Clear,
    };
    if ttl != PutTtl::Clear {
        return Ok(Plan {
            op: Op::SetEx {
                key,
                value,
                when: opts.when,
                get: opts.get,
                ttl,
                now_ms: 0,
            },
            reply: WriteReply::Set { get: opts.get },
        });
    }
    if opts.when == SetWhen::Always && !opts.get {
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

pub(super) fn setnx(parse: &mut Parse) -> Result<Plan, CommandError> {
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

pub(super) fn getset(parse: &mut Parse) -> Result<Plan, CommandError> {
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

pub(super) fn getdel(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    Ok(Plan {
        op: Op::GetDel { key },
        reply: WriteReply::Value,
    })
}

pub(super) fn mset(parse: &mut Parse) -> Result<Plan, CommandError> {
    let name = parse.command_name();
    if parse.remaining() % 2 != 0 {
        return Err(wrong_arity(&name));
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

pub(super) fn incr(name: &str, parse: &mut Parse) -> Result<Plan, CommandError> {
    let by = name.ends_with("by");
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

pub(super) fn incrbyfloat(parse: &mut Parse) -> Result<Plan, CommandError> {
    // Redis looks at the key (WRONGTYPE) and its value before the increment: the store checks
    // both, in that order.
    let (key, increment) = (parse.next_bytes()?, parse.next_bytes()?);
    Ok(Plan {
        op: Op::IncrByFloat { key, increment },
        reply: WriteReply::Value,
    })
}

pub(super) fn append(parse: &mut Parse) -> Result<Plan, CommandError> {
    let (key, value) = (parse.next_bytes()?, parse.next_bytes()?);
    Ok(Plan {
        op: Op::Append { key, value },
        reply: WriteReply::Length,
    })
}

pub(super) fn setrange(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let offset = parse.next_i64()?;
    let value = parse.next_bytes()?;
    // Redis refuses a negative offset before looking at the key, and the size only after
    // (WRONGTYPE first, nothing to write: no error): the store checks the size.
    let offset = u64::try_from(offset)
        .map_err(|_| CommandError::Reply("ERR offset is out of range".into()))?;
    Ok(Plan {
        op: Op::SetRange { key, offset, value },
        reply: WriteReply::Length,
    })
}
