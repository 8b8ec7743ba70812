//! A bound on how deep the store's recursive types nest when decoded (**DecodeDepthBound**).
//!
//! [`Op`](super::Op) nests through transactions, batches and its `AsUser`/`Authored` wrappers,
//! [`Response`](super::Response) through transactions and batches, and
//! [`ScriptValue`](super::ScriptValue) through arrays. postcard follows such nesting as deep as
//! the input goes, one stack frame per level, so a log record or a peer frame nested 100,000
//! deep (a bug's, or a peer's with the cluster secret) would overflow the decoding thread's
//! stack: an abort, on every node that reads it. Every recursive field decodes through
//! [`nested`] (replies) or [`nested_request`] (requests), which count the levels on this thread
//! and refuse the input past [`MAX_DECODE_DEPTH`] or [`MAX_REQUEST_DEPTH`], above anything
//! redraft builds (a script's reply nests at most 500 levels: ReplyDepthBound,
//! `commands/lua/engine.rs`; a request a few) and within a 2 MiB stack in a debug build.
//! The encoding is unchanged.

use std::cell::Cell;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// The most levels of recursive fields one decode may enter: a script's reply nests up to
/// 500 arrays, inside a response or two.
pub const MAX_DECODE_DEPTH: usize = 600;

/// The most levels a request may nest: a few are real (an authored, per-user transaction in a
/// batch); each level of [`Op`](super::Op) takes kilobytes of stack to decode in a debug build.
pub const MAX_REQUEST_DEPTH: usize = 32;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// One level entered; leaving it (also by an error or an unwind) counts it off.
struct Level;

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Decodes one recursive field of a reply, one level deeper (for
/// `#[serde(deserialize_with)]`), refused past [`MAX_DECODE_DEPTH`].
pub(super) fn nested<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    nested_within(d, MAX_DECODE_DEPTH)
}

/// [`nested`] for a request's recursive fields, refused past [`MAX_REQUEST_DEPTH`].
pub(super) fn nested_request<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    nested_within(d, MAX_REQUEST_DEPTH)
}

fn nested_within<'de, D, T>(d: D, max: usize) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let depth = DEPTH.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let _level = Level;
    if depth > max {
        return Err(D::Error::custom(format!(
            "nested more than {max} levels deep"
        )));
    }
    T::deserialize(d)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{Op, Request, Response, ScriptValue};

    /// `times` copies of `prefix`, then `inner`: `prefix` is what one level adds in front.
    fn nest(prefix: &[u8], times: usize, inner: &[u8]) -> Vec<u8> {
        let mut b = prefix.repeat(times);
        b.extend_from_slice(inner);
        b
    }

    /// The bytes one level of `wrap` puts before its inner value's.
    fn prefix_of<T: serde::Serialize>(inner: &T, wrapped: &T) -> Vec<u8> {
        let (i, w) = (
            postcard::to_allocvec(inner).unwrap(),
            postcard::to_allocvec(wrapped).unwrap(),
        );
        assert!(w.ends_with(&i), "the inner value is not last");
        w[..w.len() - i.len()].to_vec()
    }

    /// Input nested 100,000 deep is refused on a thread with a small stack instead of
    /// overflowing it; input at the bound decodes.
    #[test]
    fn deep_input_is_refused_and_input_within_the_bound_decodes() {
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let blank = Op::Compact { revision: 0 };
                let authored = Op::Authored {
                    author: Bytes::new(),
                    op: Box::new(blank.clone()),
                };
                let op_prefix = prefix_of(&blank, &authored);
                let inner = postcard::to_allocvec(&blank).unwrap();
                let deep = nest(&op_prefix, 100_000, &inner);
                let err = postcard::from_bytes::<Op>(&deep).unwrap_err();
                assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
                let within = nest(&op_prefix, MAX_REQUEST_DEPTH, &inner);
                assert!(postcard::from_bytes::<Op>(&within).is_ok());
                // A request carrying it, as a log entry or a forwarded write does.
                let req = postcard::to_allocvec(&Request::new(None, blank.clone())).unwrap();
                // No client (one byte), the op, `at_ms` 0 (one byte).
                assert_eq!(&req[1..req.len() - 1], &inner[..]);
                let mut deep_req = req[..1].to_vec();
                deep_req.extend_from_slice(&deep);
                deep_req.extend_from_slice(&req[req.len() - 1..]);
                assert!(postcard::from_bytes::<Request>(&deep_req).is_err());

                let leaf = ScriptValue::Nil;
                let array = ScriptValue::Array(vec![leaf.clone()]);
                let sv_prefix = prefix_of(&leaf, &array);
                let leaf_bytes = postcard::to_allocvec(&leaf).unwrap();
                let deep = nest(&sv_prefix, 100_000, &leaf_bytes);
                assert!(postcard::from_bytes::<ScriptValue>(&deep).is_err());
                let within = nest(&sv_prefix, MAX_DECODE_DEPTH, &leaf_bytes);
                assert!(postcard::from_bytes::<ScriptValue>(&within).is_ok());

                let leaf = Response::Noop { revision: 1 };
                let batch = Response::Batch(vec![leaf.clone()]);
                let r_prefix = prefix_of(&leaf, &batch);
                let leaf_bytes = postcard::to_allocvec(&leaf).unwrap();
                let deep = nest(&r_prefix, 100_000, &leaf_bytes);
                assert!(postcard::from_bytes::<Response>(&deep).is_err());
                let within = nest(&r_prefix, MAX_DECODE_DEPTH, &leaf_bytes);
                assert!(postcard::from_bytes::<Response>(&within).is_ok());

                // The count is back at zero after refusals.
                assert_eq!(DEPTH.with(Cell::get), 0);
            })
            .unwrap();
        worker.join().expect("the decoding thread's stack held");
    }
}
