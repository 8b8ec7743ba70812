"""One INCR through redis-py with its default settings (no retry object, no retry_on_error):
prints the exception's class and message, or "no error <value>". Used by
tests/compat/uncertain_replies.rs: argv = host port key."""
import sys

import redis

host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = redis.Redis(host=host, port=port)
try:
    print("no error %r" % r.incr(key))
except Exception as e:  # noqa: BLE001 - the test wants whatever surfaced
    print("%s.%s: %s" % (type(e).__module__, type(e).__name__, e))
