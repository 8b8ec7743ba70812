"""redis-py's client-side cache (protocol 3, cache_config) reading through a follower of a
redraft cluster while another client writes through the leader.

Checks, printing one JSON line at the end (the test asserts on it):
- a second GET of a key is served from the cache (the follower's GET count does not move);
- a write through the leader reaches the cached reader: after the writer's SET returned, the
  reader sees the new value within the invalidation window, and never a value older than the
  one it saw before (per key, values only move forward); the window (time from the writer's
  SET returning to the reader's first read of the new value) is measured for ROUNDS writes;
- a key that expires, a key a script writes, a hash written with HSET, and FLUSHALL through
  the leader all reach the cached reader the same way.

Usage: redis_py_cache.py follower_host:port leader_host:port rounds
"""
import json
import statistics
import sys
import time

import redis
from redis.cache import CacheConfig


def addr(a):
    host, port = a.rsplit(":", 1)
    return host, int(port)


(fh, fp), (lh, lp), rounds = addr(sys.argv[1]), addr(sys.argv[2]), int(sys.argv[3])
reader = redis.Redis(host=fh, port=fp, protocol=3, cache_config=CacheConfig())
writer = redis.Redis(host=lh, port=lp)
follower_stats = redis.Redis(host=fh, port=fp)


def follower_gets():
    return int(follower_stats.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


def wait_for(key, want, since, fetch=None, limit=10.0):
    """Reads `key` through the cache until it is `want`; returns seconds since `since`."""
    fetch = fetch or (lambda: reader.get(key))
    seen = None
    while True:
        got = fetch()
        if got == want:
            return time.monotonic() - since
        if time.monotonic() - since > limit:
            raise AssertionError(f"{key}: still {got!r} (wanted {want!r}) after {limit}s; saw {seen!r}")
        seen = got
        time.sleep(0.0005)


out = {}

# A cached read does not reach the server.
writer.set("cc:a", "1")
wait_for("cc:a", b"1", time.monotonic())
# The fill may be followed by one late invalidation of the write it waited for (the key is
# remembered before the read waits for that write to apply): let it come, then refill.
time.sleep(0.2)
reader.get("cc:a")
before = follower_gets()
for _ in range(100):
    assert reader.get("cc:a") == b"1"
out["server_gets_for_100_cached"] = follower_gets() - before
assert out["server_gets_for_100_cached"] == 0, out

# Writes through the leader: the invalidation window, and values never go back.
windows = []
last = 0
for i in range(1, rounds + 1):
    writer.set("cc:w", str(i))
    t0 = time.monotonic()
    seen_before = reader.get("cc:w")
    if seen_before is not None:
        assert int(seen_before) >= last, (seen_before, last)
        last = int(seen_before)
    windows.append(wait_for("cc:w", str(i).encode(), t0))
    last = i
windows.sort()
out["window_ms_p50"] = round(statistics.median(windows) * 1000, 3)
out["window_ms_p99"] = round(windows[int(len(windows) * 0.99) - 1] * 1000, 3)
out["window_ms_max"] = round(windows[-1] * 1000, 3)

# Expiry (the leader's expiry entry) invalidates.
writer.set("cc:ttl", "x", px=300)
wait_for("cc:ttl", b"x", time.monotonic())
t0 = time.monotonic()
out["expiry_seen_after_ms"] = round(wait_for("cc:ttl", None, t0) * 1000, 1)

# A script's write invalidates.
writer.set("cc:s", "before")
wait_for("cc:s", b"before", time.monotonic())
writer.eval("redis.call('SET', KEYS[1], ARGV[1]) return 1", 1, "cc:s", "after")
wait_for("cc:s", b"after", time.monotonic())

# Hashes are cached and invalidated too.
writer.hset("cc:h", mapping={"f": "1"})
wait_for("cc:h", {b"f": b"1"}, time.monotonic(), fetch=lambda: reader.hgetall("cc:h"))
writer.hset("cc:h", "f", "2")
wait_for("cc:h", {b"f": b"2"}, time.monotonic(), fetch=lambda: reader.hgetall("cc:h"))

# FLUSHALL empties the cache.
assert reader.get("cc:a") == b"1"
writer.flushall()
wait_for("cc:a", None, time.monotonic())
out["cache_size_after_flush"] = reader.get_cache().size
assert out["cache_size_after_flush"] == 0, out

print(json.dumps(out))
