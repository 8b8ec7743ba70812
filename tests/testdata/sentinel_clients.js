// ioredis's Sentinel support against a redraft cluster: every node is given as a sentinel,
// the cluster name is the master's name. Writes `sentjs:<i>` for DURATION seconds (one every
// 10 ms) while the test kills the leader. Prints one JSON line: the acknowledged writes and
// the longest time without a successful write (ms). argv = name duration host:port...
const Redis = require("ioredis");

const [name, duration, ...nodes] = process.argv.slice(2);
const sentinels = nodes.map((a) => {
  const i = a.lastIndexOf(":");
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
});
const r = new Redis({
  sentinels,
  name,
  sentinelRetryStrategy: () => 50,
  retryStrategy: () => 50,
  connectTimeout: 500,
  commandTimeout: 1000,
  maxRetriesPerRequest: 0,
  enableOfflineQueue: false,
});
r.on("error", () => {});

(async () => {
  const acked = [];
  const start = Date.now();
  let lastOk = start;
  let longest = 0;
  for (let i = 1; Date.now() - start < Number(duration) * 1000; i++) {
    try {
      await r.set(`sentjs:${i}`, String(i));
      const now = Date.now();
      longest = Math.max(longest, now - lastOk);
      lastOk = now;
      acked.push(i);
    } catch (e) {
      // Not connected yet, or the connection died with the leader: try again.
    }
    await new Promise((res) => setTimeout(res, 10));
  }
  console.log(JSON.stringify({ acked, longest_gap_ms: longest }));
  r.disconnect();
})().catch((e) => {
  console.log(String(e));
  process.exit(1);
});
