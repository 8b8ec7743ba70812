"""A writer that follows a leader kill by itself (benches/client_cache.sh): SET every 5 ms for
SECONDS, then prints the longest time without a successful write, in ms.

- `sentinel`: redis-py `Sentinel` with every node as a sentinel and the cluster name as the
  master's name (`master_for`); a failed write is retried through it.
- `loop`: a plain redis-py client on the first node; a failed write moves it to the next node
  of the list (redraft followers forward writes to the leader).

Usage: failover_writer.py MODE NAME SECONDS host:port [host:port ...]
"""
import sys
import time

import redis
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError, TimeoutError
from redis.sentinel import MasterNotFoundError, Sentinel

mode, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
nodes = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[4:]]
opts = dict(socket_timeout=0.5, socket_connect_timeout=0.3)
if mode == "sentinel":
    client = Sentinel(nodes, **opts).master_for(name, **opts)
else:
    at = 0
    client = redis.Redis(host=nodes[0][0], port=nodes[0][1], **opts)

start = time.monotonic()
last_ok, longest, i = start, 0.0, 0
while time.monotonic() - start < seconds:
    i += 1
    try:
        client.set(f"fo:{i % 1000}", i)
        now = time.monotonic()
        longest = max(longest, now - last_ok)
        last_ok = now
    except (ConnectionError, TimeoutError, ReadOnlyError, ResponseError, MasterNotFoundError):
        if mode == "loop":
            at = (at + 1) % len(nodes)
            client = redis.Redis(host=nodes[at][0], port=nodes[at][1], **opts)
    time.sleep(0.005)
print(f"{longest * 1000:.0f}")
