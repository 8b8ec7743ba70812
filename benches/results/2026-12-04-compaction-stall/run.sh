#!/bin/bash
# Usage (from the repository root, after cargo build --release -p redraft -p redraft-loadgen):
#   [HIST=history_revisions] [SNAP=snapshot_every] benches/results/2026-12-04-compaction-stall/run.sh N
BIN=$PWD/target/release/redraft; LG=$PWD/target/release/redraft-loadgen
W=${WORK:-/tmp/compaction-stall}; rm -rf $W; mkdir -p $W
{ echo "[cluster]"; echo 'name = "bench"'
for i in 1 2 3; do echo "[[node]]"; echo "id = $i"; echo "raft_addr = \"127.0.0.1:$((24100 + i))\""; echo "redis_addr = \"127.0.0.1:$((24200 + i))\""; echo "data_dir = \"$W/node$i\""; done
echo "[raft]"; echo "snapshot_every = ${SNAP:-100000}"; echo "[store]"; echo "history_revisions = ${HIST:-100000}"; } > $W/cluster.toml
P=()
for i in 1 2 3; do $BIN --config $W/cluster.toml --node $i --log info 2>$W/node$i.log & P+=($!); done
trap 'kill -9 ${P[@]} 2>/dev/null; wait 2>/dev/null' EXIT
sleep 3
EP=127.0.0.1:24201,127.0.0.1:24202,127.0.0.1:24203
$LG run --system redraft --endpoints $EP --workload set --concurrency 64 --pipeline 16 --total-ops ${1:-95000} >/dev/null
$LG run --system redraft --endpoints $EP --workload watch-latency --mode xread --duration 10s | grep -o '"p50[^}]*'
grep -h 'snapshot built' $W/node*.log | cut -c1-100
