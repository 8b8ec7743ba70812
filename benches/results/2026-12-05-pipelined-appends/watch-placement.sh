#!/bin/bash
# watch latency by placement: writer endpoint, watcher endpoint
cd "$(dirname "$0")/../../.."   # the repository root
source benches/lib.sh
REDRAFT_BIN=${REDRAFT_BIN:-$PWD/target/release/redraft}
bench_init
start_cluster 27000 27100
LG=target/release/redraft-loadgen
others=($(for p in "${CLUSTER_PORTS[@]}"; do [ "$p" != "$LEADER" ] && echo $p; done))
F1=${others[0]}; F2=${others[1]}
echo "leader $LEADER followers $F1 $F2"
for rep in 1 2 3; do
 for pl in "L F1" "F1 F2" "F1 L" "L L"; do
  set -- $pl
  a=$LEADER; [ $1 = F1 ] && a=$F1
  b=$F1; [ $2 = F2 ] && b=$F2; [ $2 = L ] && b=$LEADER
  for mode in ${MODES:-keyspace}; do
  r=$($LG run --system redraft --endpoints 127.0.0.1:$a,127.0.0.1:$b --workload watch-latency --mode $mode --duration 4s --value-size 256 2>/dev/null | tail -1)
  echo "$rep $pl $mode $(echo "$r" | python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency_ms"]; print(l.get("p50"), l.get("p99"))')"
  done
 done
done
