#!/bin/bash
# usage: [REDRAFT_BIN=PATH] [CLUSTER_EXTRA_TOML=FILE] [N=150000] [ROUNDS=4] \
#        benches/redis_benchmark_p16.sh LABEL
# A three-node cluster (benches/lib.sh's start_cluster; this checkout's release build unless
# REDRAFT_BIN names another), then ROUNDS rounds of `redis-benchmark -t set -c 50 -P 16` (N
# requests each) at its leader. Prints one line per round: LABEL, requests/s, p50 ms, p99 ms,
# and the server CPU (user + system of all three nodes, from /proc/PID/stat) per request in
# µs; then the leader's snapshot counters. Run from the checkout's root; BENCH_PORT_BASE moves
# the ports (default 18400). To compare two builds, run it once per build, interleaved.
set -euo pipefail
label=$1
. benches/lib.sh
bench_init
base=${BENCH_PORT_BASE:-18400}
start_cluster "$base" $((base + 100))
ticks=$(getconf CLK_TCK)
cpu() {
    local t=0 p
    for p in "${PIDS[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}
n=${N:-150000}
for _ in $(seq 1 "${ROUNDS:-4}"); do
    c0=$(cpu)
    line=$(redis-benchmark -q --csv -p "$LEADER" -n "$n" -c 50 -P 16 -t set 2>/dev/null |
        tail -1 | awk -F, '{gsub(/"/, ""); print $2, $5, $7}')
    c1=$(cpu)
    echo "$label $line $(awk -v t=$((c1 - c0)) -v n="$n" -v hz="$ticks" \
        'BEGIN {printf "%.2f", t * 1e6 / hz / n}')"
done
redis-cli -p "$LEADER" INFO raft | grep -i snapshot | tr -d '\r' | head -5
