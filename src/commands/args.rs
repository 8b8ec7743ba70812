//! Argument parsing that more than one command family shares: the arity error, the rest of the
//! arguments, time arguments and their units (SET, GETEX, SETEX, PSETEX, EXPIRE and friends,
//! CAS), and SET's and GETEX's options. Each parser checks what Redis checks before it looks at
//! the keyspace, with Redis 7.0's error texts; it touches no node and no session.
//!
//! The argument count itself is checked once, from the command table, before a command is
//! routed (`commands::check`): a family reads its arguments knowing the count is right.

use bytes::Bytes;

use super::CommandError;
use crate::protocol::framer::string2ll;
use crate::protocol::{Parse, ParseError};
use crate::store::{Expiry, SetWhen, StoreError};

/// The arity error for `name` (`client|setname` for a subcommand), for a count the table cannot
/// express (an odd number of MSET arguments, PING with two).
pub(crate) fn wrong_arity(name: &str) -> CommandError {
    CommandError::Parse(ParseError::WrongArity(name.to_string()))
}

/// The arguments left, in order.
pub(crate) fn rest(parse: &mut Parse) -> Result<Vec<Bytes>, CommandError> {
    let mut args = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        args.push(parse.next_bytes()?);
    }
    Ok(args)
}

/// How a time argument counts: seconds or milliseconds, relative or a unix time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeUnit {
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
pub(crate) fn positive_expiry(
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
pub(crate) fn expire_time(
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

/// Which command's options [`parse_string_options`] reads (Redis's `COMMAND_SET`,
/// `COMMAND_GET`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionsOf {
    Set,
    GetEx,
}

/// SET's and GETEX's options, parsed with Redis 7.0's grammar
/// (`parseExtendedStringArgumentsOrReply`): NX and XX exclude each other, KEEPTTL and PERSIST
/// exclude the expiry options, one expiry option may be repeated (the last value wins) but not
/// mixed with another, an expiry option needs an argument; anything else is a syntax error.
pub(crate) struct StringOptions {
    pub when: SetWhen,
    pub get: bool,
    pub keepttl: bool,
    pub persist: bool,
    /// The expiry option's unit and its argument, not yet checked (SET checks it before the
    /// key, GETEX after: `expire.rs`).
    pub expiry: Option<(TimeUnit, Bytes)>,
}

pub(crate) fn parse_string_options(
    parse: &mut Parse,
    of: OptionsOf,
) -> Result<StringOptions, CommandError> {
    let mut opts = StringOptions {
        when: SetWhen::Always,
        get: false,
        keepttl: false,
        persist: false,
        expiry: None,
    };
    let set = of == OptionsOf::Set;
    while let Some(opt) = parse.peek_upper() {
        parse.next_bytes()?;
        let has_next = parse.remaining() > 0;
        let unit = TimeUnit::of_option(&opt);
        match opt.as_str() {
            "NX" if set && opts.when != SetWhen::Present => opts.when = SetWhen::Absent,
            "XX" if set && opts.when != SetWhen::Absent => opts.when = SetWhen::Present,
            "GET" if set => opts.get = true,
            "KEEPTTL" if set && opts.expiry.is_none() && !opts.persist => opts.keepttl = true,
            "PERSIST" if !set && opts.expiry.is_none() && !opts.keepttl => opts.persist = true,
            _ if unit.is_some() && !opts.keepttl && !opts.persist && has_next => {
                // Redis allows the same option twice, not two different ones.
                if opts
                    .expiry
                    .as_ref()
                    .is_some_and(|(first, _)| Some(*first) != unit)
                {
                    return Err(ParseError::Syntax.into());
                }
                let arg = parse.next_bytes()?;
                opts.expiry = unit.map(|unit| (unit, arg));
            }
            _ => return Err(ParseError::Syntax.into()),
        }
    }
    Ok(opts)
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
