//! The hash commands, with Redis 7.0's replies and error texts: the writes (HSET HSETNX HMSET
//! HDEL HINCRBY HINCRBYFLOAT) planned as one `store::Op` each, decided at apply (`store/hash.rs`),
//! and the reads (HGET HMGET HGETALL HEXISTS HLEN HKEYS HVALS HSTRLEN HSCAN HRANDFIELD) planned
//! as one `store::ReadOp::Typed` of the key and answered from the hash it returns
//! ([`HashRead`], through `reads.rs`), so they run alone, inside MULTI and inside scripts as
//! the string reads do.
//!
//! A hash read of a string key, and a string read of a hash key, answer `WRONGTYPE`; an absent
//! key reads as an empty hash.
//!
//! # Format
//!
//! ```text
//! HSET key field value [field value ...]  → :fields added
//! HSETNX key field value                  → :1 set | :0 field exists
//! HMSET key field value [field value ...] → +OK
//! HDEL key field [field ...]              → :fields removed (the last one deletes the key)
//! HINCRBY key field n                     → :new value
//! HINCRBYFLOAT key field x                → bulk new value (long double, as INCRBYFLOAT)
//! HGET key field                          → bulk | nil
//! HMGET key field [field ...]             → array of bulk | nil
//! HGETALL key                             → map field → value (a flat array in RESP2)
//! HEXISTS key field                       → :1 | :0
//! HLEN key                                → :fields
//! HKEYS key / HVALS key                   → array
//! HSTRLEN key field                       → :length (0 if absent)
//! HSCAN key cursor [MATCH p] [COUNT n]    → [next cursor, [field, value, ...]]
//! HRANDFIELD key [count [WITHVALUES]]     → bulk | nil; with count an array (negative: may
//!                                           repeat, exactly -count items)
//! ```
//!
//! Fields are listed in byte order (Redis lists a small hash in insertion order and a large one
//! in its table's order; neither is a promise of Redis's). HSCAN walks fields in the order of
//! their FNV-1a hash, as SCAN walks keys (`keys.rs`), so a cursor stays valid while the hash
//! changes: a field present for the whole iteration is returned exactly once. A hash of up to
//! [`HSCAN_WHOLE`] fields comes back whole in one page with cursor 0, as Redis does for a small
//! hash. HRANDFIELD is random and so refused inside scripts that may write (their calls must be
//! the same on every node).

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use super::args::wrong_arity;
use super::keys;
use super::{CommandError, CommandResult, Plan, WriteReply};
use crate::glob;
use crate::protocol::{Frame, Parse, ParseError};
use crate::raft::DETACH_ABOVE_ITEMS;
use crate::store::{scan_hash, Hash, LongDouble, Op, ReadOp, Stored};

/// HSCAN returns a hash of at most this many fields whole, with cursor 0 (Redis's listpack
/// threshold, `hash-max-listpack-entries`).
pub(crate) const HSCAN_WHOLE: usize = 128;

pub(super) fn hset(parse: &mut Parse) -> Result<Plan, CommandError> {
    let name = parse.command_name();
    let key = parse.next_bytes()?;
    if parse.remaining() == 0 || parse.remaining() % 2 == 1 {
        return Err(wrong_arity(&name));
    }
    let mut pairs = Vec::with_capacity(parse.remaining() / 2);
    while parse.remaining() > 0 {
        pairs.push((parse.next_bytes()?, parse.next_bytes()?));
    }
    let reply = if name == "hmset" {
        WriteReply::IntegerOk
    } else {
        WriteReply::Integer
    };
    Ok(Plan {
        op: Op::HSet {
            key,
            pairs,
            if_absent: false,
        },
        reply,
    })
}

pub(super) fn hsetnx(parse: &mut Parse) -> Result<Plan, CommandError> {
    let (key, field, value) = (
        parse.next_bytes()?,
        parse.next_bytes()?,
        parse.next_bytes()?,
    );
    Ok(Plan {
        op: Op::HSet {
            key,
            pairs: vec![(field, value)],
            if_absent: true,
        },
        reply: WriteReply::Integer,
    })
}

pub(super) fn hdel(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let mut fields = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        fields.push(parse.next_bytes()?);
    }
    Ok(Plan {
        op: Op::HDel { key, fields },
        reply: WriteReply::Integer,
    })
}

pub(super) fn hincrby(parse: &mut Parse) -> Result<Plan, CommandError> {
    let (key, field, delta) = (parse.next_bytes()?, parse.next_bytes()?, parse.next_i64()?);
    Ok(Plan {
        op: Op::HIncrBy { key, field, delta },
        reply: WriteReply::Integer,
    })
}

pub(super) fn hincrbyfloat(parse: &mut Parse) -> Result<Plan, CommandError> {
    let (key, field, increment) = (
        parse.next_bytes()?,
        parse.next_bytes()?,
        parse.next_bytes()?,
    );
    // Redis checks the increment before the key: not a number, then not finite.
    match LongDouble::parse(&increment) {
        None => return Err(CommandError::Reply("ERR value is not a valid float".into())),
        Some(LongDouble::Infinite { .. }) => {
            return Err(CommandError::Reply("ERR value is NaN or Infinity".into()))
        }
        Some(_) => {}
    }
    Ok(Plan {
        op: Op::HIncrByFloat {
            key,
            field,
            increment,
        },
        reply: WriteReply::Value,
    })
}

/// A hash read, planned: what to answer from the key's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HashRead {
    Get(Bytes),
    MGet(Vec<Bytes>),
    GetAll,
    Exists(Bytes),
    Len,
    Keys,
    Vals,
    StrLen(Bytes),
    Scan {
        cursor: u64,
        pattern: Option<Bytes>,
        count: usize,
        /// The options' error, answered only once the key is found to be a hash: Redis looks
        /// the key up (absent: an empty page; a string: WRONGTYPE) before it parses them.
        refused: Option<String>,
    },
    RandField {
        count: Option<i64>,
        with_values: bool,
    },
}

/// The route's placeholder for each hash read, filled in by [`plan`].
pub(crate) fn shape(name: &str) -> Option<HashRead> {
    Some(match name {
        "hget" => HashRead::Get(Bytes::new()),
        "hmget" => HashRead::MGet(Vec::new()),
        "hgetall" => HashRead::GetAll,
        "hexists" => HashRead::Exists(Bytes::new()),
        "hlen" => HashRead::Len,
        "hkeys" => HashRead::Keys,
        "hvals" => HashRead::Vals,
        "hstrlen" => HashRead::StrLen(Bytes::new()),
        "hscan" => HashRead::Scan {
            cursor: 0,
            pattern: None,
            count: 0,
            refused: None,
        },
        "hrandfield" => HashRead::RandField {
            count: None,
            with_values: false,
        },
        _ => return None,
    })
}

/// Plans the hash read of shape `shape` from its arguments (the key first).
pub(crate) fn plan(
    shape: &HashRead,
    parse: &mut Parse,
) -> Result<(ReadOp, HashRead), CommandError> {
    let key = parse.next_bytes()?;
    let read = match shape {
        HashRead::Get(_) => HashRead::Get(parse.next_bytes()?),
        HashRead::Exists(_) => HashRead::Exists(parse.next_bytes()?),
        HashRead::StrLen(_) => HashRead::StrLen(parse.next_bytes()?),
        HashRead::MGet(_) => {
            let mut fields = Vec::with_capacity(parse.remaining());
            while parse.remaining() > 0 {
                fields.push(parse.next_bytes()?);
            }
            HashRead::MGet(fields)
        }
        HashRead::Scan { .. } => scan_args(parse)?,
        HashRead::RandField { .. } => {
            let count = match parse.remaining() {
                0 => None,
                _ => Some(parse.next_i64()?),
            };
            // Redis takes a count in [-LONG_MAX, LONG_MAX] before it looks at the rest, and
            // with values half that, so the reply's length cannot overflow.
            if count == Some(i64::MIN) {
                return Err(CommandError::Reply(format!(
                    "ERR value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            let with_values = match parse.remaining() {
                0 => false,
                1 if parse.peek_upper().as_deref() == Some("WITHVALUES") => {
                    parse.next_bytes()?;
                    true
                }
                _ => return Err(ParseError::Syntax.into()),
            };
            if with_values && count.is_some_and(|n| n.unsigned_abs() > (i64::MAX / 2) as u64) {
                return Err(CommandError::Reply("ERR value is out of range".into()));
            }
            HashRead::RandField { count, with_values }
        }
        other => other.clone(),
    };
    Ok((ReadOp::Typed { keys: vec![key] }, read))
}

/// HSCAN's cursor and options, as SCAN parses them (`keys.rs`), without TYPE. A bad cursor is
/// refused at once; a bad option only once the key is found (Redis's `hscanCommand`).
fn scan_args(parse: &mut Parse) -> Result<HashRead, CommandError> {
    let cursor = keys::scan_cursor(parse)?;
    Ok(match keys::scan_options(parse, false) {
        Ok(args) => HashRead::Scan {
            cursor,
            pattern: args.pattern,
            count: args.count,
            refused: None,
        },
        Err(e) => HashRead::Scan {
            cursor,
            pattern: None,
            count: 0,
            refused: Some(e.to_string()),
        },
    })
}

/// Returns the hash a hash read sees: an absent key is empty, a string is WRONGTYPE.
fn hash_of(value: Option<Stored>) -> Result<Hash, CommandError> {
    match value {
        None => Ok(Hash::new()),
        Some(Stored::Hash(h)) => Ok(h),
        Some(Stored::String(_)) => Err(CommandError::Reply(
            "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
        )),
    }
}

impl HashRead {
    /// Whether the reply to `value` visits more than [`DETACH_ABOVE_ITEMS`] fields, so that it
    /// is built off the session's thread (LongReadsOffRaft, `raft/store_view.rs`).
    pub fn is_long(&self, value: Option<&Stored>) -> bool {
        let Some(Stored::Hash(hash)) = value else {
            return false;
        };
        let large = hash.len() > DETACH_ABOVE_ITEMS;
        match self {
            HashRead::GetAll | HashRead::Keys | HashRead::Vals => large,
            HashRead::Scan { count, .. } => large && *count > DETACH_ABOVE_ITEMS,
            HashRead::RandField {
                count: Some(count), ..
            } => large && count.unsigned_abs() > DETACH_ABOVE_ITEMS as u64,
            _ => false,
        }
    }

    /// The reply to what the key holds.
    pub fn frame(&self, value: Option<Stored>) -> CommandResult {
        let hash = hash_of(value)?;
        // Checks Redis makes only once it has found a hash (an absent key answers empty).
        if !hash.is_empty() {
            match self {
                HashRead::Scan {
                    refused: Some(e), ..
                } => return Err(CommandError::Reply(e.clone())),
                // RepliesBounded: Redis streams a repeated pick and stops when the client
                // overruns its output buffer; redraft builds a reply whole, so it refuses a
                // repeat count it could not hold instead of allocating for it.
                HashRead::RandField { count: Some(n), .. } if *n < -RANDFIELD_MAX_REPEATS => {
                    return Err(CommandError::Reply(format!(
                        "ERR HRANDFIELD count is out of range, a negative count must be at least \
                         -{RANDFIELD_MAX_REPEATS}"
                    )))
                }
                _ => {}
            }
        }
        let bulk_or_nil = |v: Option<&Bytes>| v.cloned().map_or(Frame::Null, Frame::Bulk);
        Ok(match self {
            HashRead::Get(field) => bulk_or_nil(hash.get(field)),
            HashRead::MGet(fields) => {
                Frame::Array(fields.iter().map(|f| bulk_or_nil(hash.get(f))).collect())
            }
            HashRead::GetAll => Frame::Map(
                hash.iter()
                    .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                    .collect(),
            ),
            HashRead::Exists(field) => Frame::Integer(i64::from(hash.contains_key(field))),
            HashRead::Len => Frame::Integer(hash.len() as i64),
            HashRead::Keys => Frame::Array(hash.keys().cloned().map(Frame::Bulk).collect()),
            HashRead::Vals => Frame::Array(hash.values().cloned().map(Frame::Bulk).collect()),
            HashRead::StrLen(field) => {
                Frame::Integer(hash.get(field).map_or(0, |v| v.len() as i64))
            }
            HashRead::Scan {
                cursor,
                pattern,
                count,
                ..
            } => scan(&hash, *cursor, pattern.as_ref(), *count),
            HashRead::RandField { count, with_values } => {
                rand_field(&hash, *count, *with_values, &mut rand::thread_rng())
            }
        })
    }
}

/// One HSCAN page (see the module doc).
fn scan(hash: &Hash, cursor: u64, pattern: Option<&Bytes>, count: usize) -> Frame {
    let mut page: Vec<(&Bytes, &Bytes)>;
    let next;
    if hash.len() <= HSCAN_WHOLE {
        page = hash.iter().collect();
        next = 0;
    } else {
        let mut order: Vec<(u64, &Bytes, &Bytes)> = hash
            .iter()
            .map(|(f, v)| (scan_hash(f), f, v))
            .filter(|(h, _, _)| *h >= cursor)
            .collect();
        order.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        // A page never splits the fields of one hash value.
        let mut end = count.min(order.len());
        while end < order.len() && end > 0 && order[end].0 == order[end - 1].0 {
            end += 1;
        }
        next = order.get(end).map_or(0, |(h, _, _)| *h);
        page = order[..end].iter().map(|(_, f, v)| (*f, *v)).collect();
    }
    if let Some(p) = pattern {
        page.retain(|(f, _)| glob::matches(p, f));
    }
    let items = page
        .into_iter()
        .flat_map(|(f, v)| [Frame::Bulk(f.clone()), Frame::Bulk(v.clone())])
        .collect();
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(items),
    ])
}

/// The most fields one HRANDFIELD with a negative count (picks that may repeat) returns.
pub(crate) const RANDFIELD_MAX_REPEATS: i64 = 1 << 20;

/// HRANDFIELD (Redis's `hrandfieldWithCountCommand`): no count, one field or nil; a positive
/// count, that many distinct fields at most; a negative one, exactly -count, maybe repeated.
/// With values, RESP3 pairs each field with its value, RESP2 flattens them.
fn rand_field(hash: &Hash, count: Option<i64>, with_values: bool, rng: &mut impl Rng) -> Frame {
    let entries: Vec<(&Bytes, &Bytes)> = hash.iter().collect();
    let Some(count) = count else {
        return match entries.is_empty() {
            true => Frame::Null,
            false => Frame::Bulk(entries[rng.gen_range(0..entries.len())].0.clone()),
        };
    };
    if entries.is_empty() || count == 0 {
        return Frame::Array(Vec::new());
    }
    let picked: Vec<(&Bytes, &Bytes)> = if count < 0 {
        (0..count.unsigned_abs())
            .map(|_| entries[rng.gen_range(0..entries.len())])
            .collect()
    } else {
        let n = (count as u64).min(entries.len() as u64) as usize;
        let mut all = entries;
        all.shuffle(rng);
        all.truncate(n);
        all
    };
    if with_values {
        Frame::Pairs(
            picked
                .into_iter()
                .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                .collect(),
        )
    } else {
        Frame::Array(
            picked
                .into_iter()
                .map(|(f, _)| Frame::Bulk(f.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn hash(n: usize) -> Hash {
        (0..n)
            .map(|i| (Bytes::from(format!("f{i}")), Bytes::from(format!("v{i}"))))
            .collect()
    }

    /// LongReadsOffRaft: the whole of a hash past the threshold, and a page or sample larger
    /// than it, are built off the session's thread; everything else inline.
    #[test]
    fn only_reads_over_many_fields_are_long() {
        let big = Some(Stored::Hash(hash(DETACH_ABOVE_ITEMS + 1)));
        let edge = Some(Stored::Hash(hash(DETACH_ABOVE_ITEMS)));
        let string = Some(Stored::String(Bytes::from_static(b"v")));
        let scan = |count| HashRead::Scan {
            cursor: 0,
            pattern: None,
            count,
            refused: None,
        };
        let rand = |count| HashRead::RandField {
            count: Some(count),
            with_values: false,
        };
        for read in [HashRead::GetAll, HashRead::Keys, HashRead::Vals] {
            assert!(read.is_long(big.as_ref()), "{read:?}");
            assert!(!read.is_long(edge.as_ref()), "{read:?}");
            assert!(!read.is_long(string.as_ref()), "{read:?}");
            assert!(!read.is_long(None), "{read:?}");
        }
        assert!(scan(DETACH_ABOVE_ITEMS + 1).is_long(big.as_ref()));
        assert!(!scan(10).is_long(big.as_ref()));
        assert!(rand(-(DETACH_ABOVE_ITEMS as i64) - 1).is_long(big.as_ref()));
        assert!(!rand(5).is_long(big.as_ref()));
        for read in [
            HashRead::Get(Bytes::from_static(b"f1")),
            HashRead::Len,
            HashRead::Exists(Bytes::from_static(b"f1")),
        ] {
            assert!(!read.is_long(big.as_ref()), "{read:?}");
        }
    }

    fn fields_of(frame: &Frame) -> (u64, Vec<Bytes>) {
        let Frame::Array(parts) = frame else {
            panic!("{frame:?}")
        };
        let (Frame::Bulk(c), Frame::Array(items)) = (&parts[0], &parts[1]) else {
            panic!("{frame:?}")
        };
        let cursor = std::str::from_utf8(c).unwrap().parse().unwrap();
        let fields = items
            .chunks(2)
            .map(|p| match &p[0] {
                Frame::Bulk(f) => f.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        (cursor, fields)
    }

    fn plan_rand(args: &str) -> Result<HashRead, String> {
        let argv = std::iter::once("HRANDFIELD")
            .chain(args.split(' '))
            .map(|a| Bytes::from(a.to_string()))
            .collect();
        let shape = shape("hrandfield").unwrap();
        plan(&shape, &mut Parse::new(argv))
            .map(|(_, read)| read)
            .map_err(|e| match e {
                CommandError::Reply(text) => text,
                other => format!("{other:?}"),
            })
    }

    /// The fuzz found it: `HRANDFIELD k -9223372036854775807` asked for a reply of 2^63 fields
    /// and the node aborted on "capacity overflow" building it.
    #[test]
    fn hrandfield_refuses_a_repeat_count_it_could_not_hold() {
        let read = plan_rand("k -9223372036854775807").unwrap();
        let err = read.frame(Some(Stored::Hash(hash(3)))).unwrap_err();
        assert!(
            err.to_string().contains("HRANDFIELD count is out of range"),
            "{err}"
        );
        // The bound is checked where Redis would start picking: an absent key is empty.
        assert_eq!(read.frame(None).unwrap(), Frame::Array(Vec::new()));
        let limit = format!("k -{RANDFIELD_MAX_REPEATS}");
        let read = plan_rand(&limit).unwrap();
        assert!(read.frame(Some(Stored::Hash(hash(3)))).is_ok());
        let picked = rand_field(
            &hash(3),
            Some(-RANDFIELD_MAX_REPEATS),
            false,
            &mut rand::rngs::StdRng::seed_from_u64(1),
        );
        let Frame::Array(items) = picked else {
            panic!("{picked:?}")
        };
        assert_eq!(items.len() as i64, RANDFIELD_MAX_REPEATS);
        // Redis's own bounds stay as they are.
        assert_eq!(
            plan_rand("k -9223372036854775808").unwrap_err(),
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807"
        );
        assert_eq!(
            plan_rand("k 9223372036854775807 WITHVALUES").unwrap_err(),
            "ERR value is out of range"
        );
        assert!(plan_rand("k 9223372036854775807").is_ok());
    }

    #[test]
    fn hscan_of_a_large_hash_returns_every_field_once_while_it_changes() {
        let mut h = hash(1000);
        let mut seen = std::collections::BTreeMap::new();
        let mut cursor = 0;
        let mut pages = 0;
        loop {
            let (next, fields) = fields_of(&scan(&h, cursor, None, 10));
            for f in fields {
                *seen.entry(f).or_insert(0) += 1;
            }
            pages += 1;
            // Fields added and removed meanwhile must not disturb the ones that stay.
            h.insert(Bytes::from(format!("new{pages}")), Bytes::from_static(b"x"));
            h.remove(&Bytes::from(format!("f{}", 999 - pages)));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(pages > 50, "{pages} pages for 1000 fields at COUNT 10");
        for i in 0..(999 - pages) {
            let f = Bytes::from(format!("f{i}"));
            assert_eq!(seen.get(&f), Some(&1), "{f:?}");
        }
        assert!(seen.values().all(|&n| n == 1), "a field returned twice");
    }

    #[test]
    fn hscan_of_a_small_hash_is_one_page() {
        let (next, fields) = fields_of(&scan(&hash(5), 0, None, 1));
        assert_eq!(next, 0);
        assert_eq!(fields.len(), 5);
        let pattern = Bytes::from_static(b"f[13]");
        let (_, fields) = fields_of(&scan(&hash(5), 0, Some(&pattern), 10));
        assert_eq!(fields, vec![Bytes::from("f1"), Bytes::from("f3")]);
    }

    #[test]
    fn hrandfield_counts_as_redis() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let h = hash(5);
        let len = |f: Frame| match f {
            Frame::Array(items) => items.len(),
            Frame::Pairs(items) => items.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(len(rand_field(&h, Some(3), false, &mut rng)), 3);
        assert_eq!(len(rand_field(&h, Some(50), false, &mut rng)), 5);
        assert_eq!(len(rand_field(&h, Some(-50), false, &mut rng)), 50);
        assert_eq!(len(rand_field(&h, Some(0), false, &mut rng)), 0);
        assert_eq!(len(rand_field(&Hash::new(), Some(-3), true, &mut rng)), 0);
        assert_eq!(rand_field(&Hash::new(), None, false, &mut rng), Frame::Null);
        let Frame::Array(distinct) = rand_field(&h, Some(5), false, &mut rng) else {
            panic!()
        };
        let set: std::collections::BTreeSet<_> =
            distinct.iter().map(|f| format!("{f:?}")).collect();
        assert_eq!(set.len(), 5, "a positive count repeats no field");
    }
}
