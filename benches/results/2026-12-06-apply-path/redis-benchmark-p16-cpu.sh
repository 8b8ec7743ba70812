#!/bin/bash
# usage: REDRAFT_BIN=PATH [N=150000] redis-benchmark-p16-cpu.sh LABEL
# A three-node cluster of that binary (benches/lib.sh's start_cluster), then 4 rounds of
# redis-benchmark -t set -c 50 -P 16 (N requests) at its leader; prints LABEL, requests/s and
# the server CPU (user + system, all three nodes, from /proc/PID/stat) per request in µs.
# Run from the checkout's root; BENCH_PORT_BASE moves the ports (default 18400).
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
for _ in 1 2 3 4; do
    c0=$(cpu)
    r=$(redis-benchmark -q --csv -p "$LEADER" -n "$n" -c 50 -P 16 -t set 2>/dev/null |
        tail -1 | awk -F, '{gsub(/"/, ""); print $2}')
    c1=$(cpu)
    echo "$label $r $(awk -v t=$((c1 - c0)) -v n="$n" -v hz="$ticks" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')"
done
