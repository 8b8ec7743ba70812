"""redis-py over TLS against a redraft node's tls_addr; prints "ok" when every check passed.

usage: redis_py_tls.py HOST PORT CA_CERT CLIENT_CERT CLIENT_KEY MODE
MODE "mutual": the node asks for client certificates (tls-auth-clients yes): with one,
  commands work and the server certificate's name is checked; without one, the connection
  fails.
MODE "optional": tls-auth-clients optional: without a client certificate, commands work.
MODE "wrong-host": the node's certificate does not name HOST: hostname checking refuses it,
  and the same connection without hostname checking works.
"""
import ssl
import sys

import redis

host, port, ca, cert, key, mode = sys.argv[1:7]
port = int(port)


def client(with_cert=True, check_hostname=True):
    kw = dict(host=host, port=port, ssl=True, ssl_ca_certs=ca,
              ssl_check_hostname=check_hostname, ssl_cert_reqs="required",
              socket_timeout=10, decode_responses=True)
    if with_cert:
        kw.update(ssl_certfile=cert, ssl_keyfile=key)
    return redis.Redis(**kw)


def fails(r):
    try:
        r.ping()
    except (redis.exceptions.ConnectionError, ssl.SSLError, OSError) as e:
        return str(e)
    return None


if mode == "mutual":
    r = client()
    assert r.set("tls:py", "v1") is True
    assert r.get("tls:py") == "v1"
    assert r.incr("tls:py:n") >= 1
    why = fails(client(with_cert=False))
    assert why is not None, "a client without a certificate was served"
elif mode == "optional":
    r = client(with_cert=False)
    assert r.set("tls:py:anon", "v2") is True
    assert r.get("tls:py:anon") == "v2"
    assert client().get("tls:py:anon") == "v2"
elif mode == "wrong-host":
    why = fails(client())
    assert why is not None, "a certificate for another host was accepted"
    assert "match" in why or "hostname" in why.lower(), why
    assert client(check_hostname=False).ping() is True
else:
    sys.exit("unknown mode " + mode)
print("ok")
