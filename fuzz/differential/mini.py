#!/usr/bin/env python3
"""Replays a seed's history up to index i, then minimises it (ddmin) keeping the last command's
mismatch. Usage: mini.py seed i [n]"""
import sys, random
import fuzz
SEED = 0
from fuzz import Conn, OURS, THEIRS, normalised, Gen, show


def history(seed, n):
    rng = random.Random(seed)
    g = Gen(rng)
    h = []
    inm = [False, False]
    for _ in range(n):
        ci = 0 if rng.random() < 0.8 else 1
        cmd = g.command(inm[ci])
        h.append((ci, cmd))
        nm = cmd[0].lstrip(b'@').upper()
        # approximate MULTI tracking (the fuzzer tracks from replies)
    return h


def replay(cmds, verbose=False):
    ours, theirs = fuzz.connect()
    if SEED % 2:
        for c in (ours[0], theirs[0]):
            c.call([b'HELLO', b'3'])
    res = None
    try:
        for j, (ci, item) in enumerate(cmds):
            log = print if verbose else (lambda *a: None)
            if verbose:
                print('  [%d] %s' % (ci, ('PIPE ' + ' ; '.join(show(x) for x in item[1])) if item[0] == 'PIPE' else show(item)))
            res = bool(fuzz.step(0, j, ci, item, ours, theirs, log))
    except fuzz.Closed as e:
        print('closed', e)
        res = True
    finally:
        for c in ours + theirs:
            c.close()
    return res


def ddmin(cmds):
    last = cmds[-1]
    body = cmds[:-1]
    n = 2
    while len(body) >= 1:
        chunk = max(1, len(body) // n)
        removed = False
        for start in range(0, len(body), chunk):
            cand = body[:start] + body[start + chunk:]
            if replay(cand + [last]):
                body = cand
                n = max(n - 1, 2)
                removed = True
                break
        if not removed:
            if chunk == 1:
                break
            n = min(len(body), n * 2)
    return body + [last]


if __name__ == '__main__':
    seed, i = int(sys.argv[1]), int(sys.argv[2])
    SEED = seed
    _, _, h = fuzz.run(seed, i + 1, lambda *a: None)
    assert replay(h), 'no mismatch on replay'
    m = ddmin(h)
    replay(m, verbose=True)
