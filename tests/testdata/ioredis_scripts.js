// ioredis's Lua users against one address: defineCommand (EVALSHA, falling back to EVAL on
// NOSCRIPT), a compare-and-delete lock release as lock libraries send it, and a pipeline of
// defined commands. Prints "ok" or the first failure. argv = host port.
const Redis = require("ioredis");
const assert = require("assert");

const [host, port] = process.argv.slice(2);
const r = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1 });

r.defineCommand("release", {
  numberOfKeys: 1,
  lua: "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
});
r.defineCommand("bump", {
  numberOfKeys: 1,
  lua: "return redis.call('incrby', KEYS[1], ARGV[1])",
});

(async () => {
  await r.del("js:lock", "js:n");
  await r.script("FLUSH");
  assert.strictEqual(await r.set("js:lock", "token-1", "PX", 10000, "NX"), "OK");
  assert.strictEqual(await r.release("js:lock", "someone-else"), 0);
  assert.strictEqual(await r.get("js:lock"), "token-1");
  assert.strictEqual(await r.release("js:lock", "token-1"), 1);
  assert.strictEqual(await r.get("js:lock"), null);
  const p = r.pipeline();
  for (let i = 0; i < 10; i++) p.bump("js:n", 2);
  const out = await p.exec();
  assert.deepStrictEqual(out.map(([e, v]) => [e, v]).pop(), [null, 20]);
  assert.strictEqual(await r.evalsha("0".repeat(40), 0).catch((e) => e.message.split(" ")[0]), "NOSCRIPT");
  console.log("ok");
})()
  .catch((e) => console.log(`failed: ${e.stack}`))
  .finally(() => r.disconnect());
