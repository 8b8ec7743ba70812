//! Hashes in the store (`hash.rs`): each write one revision of its key with the whole hash,
//! no revision for a write that changes nothing, WRONGTYPE before any change, the last field's
//! HDEL a delete, TTLs kept, history, rollback, rename and snapshots of hashes, Redis's
//! notices, and snapshots written before hashes existed still decode.

use bytes::Bytes;

use super::test_util::{b, must_apply};
use super::*;

fn hset(key: &str, pairs: &[(&str, &str)]) -> Op {
    Op::HSet {
        key: b(key),
        pairs: pairs.iter().map(|(f, v)| (b(f), b(v))).collect(),
        if_absent: false,
    }
}

fn hdel(key: &str, fields: &[&str]) -> Op {
    Op::HDel {
        key: b(key),
        fields: fields.iter().map(|f| b(f)).collect(),
    }
}

fn fields(store: &Store, key: &str) -> Option<Vec<(String, String)>> {
    let kv = store.get(key.as_bytes())?;
    let hash = kv.hash.expect("a hash");
    Some(
        hash.iter()
            .map(|(f, v)| {
                let s = |x: &Bytes| String::from_utf8(x.to_vec()).unwrap();
                (s(f), s(v))
            })
            .collect(),
    )
}

fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        p.iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect(),
    )
}

fn integer(value: i64, revision: u64) -> Response {
    Response::Integer { value, revision }
}

#[test]
fn each_hash_write_is_one_revision_of_its_key() {
    let mut s = Store::new();
    assert_eq!(
        must_apply(&mut s, hset("h", &[("a", "1"), ("b", "2")])),
        integer(2, 1)
    );
    assert_eq!(
        must_apply(&mut s, hset("h", &[("a", "9"), ("c", "3")])),
        integer(1, 2)
    );
    assert_eq!(
        fields(&s, "h"),
        pairs(&[("a", "9"), ("b", "2"), ("c", "3")])
    );
    let kv = s.get(b"h").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (1, 2, 2));
    // A write of the same value is still a write (a put always changes state).
    assert_eq!(must_apply(&mut s, hset("h", &[("a", "9")])), integer(0, 3));
    // HSETNX on an existing field, HDEL of absent fields: nothing changes, no revision.
    let nx = Op::HSet {
        key: b("h"),
        pairs: vec![(b("a"), b("x"))],
        if_absent: true,
    };
    assert_eq!(must_apply(&mut s, nx), integer(0, 3));
    assert_eq!(must_apply(&mut s, hdel("h", &["zz"])), integer(0, 3));
    assert_eq!(
        must_apply(&mut s, hdel("h", &["a", "b", "a"])),
        integer(2, 4)
    );
    assert_eq!(fields(&s, "h"), pairs(&[("c", "3")]));
}

#[test]
fn the_last_field_deleted_deletes_the_key_and_its_deadline() {
    let mut s = Store::new();
    must_apply(&mut s, hset("h", &[("a", "1")]));
    let expire = Op::Expire {
        key: b("h"),
        expiry: Expiry::At(5_000),
        cond: ExpireCond::default(),
        now_ms: 10,
    };
    must_apply(&mut s, expire);
    must_apply(&mut s, hset("h", &[("b", "2")]));
    assert_eq!(s.deadline(b"h"), Some(5_000), "a field write keeps the TTL");
    assert_eq!(fields(&s, "h"), pairs(&[("a", "1"), ("b", "2")]));
    let (response, applied) = s.apply_notified(&Request {
        client: None,
        op: hdel("h", &["a", "b"]),
        at_ms: 0,
    });
    assert_eq!(response, integer(2, 4));
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].kind, EventKind::Delete);
    let names: Vec<_> = applied.notices.iter().map(|n| n.event).collect();
    assert_eq!(names, ["hdel", "del"], "Redis's notices for the last field");
    assert_eq!(s.get(b"h"), None);
    assert_eq!(s.deadline(b"h"), None);
    assert_eq!(s.len(), 0);
}

#[test]
fn wrong_types_are_refused_before_any_change() {
    let mut s = Store::new();
    must_apply(&mut s, test_util::put("s", "v"));
    must_apply(&mut s, hset("h", &[("f", "1")]));
    let wrong = Response::Error(StoreError::WrongType);
    for op in [
        hset("s", &[("f", "v")]),
        hdel("s", &["f"]),
        Op::HIncrBy {
            key: b("s"),
            field: b("f"),
            delta: 1,
        },
        Op::HIncrByFloat {
            key: b("s"),
            field: b("f"),
            increment: b("1"),
        },
        test_util::incr("h"),
        Op::Append {
            key: b("h"),
            value: b("x"),
        },
        Op::GetDel { key: b("h") },
        Op::Set {
            key: b("h"),
            value: b("x"),
            when: SetWhen::Always,
            get: true,
        },
    ] {
        assert_eq!(must_apply(&mut s, op.clone()), wrong, "{op:?}");
    }
    assert_eq!(s.revision(), 2, "no refused op made a revision");
    // SET without GET replaces a hash, as in Redis.
    must_apply(&mut s, test_util::put("h", "plain"));
    assert_eq!(
        s.get(b"h").map(|kv| (kv.value.clone(), kv.is_hash())),
        Some((b("plain"), false))
    );
}

#[test]
fn hincrby_and_hincrbyfloat_as_redis() {
    let mut s = Store::new();
    let incr = |delta| Op::HIncrBy {
        key: b("h"),
        field: b("n"),
        delta,
    };
    assert_eq!(must_apply(&mut s, incr(5)), integer(5, 1));
    assert_eq!(must_apply(&mut s, incr(-7)), integer(-2, 2));
    must_apply(&mut s, hset("h", &[("n", "9223372036854775807")]));
    assert_eq!(
        must_apply(&mut s, incr(1)),
        Response::Error(StoreError::Overflow)
    );
    must_apply(&mut s, hset("h", &[("t", "abc")]));
    let on_text = Op::HIncrBy {
        key: b("h"),
        field: b("t"),
        delta: 1,
    };
    assert_eq!(
        must_apply(&mut s, on_text),
        Response::Error(StoreError::HashNotInteger)
    );
    let float = |field: &str, increment: &str| Op::HIncrByFloat {
        key: b("h"),
        field: b(field),
        increment: b(increment),
    };
    assert_eq!(
        must_apply(&mut s, float("f", "10.5")),
        Response::Value {
            value: Some(b("10.5")),
            revision: 5
        }
    );
    let answers = |r| match r {
        Response::Value { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        answers(must_apply(&mut s, float("f", "0.1"))),
        Some(b("10.6"))
    );
    assert_eq!(
        must_apply(&mut s, float("t", "1")),
        Response::Error(StoreError::HashNotFloat)
    );
    assert_eq!(
        must_apply(&mut s, float("f", "inf")),
        Response::Error(StoreError::NotFiniteIncrement)
    );
}

#[test]
fn history_rollback_rename_and_expire_keep_hashes() {
    let mut s = Store::new();
    must_apply(&mut s, hset("h", &[("a", "1")])); // 1
    must_apply(&mut s, hset("h", &[("b", "2")])); // 2
    must_apply(&mut s, hdel("h", &["a"])); // 3
    let history = s.history(b"h", 0, 0, 10).unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|e| e.kv.hash.as_ref().map(|h| h.len()))
        .collect();
    assert_eq!(seen, [Some(1), Some(2), Some(1)]);
    assert_eq!(
        history[2]
            .prev
            .as_ref()
            .and_then(|p| p.hash.clone())
            .map(|h| h.len()),
        Some(2)
    );
    let at_2 = s.get_at(b"h", 2).unwrap().unwrap();
    assert_eq!(at_2.hash.map(|h| h.len()), Some(2));

    must_apply(
        &mut s,
        Op::Rollback {
            key: b("h"),
            revision: 2,
        },
    ); // 4
    assert_eq!(fields(&s, "h"), pairs(&[("a", "1"), ("b", "2")]));

    let rename = Op::Rename {
        src: b("h"),
        dst: b("moved"),
        if_absent: false,
    };
    must_apply(&mut s, rename); // 5
    assert_eq!(fields(&s, "moved"), pairs(&[("a", "1"), ("b", "2")]));
    let persist_after_expire = [
        Op::Expire {
            key: b("moved"),
            expiry: Expiry::At(9_000),
            cond: ExpireCond::default(),
            now_ms: 10,
        },
        Op::Persist { key: b("moved") },
    ];
    for op in persist_after_expire {
        must_apply(&mut s, op);
        assert_eq!(
            fields(&s, "moved"),
            pairs(&[("a", "1"), ("b", "2")]),
            "TTL ops re-put the hash"
        );
    }
}

#[test]
fn snapshots_keep_hashes_and_two_stores_agree() {
    let mut s = Store::new();
    must_apply(&mut s, hset("h", &[("b", "2"), ("a", "1")]));
    must_apply(&mut s, test_util::put("s", "v"));
    must_apply(&mut s, hset("h", &[("c", "3")]));
    let bytes = s.to_snapshot();
    let restored = Store::from_snapshot(&bytes).unwrap();
    assert_eq!(restored, s);
    assert_eq!(
        fields(&restored, "h"),
        pairs(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
    assert_eq!(
        restored.to_snapshot(),
        bytes,
        "fields encode in one order everywhere"
    );
    let read = restored.read(&ReadOp::Typed {
        keys: vec![b("h"), b("s"), b("none")],
    });
    let Response::Stored { values, .. } = read else {
        panic!("{read:?}")
    };
    let types: Vec<_> = values
        .iter()
        .map(|v| v.as_ref().map(Stored::type_name))
        .collect();
    assert_eq!(types, [Some("hash"), Some("string"), None]);
    let mget = restored.read(&ReadOp::Get {
        keys: vec![b("h"), b("s")],
    });
    assert_eq!(
        mget,
        Response::Values {
            values: vec![None, Some(b("v"))],
            revision: 3
        },
        "MGET reads a hash as nil"
    );
}

/// `Store::to_snapshot()` of `snapshot.rs`'s sample store plus one EXEC whose recorded answer
/// holds a `KeyValue` (a TTL-family read), written by the build before hashes existed.
const SNAPSHOT_BEFORE_HASHES: &str = "0206020300010500000005010161030100000131010103000001330102060000013301030162020200000132020104000102090709010600070b010a01010c010161013301060301d00f060600080800010161d00f";

#[test]
fn snapshots_written_before_hashes_decode_the_same() {
    let bytes: Vec<u8> = (0..SNAPSHOT_BEFORE_HASHES.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&SNAPSHOT_BEFORE_HASHES[i..i + 2], 16).unwrap())
        .collect();
    let store = Store::from_snapshot(&bytes).expect("an old snapshot decodes");
    assert_eq!(store.get(b"a").map(|kv| kv.value), Some(b("3")));
    assert_eq!(store.deadline(b"a"), Some(1_000));
    // Re-encoded as version 4: the same sections, then an empty script set and no users
    // (an empty map, version 0).
    let mut now = bytes.clone();
    now[0] = snapshot::SNAPSHOT_VERSION;
    now.extend([0, 0, 0, 0]);
    assert_eq!(store.to_snapshot(), now, "re-encoded to the same sections");
    assert!(store.scripts().is_empty());
}

/// 1,000 writes to one field each of a 10,000-field hash: the snapshot holds the first version
/// whole and then only the changes (HashDelta), not 10 million fields, and decodes to the same
/// store.
#[test]
fn a_large_hash_history_costs_its_changes_in_a_snapshot() {
    let mut s = Store::new();
    let all: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("field{i:05}"), format!("value{i:05}")))
        .collect();
    let refs: Vec<(&str, &str)> = all.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect();
    must_apply(&mut s, hset("big", &refs));
    let one_version = s.to_snapshot().len();
    for i in 0..1_000 {
        let field = format!("field{:05}", (i * 7) % 10_000);
        must_apply(&mut s, hset("big", &[(&field, &format!("new{i}"))]));
    }
    must_apply(&mut s, hdel("big", &["field00001", "field00002"]));
    let bytes = s.to_snapshot();
    eprintln!(
        "one version: {one_version} bytes; 1,001 more versions: {} bytes",
        bytes.len()
    );
    assert!(
        bytes.len() < one_version + 1_001 * 64,
        "snapshot of 1,001 versions is {} bytes, one version {one_version}",
        bytes.len()
    );
    let restored = Store::from_snapshot(&bytes).unwrap();
    assert_eq!(restored, s, "every version rebuilt from its changes");
    assert_eq!(
        restored.history(b"big", 0, 0, usize::MAX).unwrap().len(),
        1_002
    );
    assert_eq!(restored.to_snapshot(), bytes);
}

/// TouchedFields: every hash write path (HSET of new, changed and unchanged fields, a field
/// named twice, HSETNX that writes and one that does not, HDEL of present and absent fields,
/// HINCRBY, HINCRBYFLOAT, two writes to one hash in one EXEC, RENAME, a deadline change)
/// writes the same snapshot bytes from the named fields as a store rebuilt from that snapshot
/// (which has no names and diffs every version); a debug build also checks each version
/// against the diff as it encodes.
#[test]
fn named_fields_encode_every_hash_write_as_the_diff_does() {
    let mut s = Store::new();
    must_apply(&mut s, hset("h", &[("a", "1"), ("b", "2"), ("c", "3")]));
    must_apply(&mut s, hset("h", &[("a", "1"), ("b", "20"), ("d", "4")]));
    must_apply(&mut s, hset("h", &[("e", "5"), ("e", "6"), ("a", "1")]));
    must_apply(
        &mut s,
        Op::HSet {
            key: b("h"),
            pairs: vec![(b("f"), b("7"))],
            if_absent: true,
        },
    );
    must_apply(
        &mut s,
        Op::HSet {
            key: b("h"),
            pairs: vec![(b("f"), b("8"))],
            if_absent: true,
        },
    );
    must_apply(&mut s, hdel("h", &["c", "zz", "c"]));
    must_apply(
        &mut s,
        Op::HIncrBy {
            key: b("h"),
            field: b("n"),
            delta: 5,
        },
    );
    must_apply(
        &mut s,
        Op::HIncrByFloat {
            key: b("h"),
            field: b("x"),
            increment: b("1.5"),
        },
    );
    must_apply(
        &mut s,
        Op::Txn {
            compares: vec![],
            ops: vec![hset("h", &[("t", "1")]), hdel("h", &["a"])],
            now_ms: 0,
        },
    );
    must_apply(
        &mut s,
        Op::Rename {
            src: b("h"),
            dst: b("g"),
            if_absent: false,
        },
    );
    must_apply(&mut s, hset("g", &[("b", "21")]));
    must_apply(
        &mut s,
        Op::Expire {
            key: b("g"),
            expiry: Expiry::At(9_000_000_000_000),
            cond: ExpireCond::default(),
            now_ms: 0,
        },
    );
    must_apply(&mut s, hset("g", &[("b", "22"), ("new", "1")]));
    let bytes = s.to_snapshot();
    let restored = Store::from_snapshot(&bytes).unwrap();
    assert_eq!(restored, s);
    assert_eq!(
        restored.to_snapshot(),
        bytes,
        "diffed and named encodings differ"
    );
    assert_eq!(
        fields(&restored, "g"),
        pairs(&[
            ("b", "22"),
            ("d", "4"),
            ("e", "6"),
            ("f", "7"),
            ("n", "5"),
            ("new", "1"),
            ("t", "1"),
            ("x", "1.5")
        ])
    );
}
