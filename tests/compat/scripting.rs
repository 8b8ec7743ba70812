//! Lua scripting as Redis 7.0 answers it, and as the libraries built on it use it.
//!
//! - `scripts_answer_as_redis_does`: EVAL, EVALSHA, EVAL_RO, SCRIPT LOAD/EXISTS/FLUSH, type
//!   conversions both ways, errors raised by the script, by `redis.call` and by the compiler,
//!   read-only refusals, KEYS/ARGV checks: the same bytes from a single-node redraft and from
//!   `redis-server`, command by command on raw connections.
//! - `redis_py_locks_and_scripts_through_a_follower`: the script
//!   `tests/testdata/redis_py_scripts.py` (redis-py `Lock` acquire/extend/release and two
//!   holders contending, `register_script` with its NOSCRIPT fallback) against `redis-server`
//!   first, then against a follower of a three-node cluster.
//! - `ioredis_define_command_through_a_follower`: `tests/testdata/ioredis_scripts.js`
//!   (`defineCommand` with its NOSCRIPT fallback, a compare-and-delete lock release, a
//!   pipeline of defined commands) against `redis-server`, then through a follower.
//! - `concurrent_scripts_leave_every_node_identical`: scripts sent to every node at once, each
//!   a read-modify-write of several keys; afterwards every node has the same revision, the same
//!   values and the same HISTORY, and the counter shows no lost update.
//!
//! Deliberate difference, tested on redraft alone elsewhere (`src/commands/scripting/`):
//! `math.random` restarts from the same seed in every script (Redis 7.0 continues its
//! sequence), so every node draws the same numbers.

use crate::common;
use crate::common::client_libs;

use std::time::Duration;

use client_libs::run_script_against;
use common::single::{RealRedis, Single};
use common::Cluster;
use resp_client::raw::RawConn as RawClient;

/// One command per entry, sent as arguments (so scripts may hold spaces).
const SCRIPT: &[&[&str]] = &[
    &["SET", "s", "x"],
    &["SET", "n", "10"],
    &["EVAL", "return redis.call('incr', KEYS[1])", "1", "n"],
    &["EVAL", "return redis.call('incr', KEYS[1])", "1", "s"],
    &["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "s"],
    &["EVAL", "return redis.call('nosuch')", "0"],
    &["EVAL", "return redis.call()", "0"],
    &["EVAL", "return redis.call('get', {})", "0"],
    &["EVAL", "return redis.call('get')", "0"],
    &["EVAL", "retur 1", "0"],
    &["EVAL", "error('boom')", "0"],
    &["EVAL", "error({err='CUSTOM failure'})", "0"],
    &["EVAL", "x = 1", "0"],
    &["EVAL", "return y", "0"],
    &["EVAL", "return {1, 2, 'a', false, {ok='fine'}, {3}}", "0"],
    &["EVAL", "return {1, nil, 3}", "0"],
    &["EVAL", "return {err='My Error'}", "0"],
    &["EVAL", "return redis.error_reply('MY code')", "0"],
    &["EVAL", "return redis.status_reply('FINE')", "0"],
    &["EVAL", "return 3.99", "0"],
    &["EVAL", "return -2.5", "0"],
    &["EVAL", "return true", "0"],
    &["EVAL", "return false", "0"],
    &["EVAL", "return nil", "0"],
    &["EVAL", "return redis.sha1hex('abc')", "0"],
    &["EVAL", "return redis.call('get', 'missing')", "0"],
    &["EVAL", "return type(redis.call('get', 'missing'))", "0"],
    &["EVAL", "return redis.call('set', 'k', 'v')", "0"],
    &[
        "EVAL",
        "return redis.call('mget', KEYS[1], KEYS[2], 'missing')",
        "2",
        "k",
        "n",
    ],
    &[
        "EVAL",
        "return redis.call('exists', 'k', 'n', 'missing')",
        "0",
    ],
    &[
        "EVAL",
        "return {KEYS[1], ARGV[1], ARGV[2], #KEYS, #ARGV}",
        "1",
        "a",
        "b",
        "c",
    ],
    &[
        "EVAL",
        "return redis.call('incrby', 'n', ARGV[1])",
        "0",
        "5",
    ],
    &["EVAL", "return redis.call('incrbyfloat', 'f', 1.5)", "0"],
    &["EVAL", "return redis.call('ping')", "0"],
    &["EVAL", "return redis.call('ping', 'hello')", "0"],
    &["EVAL", "return redis.pcall('ping', 'a', 'b')", "0"],
    &["EVAL", "return redis.call('echo', 'e')", "0"],
    &[
        "EVAL",
        "return cjson.encode({a=1, b={1, 2, 3}, c='x', d={e=true}})",
        "0",
    ],
    &["EVAL", "return cjson.encode({1, 2, nil, 4})", "0"],
    &["EVAL", "return cjson.encode({})", "0"],
    &["EVAL", "return cjson.encode('a\"b/\n')", "0"],
    &[
        "EVAL",
        "return {cjson.encode(1.5), cjson.encode(-3), cjson.encode(1e20)}",
        "0",
    ],
    &[
        "EVAL",
        "return cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":1.5}').a[2]",
        "0",
    ],
    &["EVAL", "return type(cjson.decode('null'))", "0"],
    &["EVAL", "return cjson.decode('[1,\"x\",true]')", "0"],
    &[
        "EVAL",
        "return {bit.band(0xff, 0x0f), bit.bor(1, 2, 4), bit.bxor(5, 3), bit.bnot(0)}",
        "0",
    ],
    &[
        "EVAL",
        "return {bit.lshift(1, 4), bit.rshift(-1, 28), bit.arshift(-16, 2), bit.tobit(4294967297)}",
        "0",
    ],
    &[
        "EVAL",
        "return {bit.tohex(255), bit.tohex(-1, -4), bit.tohex(0x1234abcd, 2), bit.rol(1, 33)}",
        "0",
    ],
    &[
        "EVAL",
        "return tostring(1/3) .. ' ' .. tostring(2^53) .. ' ' .. tostring(0.00001)",
        "0",
    ],
    &["EVAL", "return redis.call('set', 'num', 1/3)", "0"],
    // The string functions behind the budget's wrappers answer their own errors, as Redis's.
    &["EVAL", "return string.rep()", "0"],
    &["EVAL", "return string.find()", "0"],
    &["EVAL", "return string.format('%d', 'x')", "0"],
    &["EVAL", "return table.concat({{}})", "0"],
    &["EVAL", "return string.gsub('x', '%', 'y')", "0"],
    // Called as methods, the arguments are numbered after `self`.
    &["EVAL", "return ('x'):rep('a')", "0"],
    &["EVAL", "return ('x'):rep(2, 3, 'z') .. ('x'):find({})", "0"],
    &["EVAL", "return ('x'):format(nil)", "0"],
    &["EVAL", "local s = 'abc' return s:sub('q')", "0"],
    // Caught with pcall, their errors are the message strings Redis's give.
    &[
        "EVAL",
        "local ok, e = pcall(string.rep) return {tostring(ok), type(e), e}",
        "0",
    ],
    &[
        "EVAL",
        "local ok, e = pcall(string.format, '%d', 'x') return type(e) .. ': ' .. e",
        "0",
    ],
    &[
        "EVAL",
        "local ok, e = pcall(function() return ('x'):rep('a') end) return e",
        "0",
    ],
    &["EVAL", "return select(2, pcall(table.concat, {{}}))", "0"],
    &["EVAL", "local r = string.rep return r()", "0"],
    &[
        "EVAL",
        "return select(2, xpcall(function() return ('x'):rep('a') end, function(e) return type(e) .. ' ' .. e end))",
        "0",
    ],
    &[
        "EVAL",
        "local ok, e = pcall(string.gsub, 'x', '%', 'y') return {type(e), e}",
        "0",
    ],
    &["EVAL", "return {pcall(string.find, 'abc', 'b')}", "0"],
    &[
        "EVAL",
        "return {string.find('key:123', '^(%w+):(%d+)$')}",
        "0",
    ],
    &["EVAL", "return {string.gsub('a b  c', '%s+', '-')}", "0"],
    &[
        "EVAL",
        "return {('Ab'):upper(), ('Ab'):lower(), ('ab'):reverse(), ('abc'):sub(2)}",
        "0",
    ],
    &[
        "EVAL",
        "local n = 0 for w in string.gmatch('a,b,c', '[^,]+') do n = n + 1 end return n",
        "0",
    ],
    // Numbers past i64 convert as Redis's `(long long)` cast does on x86-64.
    &["EVAL", "return 1/0", "0"],
    &["EVAL", "return {2^63, -2^63, 0/0, 1e308, 3.99}", "0"],
    // cjson: bytes past 0x7f pass unchanged (UTF-8 was encoded twice), `%.14g` numbers, the
    // argument count, errors at the script's line.
    &["EVAL", "return cjson.encode({'\\195\\169', '\\255'})", "0"],
    &["EVAL", "return cjson.encode({2^53, 1e14, 0.5, -3})", "0"],
    &["EVAL", "return cjson.encode()", "0"],
    &["EVAL", "return cjson.encode(1, 2)", "0"],
    &["EVAL", "return cjson.encode({f = function() end})", "0"],
    &["EVAL", "return cjson.encode({[true] = 1})", "0"],
    &["EVAL", "return cjson.encode(1/0)", "0"],
    // pcall gives an error's text (Redis 7's own pcall); an xpcall handler sees the table.
    &[
        "EVAL",
        "local ok, e = pcall(redis.call, 'nosuch') return {type(e), e}",
        "0",
    ],
    &["EVAL", "local ok, e = pcall(redis.call, 'get') return e", "0"],
    &["EVAL", "local ok, e = pcall(error, {err = 'x'}) return e", "0"],
    &[
        "EVAL",
        "return {xpcall(function() redis.call('nosuch') end, function(e) return e.err end)}",
        "0",
    ],
    &["EVAL", "error()", "0"],
    &["EVAL", "error(true)", "0"],
    // The redis.* helpers' argument checks and texts.
    &["EVAL", "return redis.error_reply('x')", "0"],
    &["EVAL", "return redis.error_reply('-x')", "0"],
    &["EVAL", "return redis.error_reply('My Error here')", "0"],
    &["EVAL", "return redis.error_reply('x').err", "0"],
    &["EVAL", "return redis.error_reply(1)", "0"],
    &["EVAL", "return redis.status_reply()", "0"],
    &["EVAL", "return redis.sha1hex()", "0"],
    &["EVAL", "return redis.sha1hex(nil)", "0"],
    &["EVAL", "return redis.log()", "0"],
    &["EVAL", "return redis.log('x', 'y')", "0"],
    &["EVAL", "return redis.log(99, 'x')", "0"],
    &["EVAL", "return redis.log(redis.LOG_WARNING, 'fine')", "0"],
    &["EVAL", "return redis.set_repl()", "0"],
    &["EVAL", "return redis.set_repl(99)", "0"],
    &["EVAL", "return {redis.set_repl(redis.REPL_ALL), redis.breakpoint()}", "0"],
    // bit: Lua BitOp's rounding and its argument errors.
    &[
        "EVAL",
        "return {bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit(1e20)}",
        "0",
    ],
    &["EVAL", "return bit.band()", "0"],
    &["EVAL", "return bit.lshift(1)", "0"],
    &["EVAL", "return bit.bor(1, 'x')", "0"],
    // math.random's argument checks (the sequence itself is a deliberate difference).
    &["EVAL", "return math.random(0)", "0"],
    &["EVAL", "return math.random(2, 1)", "0"],
    &["EVAL", "return math.random(1, 2, 3)", "0"],
    &["EVAL", "math.randomseed() return 1", "0"],
    &["EVAL", "math.randomseed(7) return {math.random(10), math.random(3, 9)}", "0"],
    &["GET", "num"],
    &[
        "EVAL",
        "redis.call('set', 'e', 'v', 'EX', 100); return redis.call('ttl', 'e')",
        "0",
    ],
    &[
        "EVAL",
        "redis.call('pexpire', 'e', 50000); return redis.call('ttl', 'e')",
        "0",
    ],
    &["EVAL", "return 1", "-1"],
    &["EVAL", "return 1", "x"],
    &["EVAL", "return 1", "2", "a"],
    &["EVAL", "return 1"],
    &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "k"],
    &[
        "EVAL_RO",
        "return redis.call('set', KEYS[1], 'w')",
        "1",
        "k",
    ],
    &[
        "EVAL",
        "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'w')",
        "0",
    ],
    &["EVAL", "#!lua\nreturn redis.call('get', 'k')", "0"],
    &["GET", "k"],
    // The shebang line, checked as Redis 7.0 checks it (after the key count):
    &["EVAL", "#!lua flags=bogus\nreturn 1", "x"],
    &["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
    &["EVAL", "#!lua flags=bogus\nretur", "0"],
    &["EVAL", "#!lua flags=no-writes,\nreturn 1", "0"],
    &["EVAL", "#!lua flags=NO-WRITES\nreturn 1", "0"],
    &["EVAL", "#!lua name=x\nreturn 1", "0"],
    &["EVAL", "#!notlua\nreturn 1", "0"],
    &["EVAL", "#!\nreturn 1", "0"],
    &["EVAL", "#! lua\nreturn 1", "0"],
    &["EVAL", "#!lua flags=no-writes", "0"],
    &["EVAL", "#!lua flags=\"no-writes\nreturn 1", "0"],
    &["EVAL", "#!lua 'flags=no-writes'x\nreturn 1", "0"],
    &["EVAL", "#!lua x\0y\nreturn 1", "0"],
    &["EVAL", "#!lua \"x\\x00y\"\nreturn 1", "0"],
    &["EVAL_RO", "#!lua flags=bogus\nreturn 1", "0"],
    // A refused script is not cached (nor proposed): its SHA-1 is unknown afterwards.
    &["SCRIPT", "EXISTS", "2c629bb5a96608e69af706765b522dcf69f1375e"],
    &["SCRIPT", "LOAD", "#!lua flags=bogus\nreturn 1"],
    &["SCRIPT", "LOAD", "#!lua"],
    &[
        "EVAL",
        "#!lua flags=no-writes,allow-stale,no-cluster,allow-cross-slot-keys,allow-oom\nreturn 1",
        "0",
    ],
    &[
        "EVAL_RO",
        "#!lua flags=no-writes,allow-stale,no-cluster,allow-cross-slot-keys,allow-oom\nreturn 1",
        "0",
    ],
    &["EVAL", "#!lua\tflags=\"no-\\x77rites\"\r\nreturn 1", "0"],
    &["EVAL_RO", "#!lua\tflags=\"no-\\x77rites\"\r\nreturn 1", "0"],
    // A shebang without `no-writes` may write: the `_RO` commands refuse it before it runs,
    // after a compile error.
    &["EVAL_RO", "#!lua\nreturn 1", "0"],
    &["EVAL_RO", "#!lua flags=allow-oom\nreturn 1", "0"],
    &["EVAL_RO", "#!lua flags=\nreturn 1", "0"],
    &["EVAL_RO", "#!\"lua\"\nreturn redis.call('get', 'k')", "0"],
    &["EVAL_RO", "#!lua\nretur", "0"],
    &["EVAL", "#!lua flags=allow-oom\nreturn 1", "0"],
    &["SCRIPT", "LOAD", "#!lua flags=allow-oom\nreturn 1"],
    &["EVALSHA_RO", "859a81c149196d031d328cf91bcb497765bec8d4", "0"],
    &["EVALSHA", "859a81c149196d031d328cf91bcb497765bec8d4", "0"],
    // EVALSHA checks the key count before the cache; the SHA-1 in any case.
    &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "x"],
    &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "2", "a"],
    &["EVALSHA_RO", "ffffffffffffffffffffffffffffffffffffffff", "-1"],
    &["EVALSHA", "fff", "x"],
    &["EVALSHA", "859A81C149196D031D328CF91BCB497765BEC8D4", "0"],
    &["SCRIPT", "EXISTS", "859A81C149196D031D328CF91BCB497765BEC8D4"],
    // A body that does not compile is refused before it is proposed or cached.
    &["EVAL", "retur", "0"],
    &["SCRIPT", "EXISTS", "33dc7579a8a1200e2b739823680f33fbf5bf3742"],
    &["EVAL_RO", "retur", "0"],
    &["SCRIPT", "EXISTS", "33dc7579a8a1200e2b739823680f33fbf5bf3742"],
    &["SCRIPT", "LOAD", "return 'loaded'"],
    &["SCRIPT", "LOAD", "retur 1"],
    &["EVALSHA", "c2dbbcec1c5d9e7ba7f4e46b2bd6b8c2d0fb7c47", "0"],
    &["EVALSHA", "0123456789012345678901234567890123456789", "0"],
    &["EVALSHA", "abc", "0"],
    &[
        "SCRIPT",
        "EXISTS",
        "c2dbbcec1c5d9e7ba7f4e46b2bd6b8c2d0fb7c47",
        "abc",
    ],
    &[
        "EVALSHA_RO",
        "c2dbbcec1c5d9e7ba7f4e46b2bd6b8c2d0fb7c47",
        "0",
    ],
    &["SCRIPT", "FLUSH"],
    &[
        "SCRIPT",
        "EXISTS",
        "c2dbbcec1c5d9e7ba7f4e46b2bd6b8c2d0fb7c47",
    ],
    &["SCRIPT", "FLUSH", "BOGUS"],
    &["SCRIPT", "KILL"],
    &["SCRIPT", "NOSUCH"],
    &["MULTI"],
    &["EVAL", "return redis.call('incr', 'n')", "0"],
    &["EVAL", "return redis.call('incr', 's')", "0"],
    &["EXEC"],
    // Read-only globals, libraries and metatables (Redis 7), and a run after them that sees
    // nothing of what they tried (the interpreter is reused).
    &["EVAL", "string.rep = nil", "0"],
    &["EVAL", "rawset(_G, 'x', 1)", "0"],
    &["EVAL", "table.insert(string, 'x')", "0"],
    &["EVAL", "setmetatable(_G, nil)", "0"],
    &["EVAL", "getmetatable('').__index = {}", "0"],
    &["EVAL", "local t = math; t.y = 2", "0"],
    &["EVAL", "redis.call = nil", "0"],
    &["EVAL", "return pcall(function() cjson.x = 1 end)", "0"],
    &[
        "EVAL",
        "return {('a'):rep(2), type(math.y), type(redis.call), #string}",
        "0",
    ],
    // pcall/xpcall recursion: the status was pushed past the frame (a debug build aborted).
    &["EVAL", "local function f() return pcall(f) end return f()", "0"],
    &[
        "EVAL",
        "local function f() return xpcall(f, function(e) return e end) end return f()",
        "0",
    ],
    &[
        "EVAL",
        "local function f(n) if n == 0 then error({err = 'ERR deep'}) end \
         return pcall(f, n - 1) end local t = {f(150)} return {#t, t[#t]}",
        "0",
    ],
    &[
        "EVAL",
        "local t = {} for i = 1, 7000 do t[i] = 'x' .. i end return unpack(t)",
        "0",
    ],
    &["EVAL", "return {pcall()}", "0"],
    &[
        "EVAL",
        "local ok = xpcall(function() return 1 end) return ok",
        "0",
    ],
];

#[test]
fn scripts_answer_as_redis_does() {
    let node = Single::start();
    let redis = RealRedis::start();
    let mut ours = RawClient::must_connect(&node.addr);
    let mut theirs = RawClient::must_connect(&redis.addr);
    for cmd in SCRIPT {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        let (got, want) = (ours.call_args(&args), theirs.call_args(&args));
        assert_eq!(got, want, "{cmd:?}");
    }
}

/// Runs the redis-py script against `addr`; why it failed, if it did.
fn run_redis_py(addr: &str) -> Result<(), String> {
    run_script_against("python3", "redis_py_scripts.py", addr)
}

#[test]
fn redis_py_locks_and_scripts_through_a_follower() {
    let redis = RealRedis::start();
    if let Err(e) = run_redis_py(&redis.addr) {
        panic!("the script fails against redis-server itself: {e}");
    }
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    if let Err(e) = run_redis_py(&c.redis_addr(follower)) {
        panic!("redis-py's locks and scripts through a follower: {e}");
    }
}

/// Runs the ioredis scripting script against `addr`; why it failed, if it did.
fn run_ioredis(addr: &str) -> Result<(), String> {
    run_script_against("node", "ioredis_scripts.js", addr)
}

#[test]
fn ioredis_define_command_through_a_follower() {
    let redis = RealRedis::start();
    if let Err(e) = run_ioredis(&redis.addr) {
        panic!("the script fails against redis-server itself: {e}");
    }
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    if let Err(e) = run_ioredis(&c.redis_addr(follower)) {
        panic!("ioredis's defined commands through a follower: {e}");
    }
}

#[test]
fn concurrent_scripts_leave_every_node_identical() {
    let mut c = Cluster::start();
    c.must_leader(Duration::from_secs(20));
    let ids = c.ids();
    // Each script reads a counter and two keys and writes all three: a lost update or a
    // script split by another would show in the counter or the pair.
    let body = "local n = tonumber(redis.call('get', 'count') or '0') + 1 \
                redis.call('set', 'count', n) \
                redis.call('set', 'pair:a', ARGV[1] .. ':' .. n) \
                redis.call('set', 'pair:b', ARGV[1] .. ':' .. n) \
                return n";
    let threads: Vec<_> = ids
        .iter()
        .map(|&id| {
            let addr = c.redis_addr(id);
            std::thread::spawn(move || {
                let mut con = RawClient::must_connect(&addr);
                for _ in 0..30 {
                    let who = format!("node{id}");
                    let got = con.call_args(&[b"EVAL", body.as_bytes(), b"0", who.as_bytes()]);
                    assert!(got.starts_with(':'), "{got}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("script client");
    }
    let total = 30 * ids.len();
    // Every node converges to the same state, read in stale mode (its own applied state).
    let snapshot = |c: &Cluster, id: u64| {
        let mut con = RawClient::must_connect(&c.redis_addr(id));
        con.call("READMODE stale");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let count = con.call("GET count");
            if count == format!("${}\r\n{total}\r\n", total.to_string().len())
                || std::time::Instant::now() > deadline
            {
                let a = con.call("GET pair:a");
                let b = con.call("GET pair:b");
                let history = con.call("HISTORY count");
                let revision = con.call("REVISION");
                return (
                    count,
                    a,
                    b,
                    history,
                    revision.lines().take(2).collect::<String>(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let first = snapshot(&c, ids[0]);
    assert_eq!(
        first.0,
        format!("${}\r\n{total}\r\n", total.to_string().len()),
        "no lost update"
    );
    assert_eq!(first.1, first.2, "a script's writes are never split");
    for &id in &ids[1..] {
        assert_eq!(
            snapshot(&c, id),
            first,
            "node {id} differs from node {}",
            ids[0]
        );
    }
}

/// A script that loops forever, and one that allocates without bound, each after a write: both
/// are aborted with an error on every node (in a bounded number of instructions and bytes, not
/// a timer), nothing either wrote is applied anywhere, and another client's writes and reads
/// are served meanwhile and after.
#[test]
fn runaway_scripts_are_aborted_everywhere_while_others_are_served() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let (leader_addr, follower_addr) = (c.redis_addr(leader), c.redis_addr(follower));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut con = RawClient::must_connect(&leader_addr);
            let mut served = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                served += 1;
                let v = served.to_string();
                assert_eq!(con.call_args(&[b"SET", b"other", v.as_bytes()]), "+OK\r\n");
                let got = con.call("GET other");
                assert!(got.ends_with(&format!("{v}\r\n")), "{got}");
            }
            served
        })
    };
    let mut con = RawClient::must_connect(&follower_addr);
    let forever = "redis.call('set', 'partial', 'loop') while true do end";
    let got = con.call_args(&[b"EVAL", forever.as_bytes(), b"0"]);
    assert!(
        got.starts_with("-ERR script aborted: it ran past the limit of"),
        "{got}"
    );
    // Table growth: each step a few instructions and a few bytes, so the memory limit is what
    // stops it (C functions such as string.rep count as one instruction: see the README).
    let hog = "redis.call('set', 'partial', 'hog') local t = {} \
               for i = 1, 1e9 do t[i] = i end";
    let got = con.call_args(&[b"EVAL", hog.as_bytes(), b"0"]);
    assert!(
        got.starts_with("-ERR script aborted: it used more than"),
        "{got}"
    );
    // A pcall cannot catch the limit.
    let caught = "return pcall(function() while true do end end)";
    let got = con.call_args(&[b"EVAL", caught.as_bytes(), b"0"]);
    assert!(got.starts_with("-ERR script aborted"), "{got}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = other.join().expect("the other client");
    assert!(served > 0);
    for id in c.ids() {
        let mut con = RawClient::must_connect(&c.redis_addr(id));
        con.call("READMODE stale");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        // Wait until the node applied the other client's last write, then check nothing of
        // the aborted scripts is there.
        loop {
            let got = con.call("GET other");
            if got.ends_with(&format!("{served}\r\n")) || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(con.call("GET partial"), "$-1\r\n", "node {id}");
        assert_eq!(con.call("HISTORY partial"), "*0\r\n", "node {id}");
    }
}
