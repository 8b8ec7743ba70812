#!/bin/bash
# usage: redis-benchmark-p16.sh LABEL BIN EXTRA_TOML_FILE BASEPORT: a three-node cluster of BIN,
# then 4 rounds of redis-benchmark -t set -c 50 -P 16 (N requests, default 80,000) at its leader;
# prints LABEL, requests/s, p50 ms, p99 ms per round.
label=$1 bin=$2 extra=$3 base=$4
W=${TMPDIR:-/tmp}/p16/$label; rm -rf $W; mkdir -p $W
{ echo "[cluster]"; echo 'name = "bench"'
  for i in 1 2 3; do echo "[[node]]"; echo "id = $i"; echo "raft_addr = \"127.0.0.1:$((base+i))\""; echo "redis_addr = \"127.0.0.1:$((base+100+i))\""; echo "data_dir = \"$W/node$i\""; done
  [ -n "$extra" ] && cat "$extra"; } > $W/cluster.toml
pids=()
for i in 1 2 3; do $bin --config $W/cluster.toml --node $i --log warn 2>$W/node$i.log & pids+=($!); done
L=""; for _ in $(seq 100); do for i in 1 2 3; do p=$((base+100+i)); [ "$(redis-cli -p $p ROLE 2>/dev/null|head -1)" = master ] && L=$p; done; [ -n "$L" ] && break; sleep 0.1; done
for r in 1 2 3 4; do redis-benchmark -q --csv -p $L -n ${N:-80000} -c 50 -P 16 -t set 2>/dev/null | tail -1 | awk -F, -v l=$label '{gsub(/"/,""); print l, $2, $5, $7}'; done
redis-cli -p $L INFO raft | grep -i snapshot | tr -d '\r' | head -5
kill ${pids[@]}; wait 2>/dev/null
