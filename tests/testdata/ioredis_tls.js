// ioredis over TLS (its `tls` option) against a redraft node's tls_addr, with the cluster's CA
// and a client certificate; Node's TLS checks that the certificate names the host. Then a
// pipeline. Prints "ok" or the first failure. argv = host port ca cert key.
const fs = require("fs");
const Redis = require("ioredis");
const assert = require("assert");

const [host, port, ca, cert, key] = process.argv.slice(2);
const r = new Redis({
  host,
  port: Number(port),
  maxRetriesPerRequest: 1,
  tls: { ca: fs.readFileSync(ca), cert: fs.readFileSync(cert), key: fs.readFileSync(key) },
});

(async () => {
  assert.strictEqual(await r.set("js:tls", "v"), "OK");
  assert.strictEqual(await r.get("js:tls"), "v");
  const p = r.pipeline();
  for (let i = 0; i < 50; i++) p.incr("js:tls:n");
  const out = await p.exec();
  assert.deepStrictEqual(out.pop(), [null, 50]);
  console.log("ok");
  r.disconnect();
})().catch((e) => {
  console.log("failed: " + (e && e.stack ? e.stack : e));
  r.disconnect();
  process.exit(1);
});
