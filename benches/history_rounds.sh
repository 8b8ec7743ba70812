#!/usr/bin/env bash
# How write throughput holds as history grows: one three-node cluster (shipped history cap),
# ROUNDS rounds of SET 256 B at 64 clients over 1,000 keys, and between rounds each node's RSS,
# data-dir files/MB and the leader's snapshot counters, revision and compact revision.
#
# Usage: [REDRAFT_BIN=path] [ROUNDS=6] [DUR=8s] [PERF_ROUND=N] benches/history_rounds.sh [OUT.jsonl]
#
# PERF_ROUND=N records the leader with `perf record -g` (499 Hz, 5 s) during round N into
# perf-round.data beside OUT. Compare two builds by running it once per build, alternately.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
OUT=${1:-/tmp/history_rounds.jsonl}
rm -f "$OUT"
need_tools redis-cli jq
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
export BENCH_PORT_BASE=27000
start_cluster 27000 27100
EPS=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}"); EPS=${EPS%,}
SP=$(IFS=,; echo "${PIDS[*]}")
for r in $(seq 1 "${ROUNDS:-6}"); do
    if [ "$r" = "${PERF_ROUND:-0}" ]; then
        (sleep 3; perf record -F 499 -g -p "${PIDS[$((LEADER - 27101))]}" \
            -o "$(dirname "$OUT")/perf-round.data" -- sleep 5 >/dev/null 2>&1) &
    fi
    "$LG" run --out "$OUT" --rep "$r" --system redraft --label rounds --endpoints "$EPS" \
        --workload set --value-size 256 --concurrency 64 --duration "${DUR:-8s}" --warmup 1s \
        --server-pids "$SP" >/dev/null
    thr=$(tail -1 "$OUT" | jq -r '.throughput|floor')
    cpu=$(tail -1 "$OUT" | jq -r '.server_cpu.us_per_op|floor')
    rss=$(for p in "${PIDS[@]}"; do awk '/VmRSS/{printf "%d ", $2/1024}' "/proc/$p/status"; done)
    dirs=$(for i in 1 2 3; do printf "%s/%s " "$(find "$WORK/node$i" -type f | wc -l)" "$(du -sm "$WORK/node$i" | cut -f1)"; done)
    info=$(redis-cli -p "$LEADER" INFO raft | tr -d '\r' |
        grep -E "snapshot_builds|snapshot_deltas|snapshot_bytes|^revision|compact_revision" | tr '\n' ' ')
    echo "round $r writes/s $thr cpu_us/write $cpu rss_mb $rss files/mb $dirs| $info"
done
