//! The writing TTL commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST GETEX SETEX PSETEX, with
//! Redis 7.0's replies and error texts (`expire.c`, `t_string.c`); the TTL reads are
//! `reads.rs`'s, SET's options `strings.rs`'s.
//!
//! A time argument is checked here as Redis checks it (against this node's clock, for the
//! overflow of a relative time), then carried as a [`Expiry`]: relative (`After`) until the
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

use super::strings::{parse_string_options, OptionsOf};
use super::{check_arity, CommandError, ParseError, Plan, WriteReply};
use crate::protocol::framer::string2ll;
use crate::protocol::Parse;
use crate::raft::unix_ms;
use crate::store::{ExpireCond, Expiry, GetExAction, Op, PutTtl, SetWhen, StoreError};

/// How a time argument counts: seconds or milliseconds, relative or a unix time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimeUnit {
    pub seconds: bool,
    pub absolute: bool,
}

impl TimeUnit {
    /// The unit of SET's and GETEX's expiry option `opt` (uppercase), if it is one.
    pub fn of_option(opt: &str) -> Option<TimeUnit> {
        let (seconds, absolute) = match opt {
            "EX" => (true, false),
            "PX" => (false, false),
            "EXAT" => (true, true),
            "PXAT" => (false, true),
            _ => return None,
        };
        Some(TimeUnit { seconds, absolute })
    }
}

/// Checks a time given to SET, GETEX, SETEX, PSETEX or CAS as Redis's
/// `getExpireMillisecondsOrReply`: an integer, positive, whose milliseconds (plus `now_ms` when
/// relative) fit in 64 bits. `command` names it in the error.
pub(super) fn positive_expiry(
    arg: &[u8],
    unit: TimeUnit,
    command: &str,
    now_ms: i64,
) -> Result<Expiry, StoreError> {
    let n = string2ll(arg).ok_or(StoreError::NotInteger)?;
    let invalid = || StoreError::InvalidExpireTime {
        command: command.to_owned(),
    };
    if n <= 0 || (unit.seconds && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if unit.seconds { n * 1000 } else { n };
    if unit.absolute {
        Ok(Expiry::At(ms))
    } else if ms.checked_add(now_ms).is_none() {
        Err(invalid())
    } else {
        Ok(Expiry::After(ms))
    }
}

/// Checks EXPIRE's time as Redis's `expireGenericCommand`: any integer (a past time deletes),
/// as long as its milliseconds, plus `now_ms` when relative, fit in 64 bits.
fn expire_time(
    arg: &[u8],
    unit: TimeUnit,
    command: &str,
    now_ms: i64,
) -> Result<Expiry, CommandError> {
    let mut when = string2ll(arg).ok_or(ParseError::NotInteger)?;
    let invalid = || {
        CommandError::Reply(
            StoreError::InvalidExpireTime {
                command: command.to_owned(),
            }
            .to_string(),
        )
    };
    if unit.seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid());
        }
        when *= 1000;
    }
    let basetime = if unit.absolute { 0 } else { now_ms };
    if when > i64::MAX - basetime {
        return Err(invalid());
    }
    Ok(if unit.absolute {
        Expiry::At(when)
    } else {
        Expiry::After(when)
    })
}

/// Plans `name` if it is a writing TTL command.
pub fn plan(name: &str, parse: &mut Parse) -> Option<Result<Plan, CommandError>> {
    Some(match name {
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire(name, parse),
        "persist" => persist(parse),
        "getex" => getex(parse),
        "setex" | "psetex" => setex(name, parse),
        _ => return None,
    })
}

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

fn expire(name: &str, parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, -3)?;
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

fn persist(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 2)?;
    let key = parse.next_bytes()?;
    Ok(Plan {
        op: Op::Persist { key },
        reply: WriteReply::Applied { as_integer: true },
    })
}

fn getex(parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, -2)?;
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

fn setex(name: &str, parse: &mut Parse) -> Result<Plan, CommandError> {
    check_arity(parse, 4)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_checked_as_redis() {
        const NOW: i64 = 1_700_000_000_000;
        let ex = TimeUnit {
            seconds: true,
            absolute: false,
        };
        let pxat = TimeUnit {
            seconds: false,
            absolute: true,
        };
        let invalid = |c: &str| {
            Err(StoreError::InvalidExpireTime {
                command: c.to_owned(),
            })
        };
        assert_eq!(
            positive_expiry(b"10", ex, "set", NOW),
            Ok(Expiry::After(10_000))
        );
        assert_eq!(positive_expiry(b"0", ex, "set", NOW), invalid("set"));
        assert_eq!(positive_expiry(b"-1", pxat, "set", NOW), invalid("set"));
        assert_eq!(
            positive_expiry(b"x", ex, "set", NOW),
            Err(StoreError::NotInteger)
        );
        let max_s = (i64::MAX / 1000).to_string();
        assert_eq!(
            positive_expiry(max_s.as_bytes(), ex, "set", NOW),
            invalid("set")
        );
        let over = (i64::MAX / 1000 + 1).to_string();
        assert_eq!(
            positive_expiry(over.as_bytes(), ex, "set", NOW),
            invalid("set")
        );
        let max = i64::MAX.to_string();
        assert_eq!(
            positive_expiry(max.as_bytes(), pxat, "set", NOW),
            Ok(Expiry::At(i64::MAX))
        );

        let expire = TimeUnit {
            seconds: true,
            absolute: false,
        };
        assert!(matches!(
            expire_time(b"-5", expire, "expire", NOW),
            Ok(Expiry::After(-5000))
        ));
        assert!(expire_time(max_s.as_bytes(), expire, "expire", NOW).is_err());
        assert!(expire_time(max.as_bytes(), pxat, "pexpireat", NOW).is_ok());
        let min = i64::MIN.to_string();
        assert!(expire_time(min.as_bytes(), expire, "expire", NOW).is_err());
    }
}
