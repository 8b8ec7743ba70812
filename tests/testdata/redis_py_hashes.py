"""redis-py's hash calls against one address, as a configuration service makes them: hset with
a mapping, hgetall, hget/hmget, hincrby, hdel, hscan_iter, a transaction over a hash, and the
type errors. Prints "ok" or raises.

Usage: redis_py_hashes.py host port
"""
import sys

import redis

host, port = sys.argv[1], int(sys.argv[2])
r = redis.Redis(host=host, port=port, socket_timeout=10, decode_responses=True)
r.delete("app:config", "app:counters", "plain")

assert r.hset("app:config", mapping={"a": "1", "b": "2", "feature.x": "on"}) == 3
assert r.hgetall("app:config") == {"a": "1", "b": "2", "feature.x": "on"}
assert r.hset("app:config", "a", "10") == 0
assert r.hget("app:config", "a") == "10"
assert r.hmget("app:config", ["a", "missing", "b"]) == ["10", None, "2"]
assert r.hexists("app:config", "feature.x")
assert r.hlen("app:config") == 3
assert sorted(r.hkeys("app:config")) == ["a", "b", "feature.x"]
assert r.hsetnx("app:config", "a", "x") == 0
assert r.hincrby("app:counters", "hits", 5) == 5
assert abs(r.hincrbyfloat("app:counters", "load", 0.25) - 0.25) < 1e-9
assert r.type("app:config") == "hash"
assert r.hstrlen("app:config", "feature.x") == 2

# hscan_iter over more fields than one HSCAN page.
r.hset("app:config", mapping={f"k{i}": str(i) for i in range(300)})
seen = dict(r.hscan_iter("app:config", match="k*", count=50))
assert len(seen) == 300 and seen["k299"] == "299", len(seen)

# A transaction (MULTI/EXEC) reading and writing hashes.
with r.pipeline(transaction=True) as p:
    p.hset("app:config", "b", "20")
    p.hincrby("app:counters", "hits", 1)
    p.hgetall("app:counters")
    out = p.execute()
assert out[0] == 0 and out[1] == 6 and out[2]["hits"] == "6", out

# Type errors.
r.set("plain", "v")
try:
    r.hget("plain", "f")
    raise AssertionError("HGET of a string must fail")
except redis.ResponseError as e:
    assert str(e).startswith("WRONGTYPE"), e
try:
    r.get("app:config")
    raise AssertionError("GET of a hash must fail")
except redis.ResponseError as e:
    assert str(e).startswith("WRONGTYPE"), e

assert r.hdel("app:config", *[f"k{i}" for i in range(300)]) == 300
assert r.hdel("app:config", "a", "b", "feature.x") == 3
assert r.exists("app:config") == 0
print("ok")
