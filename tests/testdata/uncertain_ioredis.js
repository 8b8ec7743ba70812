// One INCR through ioredis with its default settings (reconnectOnError unset,
// maxRetriesPerRequest and retryStrategy as shipped): prints the error's name and
// message, or "no error <value>". Used by tests/compat/uncertain_replies.rs: argv = host port key.
const Redis = require("ioredis");

const [host, port, key] = process.argv.slice(2);
const r = new Redis({ host, port: Number(port) });
r.incr(key)
  .then((v) => console.log(`no error ${v}`))
  .catch((e) => console.log(`${e.name}: ${e.message}`))
  .finally(() => r.disconnect());
