#!/usr/bin/env python3
"""INCRBYFLOAT / HINCRBYFLOAT / INCRBY number parsing and formatting, differential."""
import random, sys
from fuzz import Conn, OURS, THEIRS


def rnum(r):
    k = r.random()
    sign = r.choice(['', '-', '', '+'])
    if k < 0.3:
        return sign + str(r.randint(0, 10 ** r.randint(1, 20)))
    if k < 0.6:
        return sign + '%d.%0*d' % (r.randint(0, 10 ** r.randint(0, 10)), r.randint(1, 20), r.randint(0, 10 ** 12))
    if k < 0.75:
        return sign + '%de%d' % (r.randint(1, 99999), r.randint(-330, 330))
    if k < 0.85:
        return sign + repr(r.uniform(-1e6, 1e6))
    if k < 0.9:
        return sign + '0x%x' % r.randint(0, 2 ** 40) + r.choice(['', 'p3', 'p-2', '.8p1'])
    return r.choice(['inf', '-inf', 'nan', '1e4932', '1e-4950', '1.18973149535723176502e+4932', '0', '-0',
                     '0.1', '5000', '3.0', '1e', 'e5', '1.2.3', '', ' 1', '1 ', '00012', '1_0', '١',
                     '9223372036854775807', '-9223372036854775808', '1e400', '4.9406564584124654e-324',
                     '1.7976931348623157e308', '0.30000000000000004', '123456789012345678901234567890'])


def main():
    seeds = [int(x) for x in sys.argv[1].split(',')]
    n = int(sys.argv[2])
    total = diffs = 0
    for seed in seeds:
        r = random.Random(seed)
        a, b = Conn(OURS), Conn(THEIRS)
        for c in (a, b):
            c.call([b'FLUSHALL'])
        for i in range(n):
            x, y = rnum(r).encode(), rnum(r).encode()
            kind = r.random()
            if kind < 0.4:
                cmds = [[b'SET', b'f', x], [b'INCRBYFLOAT', b'f', y], [b'GET', b'f']]
            elif kind < 0.7:
                cmds = [[b'HSET', b'h', b'f', x], [b'HINCRBYFLOAT', b'h', b'f', y], [b'HGET', b'h', b'f']]
            elif kind < 0.85:
                cmds = [[b'SET', b'i', x], [b'INCRBY', b'i', y], [b'DECRBY', b'i', y], [b'INCR', b'i']]
            else:
                cmds = [[b'HSET', b'h', b'i', x], [b'HINCRBY', b'h', b'i', y]]
            for cmd in cmds:
                ra, rb = a.call(cmd)[0], b.call(cmd)[0]
                total += 1
                if ra != rb:
                    diffs += 1
                    print('DIFF seed=%d i=%d %r (x=%r y=%r)\n  redraft %r\n  redis   %r' % (seed, i, cmd, x, y, ra, rb))
                    break
        print('seed %d done' % seed, flush=True)
    print('TOTAL commands %d diffs %d' % (total, diffs))


main()
