// node-redis 5's client-side cache (RESP3, clientSideCache) reading through a follower of a
// redraft cluster while another client writes through the leader: the second read of a key is
// a cache hit, and after a write through the leader the reader sees the new value (the cache
// entry was invalidated) within 10 s; FLUSHALL empties the cache (the next read misses). Prints one JSON line.
//
// Usage: node_redis_cache.js follower_host:port leader_host:port
const { createClient } = require("redis");

const addr = (a) => { const i = a.lastIndexOf(":"); return { host: a.slice(0, i), port: Number(a.slice(i + 1)) }; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const reader = createClient({ socket: addr(process.argv[2]), RESP: 3,
    clientSideCache: { ttl: 0, maxEntries: 0, evictPolicy: "LRU" } });
  const writer = createClient({ socket: addr(process.argv[3]) });
  await reader.connect();
  await writer.connect();
  const cache = reader.clientSideCache;
  const out = {};

  const waitFor = async (key, want) => {
    const start = Date.now();
    for (;;) {
      const got = await reader.get(key);
      if (got === want) return Date.now() - start;
      if (Date.now() - start > 10000) throw new Error(`${key}: still ${got}, wanted ${want}`);
      await sleep(1);
    }
  };

  await writer.set("nr:a", "1");
  await waitFor("nr:a", "1");
  // The fill may be followed by one late invalidation of the write it waited for (the key is
  // remembered before the read waits for that write to apply): let it come, then refill.
  await sleep(200);
  await reader.get("nr:a");
  const before = cache.stats().hitCount;
  for (let i = 0; i < 50; i++) if ((await reader.get("nr:a")) !== "1") throw new Error("cached value changed");
  out.hits_for_50_reads = cache.stats().hitCount - before;
  if (out.hits_for_50_reads !== 50) throw new Error(JSON.stringify(out));

  const windows = [];
  for (let i = 2; i <= 51; i++) {
    await writer.set("nr:a", String(i));
    windows.push(await waitFor("nr:a", String(i)));
  }
  windows.sort((a, b) => a - b);
  out.window_ms_p50 = windows[windows.length >> 1];
  out.window_ms_max = windows[windows.length - 1];

  // FLUSHALL's nil invalidation empties the cache: the next read goes to the node.
  const missesBefore = cache.stats().missCount;
  await writer.flushAll();
  out.flush_seen_after_ms = await waitFor("nr:a", null);
  out.misses_after_flush = cache.stats().missCount - missesBefore;
  if (out.misses_after_flush < 1) throw new Error(JSON.stringify(out));
  await reader.quit();
  await writer.quit();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
