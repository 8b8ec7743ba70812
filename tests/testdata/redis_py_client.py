"""redis-py (the `redis` package) against one server: set/get/incr/mget/scan_iter/pipeline.

Usage: python3 redis_py_client.py HOST PORT PROTOCOL   (PROTOCOL: 2 or 3)

Run by tests/compat/redis_py.rs against a real redis-server first, then against redraft. Prints
`ok` and exits 0 when every assertion holds; any failure raises, and Python exits 1 with the
traceback on stderr. With PROTOCOL 3 the client itself refuses a server whose HELLO 3 reply is
not RESP3 (redis-py's on_connect checks the `proto` field).
"""

import sys

import redis

host, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = redis.Redis(host=host, port=port, protocol=proto, socket_timeout=10)
p = f"py{proto}:"

assert r.ping() is True
assert r.set(p + "a", "1") is True
assert r.get(p + "a") == b"1", r.get(p + "a")
assert r.get(p + "missing") is None
assert r.incr(p + "a") == 2
assert r.incrby(p + "a", 40) == 42
assert r.mget([p + "a", p + "missing"]) == [b"42", None]

binary = b"\x00\r\n$1\r\n\xff"
assert r.set(p + "bin", binary) is True
assert r.get(p + "bin") == binary

# A pipeline without MULTI: every reply, in order.
pipe = r.pipeline(transaction=False)
for i in range(50):
    pipe.set(f"{p}k:{i}", i)
pipe.get(f"{p}k:7")
pipe.incr(f"{p}k:7")
pipe.exists(p + "k:0", p + "k:49", p + "nope")
res = pipe.execute()
assert res[:50] == [True] * 50, res[:50]
assert res[50:] == [b"7", 8, 2], res[50:]

# scan_iter drives SCAN to the end; the order is the server's.
keys = sorted(r.scan_iter(match=p + "k:*", count=10))
assert keys == sorted(f"{p}k:{i}".encode() for i in range(50)), keys

# An error reply raises, and the connection goes on.
try:
    r.incr(p + "bin")
    raise AssertionError("INCR of a non-integer value succeeded")
except redis.ResponseError as e:
    assert "value is not an integer or out of range" in str(e), e

assert r.delete(*keys, p + "a", p + "bin") == 52
assert r.exists(p + "k:0") == 0
print("ok")
