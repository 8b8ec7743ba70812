"""redis-py's Lua users against one address: Lock (acquire, extend, release, two holders
contending, a release by a non-owner refused), register_script (EVALSHA, then EVAL after
NOSCRIPT), eval with keys and args. Prints "ok" or raises.

Usage: redis_py_scripts.py host port
"""
import sys
import threading
import time

import redis
from redis.exceptions import LockNotOwnedError

host, port = sys.argv[1], int(sys.argv[2])
r = redis.Redis(host=host, port=port, socket_timeout=10)
r.delete("lock:a", "counter", "held")

# A lock: acquire, extend, release (each a Lua script: redis-py's LUA_* scripts).
lock = r.lock("lock:a", timeout=5)
assert lock.acquire(blocking=False)
assert r.get("lock:a") == lock.local.token
assert lock.extend(5)
ttl = r.pttl("lock:a")
assert 5000 < ttl <= 10000, ttl
assert lock.reacquire()
other = r.lock("lock:a", timeout=5)
assert not other.acquire(blocking=False), "a second holder must not acquire"
other.local.token = b"not-the-owner"
try:
    other.release()
    raise AssertionError("a non-owner released the lock")
except LockNotOwnedError:
    pass
lock.release()
assert r.get("lock:a") is None

# Two threads contending: never both inside.
inside = []
errors = []


def worker(n):
    c = redis.Redis(host=host, port=port, socket_timeout=10)
    for _ in range(n):
        with c.lock("lock:a", timeout=10, blocking_timeout=30, sleep=0.01):
            if c.incr("held") != 1:
                errors.append("two holders at once")
            c.incr("counter")
            time.sleep(0.005)
            c.decr("held")


threads = [threading.Thread(target=worker, args=(10,)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
assert int(r.get("counter")) == 20, r.get("counter")

# register_script: EVALSHA, falling back to EVAL (SCRIPT LOAD) on NOSCRIPT.
r.script_flush()
incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
assert incr_by(keys=["counter"], args=[5]) == 25
assert r.script_exists(incr_by.sha) == [True]
assert r.eval("return {KEYS[1], ARGV[1], #KEYS}", 1, "k", "v") == [b"k", b"v", 1]
assert r.evalsha(incr_by.sha, 1, "counter", 1) == 26
print("ok")
