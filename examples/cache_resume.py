"""A client-side cache of a configuration prefix that survives reconnects without being
thrown away: redraft's resume protocol, on a stock redis-py connection (protocol 3).

Redis's own tracking forgets a client at disconnect, so a client must flush its cache: it
cannot know what changed while it was away. With redraft it can:

1. On (re)connecting to any node: `CLIENT TRACKING ON BCAST PREFIX <prefix>` (every later change
   under the prefix is pushed), then `REVISION`. Every invalidation for a change up to that
   revision has arrived before `REVISION`'s reply (RevisionAfterInvalidations), and every
   later change will be pushed.
2. On a reconnect, the changes the client may have missed are those after its last
   checkpoint `W` and up to the new `REVISION` `R`: it reads them from the watch stream
   (`XRANGE __watch__:<prefix> W+1 R`) and drops those keys only. If `W` has been compacted
   away (`-COMPACTED`), it drops everything, which is what Redis's clients always do.
3. While connected it checkpoints with `REVISION` now and then: once the reply is in, the
   cache reflects every change up to that revision.

Run against a cluster (see the README), e.g.:

    python3 examples/cache_resume.py demo app/ 20 127.0.0.1:6381 127.0.0.1:6382 127.0.0.1:6383

`demo <prefix> <seconds> <nodes...>` reads random keys `<prefix>0..99` through the cache for
the given time, checkpointing every 100 ms and moving to the next node when its connection
fails; then checks the cache against the cluster and prints one JSON line: reads, cache hits,
resumes, entries kept across resumes, changes replayed, flushes, and mismatches (must be 0).
"""
import json
import random
import sys
import time

import redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

NEVER = object()


class ResumableCache:
    def __init__(self, nodes, prefix):
        self.nodes = nodes
        self.prefix = prefix
        self.values = {}
        self.watermark = None  # the revision the cache is known to reflect
        self.conn = None
        self.node = 0
        self.stats = {"resumes": 0, "kept_on_resume": 0, "replayed": 0, "flushes": 0}

    def _on_invalidate(self, push):
        keys = push[1]
        if keys is None:
            self.values.clear()
        else:
            for k in keys:
                self.values.pop(k, None)

    def _call(self, *args):
        self.conn.send_command(*args)
        return self.conn.read_response()

    def connect(self):
        """Connects to the next node that answers and resumes (steps 1 and 2)."""
        for _ in range(len(self.nodes) * 20):
            host, port = self.nodes[self.node % len(self.nodes)]
            try:
                conn = redis.Connection(host=host, port=port, protocol=3, socket_timeout=2)
                conn.connect()
                conn._parser.set_invalidation_push_handler(self._on_invalidate)
                self.conn = conn
                self._call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self.prefix)
                revision = self._call("REVISION")[b"revision"]
                self._resume(revision)
                return
            except (ConnectionError, TimeoutError, ResponseError):
                self.node += 1
                time.sleep(0.1)
        raise RuntimeError("no node answers")

    def _resume(self, revision):
        if self.watermark is not None and self.values:
            self.stats["resumes"] += 1
            try:
                entries = self._call(
                    "XRANGE", "__watch__:" + self.prefix, str(self.watermark + 1), str(revision)
                )
            except ResponseError:
                # -COMPACTED: the missed changes are gone; start over as Redis clients do.
                self.values.clear()
                self.stats["flushes"] += 1
                entries = []
            for _, fields in entries:
                fields = dict(zip(fields[::2], fields[1::2]))
                self.values.pop(fields[b"key"], None)
                self.stats["replayed"] += 1
            self.stats["kept_on_resume"] += len(self.values)
        self.watermark = revision

    def checkpoint(self):
        """Step 3: the cache now reflects every change up to the returned revision."""
        self.watermark = self._call("REVISION")[b"revision"]

    def get(self, key):
        """Returns (value, hit). Invalidations already on the socket are applied first."""
        while self.conn.can_read():
            self.conn.read_response(push_request=True)
        value = self.values.get(key, NEVER)
        if value is not NEVER:
            return value, True
        value = self._call("GET", key)
        self.values[key] = value
        return value, False


def demo(prefix, seconds, nodes):
    cache = ResumableCache(nodes, prefix)
    cache.connect()
    reads = hits = 0
    deadline = time.monotonic() + seconds
    next_checkpoint = 0.0
    while time.monotonic() < deadline:
        key = f"{prefix}{random.randrange(100)}".encode()
        try:
            _, hit = cache.get(key)
            reads += 1
            hits += hit
            if time.monotonic() >= next_checkpoint:
                cache.checkpoint()
                next_checkpoint = time.monotonic() + 0.1
        except (ConnectionError, TimeoutError, OSError):
            cache.node += 1
            cache.connect()
        time.sleep(0.001)
    # Every cached entry must be the cluster's value now (the writers have stopped).
    cache.checkpoint()
    while cache.conn.can_read():
        cache.conn.read_response(push_request=True)
    host, port = nodes[cache.node % len(nodes)]
    check = redis.Redis(host=host, port=port)
    mismatches = [
        k.decode() for k, v in cache.values.items() if check.get(k) != v
    ]
    print(
        json.dumps(
            dict(reads=reads, hits=hits, cached=len(cache.values), mismatches=mismatches,
                 **cache.stats)
        )
    )


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] != "demo":
        sys.exit(__doc__)
    addrs = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[4:]]
    demo(sys.argv[2], float(sys.argv[3]), addrs)
