"""Cached vs uncached GET through redis-py 5 (benches/client_cache.sh).

Reads random keys of a hot set of KEYS keys (`bench:cfg:<i>`, 64-byte values) for SECONDS with
one connection: `uncached` sends every GET (protocol 3, no cache), `cached` uses redis-py's
client-side cache (`cache_config`, CLIENT TRACKING on the server). With `--writes-per-s W`, a
second client changes one random key of the set W times a second through WRITER, so cached
reads also pay for invalidations and refills. Prints one CSV line:
mode,ops_per_s,p50_us,p99_us,hit_ratio.

Usage: cache_reads.py MODE host:port SECONDS KEYS [--writes-per-s W --writer host:port]
"""
import random
import sys
import threading
import time

import redis
from redis.cache import CacheConfig


def addr(a):
    h, p = a.rsplit(":", 1)
    return h, int(p)


mode, (host, port), seconds, keys = sys.argv[1], addr(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
writes_per_s, writer_addr = 0, None
if "--writes-per-s" in sys.argv:
    writes_per_s = float(sys.argv[sys.argv.index("--writes-per-s") + 1])
    writer_addr = addr(sys.argv[sys.argv.index("--writer") + 1])

names = [f"bench:cfg:{i}" for i in range(keys)]
setup = redis.Redis(host=host, port=port)
for n in names:
    setup.set(n, "v" * 64)

if mode == "cached":
    r = redis.Redis(host=host, port=port, protocol=3, cache_config=CacheConfig(max_size=keys * 2))
else:
    r = redis.Redis(host=host, port=port, protocol=3)

stop = threading.Event()


def write_loop():
    w = redis.Redis(host=writer_addr[0], port=writer_addr[1])
    i = 0
    while not stop.is_set():
        i += 1
        w.set(random.choice(names), "w" * 63 + str(i % 10))
        time.sleep(1.0 / writes_per_s)


if writes_per_s:
    threading.Thread(target=write_loop, daemon=True).start()

gets_before = int(setup.info("commandstats").get("cmdstat_get", {}).get("calls", 0))
lat = []
start = time.perf_counter()
end = start + seconds
while True:
    t0 = time.perf_counter()
    if t0 >= end:
        break
    r.get(random.choice(names))
    lat.append(time.perf_counter() - t0)
elapsed = time.perf_counter() - start
stop.set()
gets_after = int(setup.info("commandstats").get("cmdstat_get", {}).get("calls", 0))
lat.sort()
served_by_server = gets_after - gets_before
hit_ratio = 1 - served_by_server / len(lat)
print(
    f"{mode},{len(lat) / elapsed:.0f},{lat[len(lat) // 2] * 1e6:.1f},"
    f"{lat[int(len(lat) * 0.99)] * 1e6:.1f},{hit_ratio:.4f}"
)
