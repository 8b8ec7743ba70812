"""redis-py's Sentinel client against a redraft cluster: every node is given as a sentinel,
the cluster name is the master's name. Writes `sent:<i>` through `master_for` for DURATION
seconds (one every 10 ms), and reads through `slave_for`, while the test kills the leader.
Prints one JSON line: the acknowledged writes, the longest time without a successful write
(ms), the masters seen.

Usage: sentinel_clients.py name duration host:port [host:port ...]
"""
import json
import sys
import time

from redis.exceptions import ConnectionError, TimeoutError, ReadOnlyError
from redis.sentinel import MasterNotFoundError, Sentinel

name, duration = sys.argv[1], float(sys.argv[2])
nodes = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[3:]]
sentinel = Sentinel(nodes, socket_timeout=0.5, socket_connect_timeout=0.5)
assert sentinel.discover_master(name) in nodes
replicas = sentinel.discover_slaves(name)
assert len(replicas) == len(nodes) - 1, replicas
master = sentinel.master_for(name, socket_timeout=1, socket_connect_timeout=0.5)
replica = sentinel.slave_for(name, socket_timeout=1, socket_connect_timeout=0.5)

acked, masters = [], []
start = time.monotonic()
last_ok, longest = start, 0.0
i = 0
while time.monotonic() - start < duration:
    i += 1
    try:
        master.set(f"sent:{i}", i)
        now = time.monotonic()
        longest = max(longest, now - last_ok)
        last_ok = now
        acked.append(i)
        addr = master.connection_pool.get_master_address()
        if not masters or masters[-1] != list(addr):
            masters.append(list(addr))
    except (ConnectionError, TimeoutError, ReadOnlyError, MasterNotFoundError):
        time.sleep(0.01)
        continue
    if i % 20 == 0:
        try:
            replica.get(f"sent:{i}")
        except (ConnectionError, TimeoutError):
            pass
    time.sleep(0.01)
print(json.dumps({"acked": acked, "longest_gap_ms": round(longest * 1000), "masters": masters}))
