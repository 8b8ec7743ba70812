#!/bin/bash
# usage: REDRAFT_BIN=PATH [CLUSTER_EXTRA_TOML=FILE] [N=80000] redis-benchmark-p16.sh LABEL
# A three-node cluster of that binary (benches/lib.sh's start_cluster), then 4 rounds of
# redis-benchmark -t set -c 50 -P 16 (N requests) at its leader; prints LABEL, requests/s,
# p50 ms, p99 ms per round, then the leader's snapshot counters. Run from the checkout's root;
# BENCH_PORT_BASE moves the ports (default 18400).
set -euo pipefail
label=$1
. benches/lib.sh
bench_init
base=${BENCH_PORT_BASE:-18400}
start_cluster "$base" $((base + 100))
for _ in 1 2 3 4; do
    redis-benchmark -q --csv -p "$LEADER" -n "${N:-80000}" -c 50 -P 16 -t set 2>/dev/null |
        tail -1 | awk -F, -v l="$label" '{gsub(/"/, ""); print l, $2, $5, $7}'
done
redis-cli -p "$LEADER" INFO raft | grep -i snapshot | tr -d '\r' | head -5
