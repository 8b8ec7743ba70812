#!/usr/bin/env python3
"""Inline command (sdssplitargs) differential: random inline lines, replies compared."""
import random, socket, sys
from fuzz import Conn, OURS, THEIRS, Closed

ALPHA = ['a', 'b', ' ', ' ', '"', '"', "'", "'", '\\', 'x', '4', '1', 'f', 'g', 'n', 't', '\t', 'r', '0', '\xff', 'z']


def line(r):
    body = ''.join(r.choice(ALPHA) for _ in range(r.randint(0, 14)))
    head = r.choice(['ECHO ', 'echo ', 'SET k ', 'MGET ', 'PING ', '', 'ECHO "', "ECHO '", ' ECHO ', 'HSET h '])
    return (head + body).encode('latin1')


def talk(addr, data):
    c = Conn(addr)
    c.s.sendall(data + b'PING\r\n')
    out = []
    try:
        for _ in range(2):
            out.append(c.read()[0])
    except (Closed, OSError) as e:
        out.append(b'<closed>')
    c.close()
    return out


def main():
    seeds = [int(x) for x in sys.argv[1].split(',')]
    n = int(sys.argv[2])
    total = diffs = 0
    for seed in seeds:
        r = random.Random(seed)
        for i in range(n):
            l = line(r)
            end = r.choice([b'\r\n', b'\r\n', b'\n'])
            data = l + end
            a, b = talk(OURS, data), talk(THEIRS, data)
            total += 1
            if a != b:
                diffs += 1
                print('DIFF seed=%d i=%d %r\n  redraft %r\n  redis   %r' % (seed, i, data, a, b))
        print('seed %d done' % seed, flush=True)
    print('TOTAL lines %d diffs %d' % (total, diffs))


main()
