#!/bin/bash
# The exact procedure behind watch/summary.md (run from /tmp/snapdiag on 2026-12-02; paths as then).
# usage: watch.sh BIN TAG PORTBASE -> XREAD and keyspace put-to-event latency while every node
# takes RAFT.SNAPSHOT every second (20,000 preloaded keys), and without.
BIN=$1; TAG=$2; PB=$3; W=/tmp/snapdiag/w-$TAG; rm -rf $W; mkdir -p $W
LG=${LG:-target/release/redraft-loadgen}   # run from the repository root, or set LG
{
echo '[cluster]'; echo "name = \"w\""
for i in 1 2 3; do echo '[[node]]'; echo "id = $i"; echo "raft_addr = \"127.0.0.1:$((PB+i))\""; echo "redis_addr = \"127.0.0.1:$((PB+100+i))\""; echo "data_dir = \"$W/n$i\""; done
echo '[raft]'; echo 'snapshot_every = 1000000000'
echo '[store]'; echo 'history_revisions = 100000'
} > $W/c.toml
PIDS=()
for i in 1 2 3; do $BIN --config $W/c.toml --node $i --log warn >$W/n$i.log 2>&1 & PIDS+=($!); done
trap 'kill -9 ${PIDS[@]} ${SL:-} 2>/dev/null' EXIT
for _ in $(seq 100); do for i in 1 2 3; do redis-cli -p $((PB+100+i)) ROLE 2>/dev/null | grep -qx master && L=$i; done; [ -n "$L" ] && break; sleep 0.2; done
EPS=127.0.0.1:$((PB+101)),127.0.0.1:$((PB+102)),127.0.0.1:$((PB+103))
$LG run --system redraft --label pre --endpoints $EPS --workload fill --keys 20000 --value-size 256 --concurrency 16 --pipeline 16 --total-ops 60000 >/dev/null 2>>$W/lg.log
for rep in 1 2 3; do
  for mode in xread keyspace; do
    $LG run --out $W/res.jsonl --rep $rep --system redraft --label nosnap-$mode --endpoints $EPS --workload watch-latency --mode $mode --duration 4s --value-size 256 >/dev/null 2>>$W/lg.log
    ( while true; do for i in 1 2 3; do redis-cli -p $((PB+100+i)) RAFT.SNAPSHOT >/dev/null 2>&1 & done; wait; sleep 1; done ) & SL=$!
    $LG run --out $W/res.jsonl --rep $rep --system redraft --label snap-$mode --endpoints $EPS --workload watch-latency --mode $mode --duration 4s --value-size 256 >/dev/null 2>>$W/lg.log
    kill $SL; wait $SL 2>/dev/null
  done
done
python3 - $W/res.jsonl <<'PY'
import json,sys,statistics
rs=[json.loads(l) for l in open(sys.argv[1])]
by={}
for r in rs: by.setdefault(r['system'],[]).append(r)
for k in sorted(by):
    v=by[k]; print(k, 'p50', statistics.median(r['latency_ms']['p50'] for r in v), 'p99', [r['latency_ms']['p99'] for r in v], 'max', [r['latency_ms']['max'] for r in v], 'events', [r['ops'] for r in v])
PY
