// ioredis's hash calls and the Redlock library (npm `redlock`, whose lock, extend and unlock
// are its own Lua scripts) against one address. Redlock's mutual exclusion is checked with a
// read-modify-write that is only correct under the lock: two clients each take the lock 25
// times and add 1 with GET then SET; the counter must end at 50. Prints "ok" or the first
// failure. argv = host port.
const Redis = require("ioredis");
const Redlock = require("redlock");
const assert = require("assert");

const [host, port] = process.argv.slice(2);
const options = { host, port: Number(port), maxRetriesPerRequest: 1 };
const r = new Redis(options);

async function hashes() {
  await r.del("js:cfg", "js:plain");
  assert.strictEqual(await r.hset("js:cfg", { a: "1", b: "2", "feature.x": "on" }), 3);
  assert.deepStrictEqual(await r.hgetall("js:cfg"), { a: "1", b: "2", "feature.x": "on" });
  assert.strictEqual(await r.hset("js:cfg", "a", "10"), 0);
  assert.deepStrictEqual(await r.hmget("js:cfg", "a", "missing"), ["10", null]);
  assert.strictEqual(await r.hincrby("js:cfg", "n", 5), 5);
  assert.strictEqual(await r.hincrbyfloat("js:cfg", "f", "0.5"), "0.5");
  assert.strictEqual(await r.hlen("js:cfg"), 5);
  assert.strictEqual(await r.type("js:cfg"), "hash");
  const many = {};
  for (let i = 0; i < 200; i++) many[`k${i}`] = String(i);
  await r.hset("js:cfg", many);
  const seen = new Map();
  await new Promise((resolve, reject) => {
    const stream = r.hscanStream("js:cfg", { match: "k*", count: 40 });
    stream.on("data", (items) => {
      for (let i = 0; i < items.length; i += 2) seen.set(items[i], items[i + 1]);
    });
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  assert.strictEqual(seen.size, 200);
  assert.strictEqual(seen.get("k199"), "199");
  await r.set("js:plain", "v");
  await assert.rejects(r.hget("js:plain", "f"), /^ReplyError: WRONGTYPE/);
  assert.strictEqual(await r.hdel("js:cfg", ...Object.keys(many)), 200);
}

async function redlock() {
  await r.del("js:resource", "js:counter");
  const clients = [new Redis(options), new Redis(options)];
  const locks = clients.map(
    (c) => new Redlock([c], { retryCount: 200, retryDelay: 20, retryJitter: 20 })
  );
  // Lock, extend, unlock; a second holder cannot take it meanwhile.
  const lock = await locks[0].lock("js:resource", 5000);
  assert.ok((await r.pttl("js:resource")) > 0);
  await assert.rejects(
    new Redlock([clients[1]], { retryCount: 0 }).lock("js:resource", 5000),
    /LockError/
  );
  const extended = await lock.extend(8000);
  assert.ok((await r.pttl("js:resource")) > 5000);
  await extended.unlock();
  assert.strictEqual(await r.exists("js:resource"), 0);
  // Mutual exclusion: GET then SET is only safe under the lock.
  await r.set("js:counter", "0");
  await Promise.all(
    locks.map(async (rl, i) => {
      for (let n = 0; n < 25; n++) {
        const l = await rl.lock("js:resource", 10000);
        const v = Number(await clients[i].get("js:counter"));
        await clients[i].set("js:counter", String(v + 1));
        await l.unlock();
      }
    })
  );
  assert.strictEqual(await r.get("js:counter"), "50");
  for (const c of clients) c.disconnect();
}

(async () => {
  await hashes();
  await redlock();
  console.log("ok");
  r.disconnect();
})().catch((e) => {
  console.log(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
