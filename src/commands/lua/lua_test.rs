//! Scripts applied to a store through the Lua host: one revision per script, Redis's
//! conversions, the limits (an aborted script leaves the store exactly as before), and the
//! same result on two stores applying the same entries (DeterministicApply).

use bytes::Bytes;

use crate::store::{Op, Request, Response, ScriptValue, Store};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn script(body: &str, keys: &[&str], args: &[&str]) -> Op {
    Op::Script {
        body: b(body),
        keys: keys.iter().map(|k| b(k)).collect(),
        args: args.iter().map(|a| b(a)).collect(),
        now_ms: 1_000,
    }
}

fn apply(store: &mut Store, op: Op) -> Response {
    super::install();
    store.apply(&Request::new(None, op)).0
}

fn value(r: Response) -> ScriptValue {
    match r {
        Response::Script { value, .. } => value,
        other => panic!("not a script reply: {other:?}"),
    }
}

#[test]
fn a_script_is_one_revision_with_one_sub_per_change() {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Put {
            key: b("n"),
            value: b("1"),
        },
    );
    let before = s.revision();
    let r = apply(
        &mut s,
        script(
            "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', 'n'); \
             return redis.call('get', KEYS[1])",
            &["k"],
            &["v"],
        ),
    );
    assert_eq!(value(r), ScriptValue::Bulk(b("v")));
    assert_eq!(s.revision(), before + 1, "one entry, one revision");
    let k = s.get(b"k").unwrap();
    let n = s.get(b"n").unwrap();
    assert_eq!(k.mod_revision, before + 1);
    assert_eq!(n.mod_revision, before + 1);
    assert_eq!(n.value, b("2"));
}

#[test]
fn replies_convert_as_redis_does() {
    let mut s = Store::new();
    let cases: &[(&str, ScriptValue)] = &[
        ("return 3.99", ScriptValue::Integer(3)),
        ("return true", ScriptValue::Integer(1)),
        ("return false", ScriptValue::Nil),
        ("return nil", ScriptValue::Nil),
        ("return 'x'", ScriptValue::Bulk(b("x"))),
        (
            "return {1, 'a', {2}}",
            ScriptValue::Array(vec![
                ScriptValue::Integer(1),
                ScriptValue::Bulk(b("a")),
                ScriptValue::Array(vec![ScriptValue::Integer(2)]),
            ]),
        ),
        (
            "return {1, nil, 3}",
            ScriptValue::Array(vec![ScriptValue::Integer(1)]),
        ),
        ("return {ok='FINE'}", ScriptValue::Status("FINE".into())),
        (
            "return redis.error_reply('MY error')",
            ScriptValue::Error("MY error".into()),
        ),
        ("return redis.call('get', 'missing')", ScriptValue::Nil),
        (
            "return type(redis.call('get', 'missing'))",
            ScriptValue::Bulk(b("boolean")),
        ),
        (
            "return redis.call('set', 'a', 1)['ok']",
            ScriptValue::Bulk(b("OK")),
        ),
        (
            "return redis.pcall('incr', 'a') == 2",
            ScriptValue::Integer(1),
        ),
        (
            "return redis.sha1hex('')",
            ScriptValue::Bulk(b("da39a3ee5e6b4b0d3255bfef95601890afd80709")),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            &value(apply(&mut s, script(body, &[], &[]))),
            want,
            "{body}"
        );
    }
}

#[test]
fn errors_read_as_redis_seven() {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Put {
            key: b("s"),
            value: b("x"),
        },
    );
    let body = "return redis.call('incr', KEYS[1])";
    let sha = crate::commands::scripting::body::sha1hex(body.as_bytes());
    assert_eq!(
        value(apply(&mut s, script(body, &["s"], &[]))),
        ScriptValue::Error(format!(
            "ERR value is not an integer or out of range script: {sha}, on @user_script:1."
        ))
    );
    assert_eq!(
        value(apply(&mut s, script("retur 1", &[], &[]))),
        ScriptValue::Error(
            "ERR Error compiling script (new function): user_script:1: '=' expected near '1'"
                .into()
        )
    );
    let body = "x = 1";
    let sha = crate::commands::scripting::body::sha1hex(body.as_bytes());
    assert_eq!(
        value(apply(&mut s, script(body, &[], &[]))),
        ScriptValue::Error(format!(
            "ERR user_script:1: Attempt to modify a readonly table script: {sha}, on @user_script:1."
        ))
    );
    let body = "return redis.call('client', 'list')";
    let ScriptValue::Error(e) = value(apply(&mut s, script(body, &[], &[]))) else {
        panic!("client list is refused in a script");
    };
    assert!(
        e.starts_with("ERR This Redis command is not allowed from script"),
        "{e}"
    );
}

#[test]
fn an_error_keeps_the_calls_before_it_as_redis_does() {
    let mut s = Store::new();
    let r = apply(
        &mut s,
        script(
            "redis.call('set', 'a', '1'); redis.call('incr', 'nan'); return 1",
            &[],
            &[],
        ),
    );
    // 'nan' is absent: INCR makes it 1; then the script returns 1.
    assert_eq!(value(r), ScriptValue::Integer(1));
    let r = apply(
        &mut s,
        script(
            "redis.call('set', 'b', '1'); redis.call('incr', 'a'); error('stop')",
            &[],
            &[],
        ),
    );
    assert!(matches!(value(r), ScriptValue::Error(_)));
    assert_eq!(
        s.get(b"b").unwrap().value,
        b("1"),
        "the write before the error stays"
    );
    assert_eq!(s.get(b"a").unwrap().value, b("2"));
}

#[test]
fn a_script_past_the_instruction_limit_is_aborted_and_undone() {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Put {
            key: b("a"),
            value: b("1"),
        },
    );
    let before = s.clone();
    let r = apply(
        &mut s,
        script(
            "redis.call('set', 'a', '2'); redis.call('del', 'a'); while true do end",
            &[],
            &[],
        ),
    );
    let Response::Error(e) = r else {
        panic!("aborted: {r:?}");
    };
    assert!(e.to_string().contains("instruction"), "{e}");
    assert_eq!(s, before, "AbortLeavesNothing");
    // Caught by pcall inside the script: still aborted, still undone.
    let r = apply(
        &mut s,
        script(
            "redis.call('set', 'a', '3'); \
             while true do pcall(function() while true do end end) end",
            &[],
            &[],
        ),
    );
    assert!(matches!(r, Response::Error(_)), "{r:?}");
    assert_eq!(s, before);
}

#[test]
fn a_script_past_the_memory_limit_is_aborted_and_undone() {
    let mut s = Store::new();
    let before = s.clone();
    let r = apply(
        &mut s,
        script(
            "redis.call('set', 'a', '2'); local t = {} \
             for i = 1, 100000000 do t[i] = string.rep('x', 1024) .. i end",
            &[],
            &[],
        ),
    );
    let Response::Error(e) = r else {
        panic!("aborted: {r:?}");
    };
    assert!(
        e.to_string().contains("memory") || e.to_string().contains("instruction"),
        "{e}"
    );
    assert_eq!(s, before, "AbortLeavesNothing");
}

#[test]
fn two_stores_applying_the_same_scripts_end_equal() {
    let ops = || {
        vec![
            script(
                "for i = 1, 10 do redis.call('incr', 'c' .. (i % 3)) end return 1",
                &[],
                &[],
            ),
            script(
                "return redis.call('set', KEYS[1], math.random(1000))",
                &["r"],
                &[],
            ),
            script(
                "local t = {} for k, v in pairs({a=1, b=2, c=3}) do t[#t+1] = k end return t",
                &[],
                &[],
            ),
            script(
                "redis.call('del', 'c0'); return redis.call('mget', 'c1', 'c2')",
                &[],
                &[],
            ),
        ]
    };
    let (mut x, mut y) = (Store::new(), Store::new());
    let rx: Vec<Response> = ops().into_iter().map(|op| apply(&mut x, op)).collect();
    let ry: Vec<Response> = ops().into_iter().map(|op| apply(&mut y, op)).collect();
    assert_eq!(rx, ry);
    assert_eq!(x, y);
    assert_eq!(x.to_snapshot(), y.to_snapshot());
}

#[test]
fn read_only_runs_refuse_writes_and_change_nothing() {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Put {
            key: b("a"),
            value: b("1"),
        },
    );
    super::install();
    let run = |body: &str| {
        s.run_script_read_only(&crate::store::ScriptRun {
            body: body.as_bytes(),
            keys: &[],
            args: &[],
            now_ms: 0,
            read_only: true,
            user: None,
        })
    };
    assert_eq!(
        run("return redis.call('get', 'a')").unwrap(),
        ScriptValue::Bulk(b("1"))
    );
    let ScriptValue::Error(e) = run("return redis.call('set', 'a', '2')").unwrap() else {
        panic!("a write in a read-only script is an error reply");
    };
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    // A `no-writes` script refuses writes even through EVAL.
    let r = apply(
        &mut s,
        script(
            "#!lua flags=no-writes\nreturn redis.call('set', 'a', '3')",
            &[],
            &[],
        ),
    );
    assert!(matches!(value(r), ScriptValue::Error(_)));
    assert_eq!(s.get(b"a").unwrap().value, b("1"));
}

/// Work the instruction count cannot see is charged to it (AllocationFuel, PatternWorstCase):
/// copying a large string in a loop and a backtracking pattern are aborted within the budget
/// instead of holding apply for minutes; ordinary pattern calls still answer.
#[test]
fn copies_and_patterns_are_charged_to_the_budget() {
    let mut s = Store::new();
    let before = s.clone();
    for body in [
        "redis.call('set', 'a', '1') local big = string.rep('x', 100000) \
         for i = 1, 1000000 do local y = big .. i end",
        "redis.call('set', 'a', '1') return string.find(string.rep('a', 3000), '.-.-.-b')",
        "redis.call('set', 'a', '1') return (string.rep('a', 3000)):match('(.-)(.-)(.-)b')",
        "redis.call('set', 'a', '1') local t = {} \
         for i = 1, 100000 do t[i] = string.rep('y', 100000) t[i] = nil end",
    ] {
        let r = apply(&mut s, script(body, &[], &[]));
        let Response::Error(e) = r else {
            panic!("not aborted: {r:?}");
        };
        // The copying loops allocate past the memory bound (bytes allocated, the collector
        // not running during a run) before their instructions run out.
        let e = e.to_string();
        assert!(
            e.contains("instruction") || e.contains("memory"),
            "{body}: {e}"
        );
        assert_eq!(s, before, "AbortLeavesNothing: {body}");
    }
    let r = apply(
        &mut s,
        script(
            "local a, b, k, v = string.find('key:123', '^(%w+):(%d+)$') \
             local g = string.gsub('a b  c', '%s+', '-') return {a, b, k, v, g}",
            &[],
            &[],
        ),
    );
    assert_eq!(
        value(r),
        ScriptValue::Array(vec![
            ScriptValue::Integer(1),
            ScriptValue::Integer(7),
            ScriptValue::Bulk(b("key")),
            ScriptValue::Bulk(b("123")),
            ScriptValue::Bulk(b("a-b-c")),
        ])
    );
}

/// ScriptsReplicated: the bodies applied (SCRIPT LOAD, EVAL) are in the store's snapshot, a
/// store loaded from it refills the node's cache (EVALSHA after a restart or a catch-up), and
/// SCRIPT FLUSH empties both.
#[test]
fn scripts_applied_travel_in_snapshots_and_refill_the_cache() {
    use crate::commands::scripting::body::{lookup, sha1hex};
    let mut s = Store::new();
    let loaded = "return 'loaded by SCRIPT LOAD, snapshot test'";
    let evaluated = "return 'run by EVAL, snapshot test'";
    apply(&mut s, Op::ScriptLoad { body: b(loaded) });
    apply(&mut s, script(evaluated, &[], &[]));
    let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(restored, s);
    for body in [loaded, evaluated] {
        let sha = sha1hex(body.as_bytes());
        assert_eq!(restored.scripts().get(&sha), Some(&b(body)));
    }
    let mut emptied = restored.clone();
    apply(&mut emptied, Op::ScriptFlush);
    assert!(emptied.scripts().is_empty());
    emptied.reload_script_cache();
    assert_eq!(lookup(&sha1hex(loaded.as_bytes())), None, "flushed");
    restored.reload_script_cache();
    assert_eq!(lookup(&sha1hex(loaded.as_bytes())), Some(b(loaded)));
    assert_eq!(lookup(&sha1hex(evaluated.as_bytes())), Some(b(evaluated)));
}

/// ScriptsBoundedInline: a script whose calls pass the bound overruns (however it catches the
/// failed call), one under it does not, and the run without a bound is what a node keeps.
#[test]
fn a_script_past_its_inline_bound_overruns() {
    use crate::store::{bounded_inline, SCRIPT_CALL_WEIGHT};
    super::install();
    let mut s = Store::new();
    for i in 0..200 {
        apply(
            &mut s,
            Op::Put {
                key: b(&format!("k{i}")),
                value: b("v"),
            },
        );
    }
    let sets = "local n = 0 \
                for i = 1, tonumber(ARGV[1]) do \
                  if pcall(redis.call, 'set', 's' .. i, i) then n = n + 1 end \
                end return n";
    // Each SET weighs the call and the one key it changes.
    let bound = 100 * (SCRIPT_CALL_WEIGHT + 1);
    let mut under = s.clone();
    let (reply, overran) = bounded_inline(bound, || apply(&mut under, script(sets, &[], &["100"])));
    assert!(!overran, "100 calls within a bound of 100");
    assert_eq!(value(reply), ScriptValue::Integer(100));
    // Every call past the bound fails, so the bounded run answers fewer: it must not be kept.
    let mut bounded = s.clone();
    let (reply, overran) =
        bounded_inline(bound, || apply(&mut bounded, script(sets, &[], &["101"])));
    assert!(overran, "101 calls past a bound of 100");
    assert_eq!(value(reply), ScriptValue::Integer(100));
    let mut unbounded = s.clone();
    let reply = apply(&mut unbounded, script(sets, &[], &["101"]));
    assert_eq!(value(reply), ScriptValue::Integer(101));
    assert_eq!(unbounded.len(), 200 + 101);
    // One call that visits the whole keyspace, and a read of a hash over the bound.
    let (_, overran) = bounded_inline(100, || {
        apply(&mut s.clone(), script("redis.call('flushall')", &[], &[]))
    });
    assert!(overran, "FLUSHALL of 200 keys");
    let mut hashed = s.clone();
    let mut hset = vec!["hset".to_owned(), "h".to_owned()];
    for i in 0..150 {
        hset.extend([format!("f{i}"), "x".to_owned()]);
    }
    let fields: Vec<&str> = hset.iter().map(String::as_str).collect();
    let hset_body = "return redis.call(unpack(ARGV))";
    assert_eq!(
        value(apply(&mut hashed, script(hset_body, &[], &fields))),
        ScriptValue::Integer(150)
    );
    let (reply, overran) = bounded_inline(100, || {
        apply(
            &mut hashed,
            script("return #redis.call('hgetall', 'h')", &[], &[]),
        )
    });
    assert!(overran, "HGETALL of 150 fields: {reply:?}");
    // Outside the bound nothing is charged.
    let (_, overran) = bounded_inline(100, || ());
    assert!(!overran);
    let reply = apply(
        &mut hashed,
        script("return #redis.call('hgetall', 'h')", &[], &[]),
    );
    assert_eq!(value(reply), ScriptValue::Integer(300));
}

/// ReplyDepthBound: a script returning a table nested 100,000 deep overflowed the `raft`
/// thread's stack (on every node, and again at every replay of the entry). Now the reply nests
/// `MAX_REPLY_DEPTH` arrays and ends in Redis's "reached lua stack limit" error, and every step
/// that handles it (apply, a snapshot of the store and its reload, the client's frame and its
/// RESP bytes, the drops) runs on a thread with the default 2 MiB stack, in a debug build.
#[test]
fn a_deeply_nested_reply_is_cut_where_every_step_fits_a_thread_stack() {
    use crate::protocol::{encode, Frame, Protocol};
    use crate::store::ClientSeq;

    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            super::install();
            let mut s = Store::new();
            let deep =
                "local t = {} local c = t for i = 1, 100000 do local n = {} c[1] = n c = n end \
                        return t";
            let req = Request {
                client: Some(ClientSeq {
                    client_id: 9,
                    seq: 1,
                    ..Default::default()
                }),
                op: script(deep, &[], &[]),
                at_ms: 0,
            };
            let reply = value(s.apply(&req).0);
            let mut v = reply.clone();
            let mut depth = 0;
            while let ScriptValue::Array(mut items) = v {
                assert_eq!(items.len(), 1);
                depth += 1;
                v = items.pop().unwrap();
            }
            assert_eq!(depth, super::engine::MAX_REPLY_DEPTH);
            assert_eq!(v, ScriptValue::Error("ERR reached lua stack limit".into()));

            // The store with the script's entry applied, through a snapshot and back.
            let again = Store::from_snapshot(&s.to_snapshot()).expect("reloads");
            assert_eq!(again, s);
            // To the client's frame and its bytes.
            let frame = crate::commands::reply::script_frame(reply).expect("an array");
            let mut out = bytes::BytesMut::new();
            encode(&frame, Protocol::Resp3, &mut out);
            assert!(out.ends_with(b"-ERR reached lua stack limit\r\n"));
            assert!(matches!(frame, Frame::Array(_)));
        })
        .unwrap();
    worker.join().expect("the worker thread's stack held");
}

/// Lua 5.1's base library brought `coroutine`, and the instruction hook (set on the main
/// thread) does not follow a coroutine's own thread: `coroutine.wrap(function() while true do
/// end end)()` ran unbounded inside apply, so one EVAL held the state machine for good, and
/// again at every restart's replay of its entry. `coroutine` is gone, as the README says.
#[test]
fn a_coroutine_cannot_run_past_the_instruction_limit() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let mut s = Store::new();
            for body in [
                "return coroutine.wrap(function() while true do end end)()",
                "local co = coroutine.create(function() while true do end end) \
                 return {coroutine.resume(co)}",
            ] {
                let _ = tx.send(value(apply(&mut s, script(body, &[], &[]))));
            }
        })
        .unwrap();
    for _ in 0..2 {
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a looping coroutine ended the script in time");
        let ScriptValue::Error(e) = got else {
            panic!("an error: {got:?}");
        };
        assert!(e.contains("nonexistent global variable 'coroutine'"), "{e}");
    }
}

/// `error({})` (a table without `err`, which crashes Redis 7.0) was answered with the table's
/// heap address (`ERR Table(Ref(0x7f...))`), different on every node; now a fixed text.
#[test]
fn an_error_table_without_err_reads_the_same_everywhere() {
    let mut s = Store::new();
    let got = value(apply(&mut s, script("error({})", &[], &[])));
    let ScriptValue::Error(e) = got else {
        panic!("an error: {got:?}");
    };
    assert!(e.starts_with("ERR unknown error script: "), "{e}");
}

/// ShebangFromBytes: an entry whose shebang Redis refuses (proposed by an older build, which
/// did not check it) answers Redis's error on every store and runs none of its body.
#[test]
fn an_entry_with_a_refused_shebang_runs_nothing() {
    let body = "#!lua flags=bogus\nreturn redis.call('set', 'a', '9')";
    let (mut x, mut y) = (Store::new(), Store::new());
    for s in [&mut x, &mut y] {
        let got = value(apply(s, script(body, &[], &[])));
        let want = "ERR Unexpected flag in script shebang: bogus";
        assert_eq!(got, ScriptValue::Error(want.into()));
        assert!(s.get(b"a").is_none());
    }
    assert_eq!(x.to_snapshot(), y.to_snapshot());
}
