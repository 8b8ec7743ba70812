#!/usr/bin/env bash
# System calls and context switches per write on each node of a three-node cluster on
# 127.0.0.1, SET of 256 B over 1,000 keys at CONC clients round-robin over the nodes.
#
# Usage (from the repository root): benches/results/2026-12-07-syscalls-per-write/syscalls.sh BIN CONC
# Needs linux-perf (syscall tracepoints: root or kernel.perf_event_paranoid <= 1) and a
# release build of redraft-loadgen. Counts 5 s in the middle of a 9 s run; prints one line per
# node and counter, "PID counter N/op". The first node listed is the one started first; the
# leader is the node with the most sendto per op.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. benches/lib.sh
REDRAFT_BIN=$1 bench_init
start_cluster 27000 27100
eps=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")
eps=${eps%,}
target/release/redraft-loadgen run --system redraft --endpoints "$eps" --workload set \
    --value-size 256 --concurrency "$2" --duration 9s --warmup 1s >"$WORK/run.json" 2>/dev/null &
lg=$!
sleep 3
events=syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write
events=$events,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64
events=$events,syscalls:sys_enter_pread64,syscalls:sys_enter_fdatasync,context-switches
for p in "${PIDS[@]}"; do
    perf stat -x, -e "$events" -p "$p" -o "$WORK/stat-$p.txt" -- sleep 5 &
done
wait "$lg" || true
sleep 1
tp=$(jq .throughput "$WORK/run.json")
echo "throughput $tp"
for p in "${PIDS[@]}"; do
    awk -F, -v tp="$tp" -v p="$p" '/syscalls|context/ { printf "%s %s %.2f/op\n", p, $3, $1 / (tp * 5) }' \
        "$WORK/stat-$p.txt"
done
