//! Gray (canary) releases: a candidate value staged for a key that only the clients of one
//! label read, then promoted (it becomes the value for everyone) or aborted.
//!
//! A candidate is an ordinary key, `__gray__/<label>/<key>` ([`GRAY_PREFIX`]): staging writes
//! it, aborting deletes it, promoting is a `RENAME` of it onto `<key>` (one entry, one
//! revision: the candidate's key deleted and `<key>` written together). So every step is a
//! revision with a history, replicated and in snapshots, and the candidate is checked against
//! the schemas of `<key>` (`schema.rs`).
//!
//! - **GrayReadOneRevision.** A labelled client's `GET`/`MGET` reads each key's candidate if
//!   one is staged for its label, else the key, both from the same state
//!   ([`Store::read_gray`]): it sees the candidate until the promote and the promoted value
//!   (the same bytes) after it, never the old value in between; every other client never
//!   sees a candidate before its promote.

use bytes::Bytes;

use super::{ReadOp, Response, Store};

/// Where candidates live: the candidate of `key` for `label` is `__gray__/<label>/<key>`.
pub const GRAY_PREFIX: &[u8] = b"__gray__/";

/// The key holding the candidate of `key` for `label`.
pub fn gray_key(label: &[u8], key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(GRAY_PREFIX.len() + label.len() + 1 + key.len());
    k.extend_from_slice(GRAY_PREFIX);
    k.extend_from_slice(label);
    k.push(b'/');
    k.extend_from_slice(key);
    Bytes::from(k)
}

/// The label and key a candidate's key stands for, if `key` is one (the label ends at the
/// first `/`).
pub fn gray_parts(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = key.strip_prefix(GRAY_PREFIX)?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    Some((&rest[..slash], &rest[slash + 1..]))
}

impl Store {
    /// A read as the clients of `label` see it (GrayReadOneRevision): each key of a `GET`,
    /// `MGET` or typed read is read from its candidate when one is staged.
    pub fn read_gray(&self, label: &[u8], read: &ReadOp) -> Response {
        let swap = |keys: &[Bytes]| -> Vec<Bytes> {
            keys.iter()
                .map(|k| {
                    let g = gray_key(label, k);
                    if self.keyspace.is_live(&g) {
                        g
                    } else {
                        k.clone()
                    }
                })
                .collect()
        };
        match read {
            ReadOp::Get { keys } => self.read(&ReadOp::Get { keys: swap(keys) }),
            ReadOp::Typed { keys } => self.read(&ReadOp::Typed { keys: swap(keys) }),
            other => self.read(other),
        }
    }

    /// Every staged candidate: (label, key, value), in key order.
    pub fn staged(&self) -> Vec<(Bytes, Bytes, Bytes)> {
        self.keyspace
            .live_with_prefix(GRAY_PREFIX)
            .into_iter()
            .filter_map(|kv| {
                let (label, key) = gray_parts(&kv.key)?;
                Some((
                    Bytes::copy_from_slice(label),
                    Bytes::copy_from_slice(key),
                    kv.value,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{b, must_apply, put};
    use super::super::Op;
    use super::*;

    fn get(s: &Store, label: Option<&str>, key: &str) -> Option<Bytes> {
        let read = ReadOp::Get { keys: vec![b(key)] };
        let r = match label {
            Some(l) => s.read_gray(l.as_bytes(), &read),
            None => s.read(&read),
        };
        match r {
            Response::Values { mut values, .. } => values.pop().flatten(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_label_reads_a_candidate_until_it_is_promoted() {
        let mut s = Store::new();
        must_apply(&mut s, put("cfg/x", "old"));
        must_apply(&mut s, put("__gray__/canary/cfg/x", "new"));
        assert_eq!(get(&s, Some("canary"), "cfg/x"), Some(b("new")));
        assert_eq!(get(&s, Some("other"), "cfg/x"), Some(b("old")));
        assert_eq!(get(&s, None, "cfg/x"), Some(b("old")));
        assert_eq!(s.staged(), vec![(b("canary"), b("cfg/x"), b("new"))]);
        let before = s.revision();
        let promote = Op::Rename {
            src: b("__gray__/canary/cfg/x"),
            dst: b("cfg/x"),
            if_absent: false,
        };
        must_apply(&mut s, promote);
        assert_eq!(s.revision(), before + 1, "one revision");
        assert_eq!(get(&s, None, "cfg/x"), Some(b("new")));
        assert_eq!(get(&s, Some("canary"), "cfg/x"), Some(b("new")));
        assert!(s.staged().is_empty());
        assert_eq!(
            gray_parts(b"__gray__/l/a/b"),
            Some((&b"l"[..], &b"a/b"[..]))
        );
        assert_eq!(gray_parts(b"__gray__/nolabel"), None);
        assert_eq!(gray_parts(b"cfg/x"), None);
    }

    #[test]
    fn a_hash_candidate_is_read_by_the_labels_hash_reads() {
        let hset = |key: &str, pairs: &[(&str, &str)]| Op::HSet {
            key: b(key),
            pairs: pairs.iter().map(|(f, v)| (b(f), b(v))).collect(),
            if_absent: false,
        };
        let mut s = Store::new();
        must_apply(&mut s, hset("cfg", &[("a", "1"), ("b", "2")]));
        must_apply(
            &mut s,
            hset("__gray__/canary/cfg", &[("a", "9"), ("b", "2")]),
        );
        let field_a = |s: &Store, label: Option<&str>| {
            let read = ReadOp::Typed {
                keys: vec![b("cfg")],
            };
            let r = match label {
                Some(l) => s.read_gray(l.as_bytes(), &read),
                None => s.read(&read),
            };
            let Response::Stored { mut values, .. } = r else {
                panic!("{r:?}")
            };
            match values.pop().flatten() {
                Some(super::super::Stored::Hash(h)) => h.get(&b("a")).cloned(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(field_a(&s, Some("canary")), Some(b("9")));
        assert_eq!(field_a(&s, None), Some(b("1")));
        must_apply(
            &mut s,
            Op::Rename {
                src: b("__gray__/canary/cfg"),
                dst: b("cfg"),
                if_absent: false,
            },
        );
        assert_eq!(field_a(&s, None), Some(b("9")), "promoted");
    }

    #[test]
    fn a_candidate_is_checked_against_the_schemas_of_its_key() {
        let mut s = Store::new();
        must_apply(
            &mut s,
            put("__schema__/cfg/", r#"{"type": "integer", "maximum": 10}"#),
        );
        let r = must_apply(&mut s, put("__gray__/canary/cfg/x", "11"));
        let Response::Error(e) = r else {
            panic!("{r:?}")
        };
        assert!(e.to_string().contains("schema of 'cfg/'"), "{e}");
        must_apply(&mut s, put("__gray__/canary/cfg/x", "9"));
    }
}
