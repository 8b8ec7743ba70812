"""Gray releases through redis-py: one client named gray:<label> (redis-py's client_name), one
not, reading a key for a while through the given nodes (each read through a node picked in
turn; a node that fails is skipped, as a client would move on).

Checks, then prints one JSON line:
- the labelled client reads only the candidate (it is staged before this runs, and promoted
  while it runs or not at all);
- the other client reads the old value, then (once promoted) the candidate, never back;
- with --promoted: both read the candidate from the start.

Usage: redis_py_gray.py label key old candidate seconds [--promoted] host:port...
"""
import json
import sys
import time

import redis

label, key, old, candidate, seconds = sys.argv[1:6]
rest = sys.argv[6:]
promoted = "--promoted" in rest
nodes = [a.rsplit(":", 1) for a in rest if a != "--promoted"]


def clients(name):
    return [
        redis.Redis(host=h, port=int(p), client_name=name, socket_timeout=2,
                    decode_responses=True)
        for h, p in nodes
    ]


labelled, plain = clients(f"gray:{label}"), clients(None)
seen = {"labelled": [], "plain": []}
errors = 0
deadline = time.time() + float(seconds)
i = 0
while time.time() < deadline:
    for who, pool in (("labelled", labelled), ("plain", plain)):
        try:
            seen[who].append(pool[i % len(pool)].get(key))
        except redis.RedisError:
            errors += 1
    i += 1
    time.sleep(0.005)

problems = []
if any(v != candidate for v in seen["labelled"]):
    problems.append(f"the labelled client read {sorted(set(seen['labelled']))}")
plain_values = seen["plain"]
if promoted:
    if any(v != candidate for v in plain_values):
        problems.append(f"after the promote the other client read {sorted(set(plain_values))}")
else:
    first_new = next((j for j, v in enumerate(plain_values) if v == candidate), len(plain_values))
    if any(v != old for v in plain_values[:first_new]) or any(
        v != candidate for v in plain_values[first_new:]
    ):
        problems.append(f"the other client read {plain_values}")
print(json.dumps({
    "labelled_reads": len(seen["labelled"]),
    "plain_reads": len(plain_values),
    "plain_saw_candidate": candidate in plain_values,
    "errors": errors,
    "problems": problems,
}))
sys.exit(1 if problems else 0)
