//! The writing TTL commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST GETEX SETEX PSETEX, with
//! Redis 7.0's replies and error texts (`expire.c`, `t_string.c`); the TTL reads are
//! `reads.rs`'s, SET's options and the time checks `args.rs`'s.
//!
//! A time argument is checked as Redis checks it (`args.rs`: against this node's clock, for the
//! overflow of a relative time), then carried as an [`Expiry`](crate::store::Expiry): relative (`After`) until the
//! leader proposing the entry turns it into an absolute deadline with its own clock
//! (`raft::stamp`), or absolute (`At`). Apply reads no clock; whether a deadline has passed is
//! decided against the time stamped in the entry.
//!
//! # Format
//!
//! ```text
//! EXPIRE|PEXPIRE key time [NX|XX|GT|LT ...]      → :1 set (or deleted: time already passed)
//! EXPIREAT|PEXPIREAT key unix-time [NX|XX|GT|LT] → :0 key absent or condition false
//! PERSIST key                                    → :1 deadline removed | :0
//! GETEX key [EX s|PX ms|EXAT unix-s|PXAT unix-ms|PERSIST]
//!                                                → bulk | nil (then changes the TTL)
//! SETEX key seconds value | PSETEX key ms value  → +OK
//! ```
//!
//! Setting or removing a deadline is a put of the same value: it bumps `mod_revision` (and so
//! aborts a WATCH on the key, as Redis's `signalModifiedKey`).

use bytes::Bytes;

use super::args::{expire_time, parse_string_options, positive_expiry, OptionsOf, TimeUnit};
use super::{CommandError, Plan, WriteReply};
use crate::protocol::Parse;
use crate::raft::unix_ms;
use crate::store::{ExpireCond, GetExAction, Op, PutTtl, SetWhen};

/// Parses EXPIRE's flags as Redis's `parseExtendedExpireArgumentsOrReply` (after the time,
/// before checking it).
fn expire_cond(parse: &mut Parse) -> Result<ExpireCond, CommandError> {
    let mut cond = ExpireCond::default();
    while parse.remaining() > 0 {
        let arg = parse.next_bytes()?;
        match String::from_utf8_lossy(&arg).to_uppercase().as_str() {
            "NX" => cond.nx = true,
            "XX" => cond.xx = true,
            "GT" => cond.gt = true,
            "LT" => cond.lt = true,
            _ => {
                return Err(CommandError::Reply(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(&arg)
                )))
            }
        }
    }
    if cond.nx && (cond.xx || cond.gt || cond.lt) {
        return Err(CommandError::Reply(
            "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
        ));
    }
    if cond.gt && cond.lt {
        return Err(CommandError::Reply(
            "ERR GT and LT options at the same time are not compatible".into(),
        ));
    }
    Ok(cond)
}

pub(super) fn expire(name: &str, parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let time = parse.next_bytes()?;
    let cond = expire_cond(parse)?;
    let unit = TimeUnit {
        seconds: !name.starts_with('p'),
        absolute: name.ends_with("at"),
    };
    let expiry = expire_time(&time, unit, name, unix_ms())?;
    Ok(Plan {
        op: Op::Expire {
            key,
            expiry,
            cond,
            now_ms: 0,
        },
        reply: WriteReply::Applied { as_integer: true },
    })
}

pub(super) fn persist(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    Ok(Plan {
        op: Op::Persist { key },
        reply: WriteReply::Applied { as_integer: true },
    })
}

pub(super) fn getex(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let opts = parse_string_options(parse, OptionsOf::GetEx)?;
    let action = match opts.expiry {
        // Redis checks GETEX's time only once it found the key: the store answers the error
        // if the key exists, nil if not.
        Some((unit, arg)) => match positive_expiry(&arg, unit, "getex", unix_ms()) {
            Ok(expiry) => GetExAction::Expire(expiry),
            Err(e) => GetExAction::Refuse(e),
        },
        None if opts.persist => GetExAction::Persist,
        None => GetExAction::Keep,
    };
    Ok(Plan {
        op: Op::GetEx {
            key,
            action,
            now_ms: 0,
        },
        reply: WriteReply::Value,
    })
}

pub(super) fn setex(name: &str, parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let time: Bytes = parse.next_bytes()?;
    let value = parse.next_bytes()?;
    let unit = TimeUnit {
        seconds: name == "setex",
        absolute: false,
    };
    let expiry = positive_expiry(&time, unit, name, unix_ms())
        .map_err(|e| CommandError::Reply(e.to_string()))?;
    Ok(Plan {
        op: Op::SetEx {
            key,
            value,
            when: SetWhen::Always,
            get: false,
            ttl: PutTtl::Expire(expiry),
            now_ms: 0,
        },
        reply: WriteReply::Set { get: false },
    })
}
