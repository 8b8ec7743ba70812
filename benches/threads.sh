#!/usr/bin/env bash
# Where a workload's server CPU goes, by thread, with no profiler attached: a three-node
# cluster under one redraft-loadgen workload, each node's CPU time (user + system, from
# /proc/PID/task/TID/stat) per thread kind over the measured time, per operation.
#
# Usage: benches/threads.sh [--workload set|get|mixed] [--mode M] [--concurrency 64]
#                           [--pipeline 1] [--seconds 8] [--endpoints all|leader|followers]
#                           [--out DIR]
#
# Starts a cluster on 127.0.0.1 (BENCH_PORT_BASE, default 26200, + 1..3 raft, + 101..103
# redis), runs the workload for 2 s untimed, then for `--seconds` with every node's threads
# read before and after (256 B values over 1,000 keys; clients round-robin over the three
# nodes). Threads that ended during the run (each snapshot is encoded and written on a
# `snapshot-write` thread of its own; tokio's blocking pool) are not in /proc at the end:
# their time is the process's total (which keeps the time of ended threads) less the time of
# the threads listed, reported as "ended threads". Writes DIR (default a temp dir, printed):
# run.json (the load generator's result) and threads.md (µs of CPU per operation per thread
# kind and node, and each kind's share of that node's CPU).
#
# `perf` in this VM has no hardware counters: its timer samples land where interrupts are
# turned back on (`finish_task_switch`, `_raw_spin_unlock_irqrestore`) and it put 15 % of a
# follower's samples under `-P 16` in the WAL's spare thread, which used 1-3 % of its CPU
# time here. Use this for the shares, `profile.sh` for what runs inside a thread.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

WL=set MODE="" CONC=64 PIPE=1 SECS=8 OUT="" ENDPOINTS=all
while [ $# -gt 0 ]; do
    case $1 in
        --workload) WL=$2; shift ;;
        --mode) MODE=$2; shift ;;
        --concurrency) CONC=$2; shift ;;
        --pipeline) PIPE=$2; shift ;;
        --seconds) SECS=$2; shift ;;
        --endpoints) ENDPOINTS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--workload W] [--mode M] [--concurrency N] [--pipeline P] [--seconds S] [--endpoints all|leader|followers] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
need_tools redis-cli jq
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
BASE=${BENCH_PORT_BASE:-26200}
need_free_ports $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 101)) $((BASE + 102)) $((BASE + 103))
start_cluster "$BASE" $((BASE + 100))
NODE_PIDS=("${PIDS[@]}")
endpoints=$(cluster_endpoints "$ENDPOINTS")

# cpu_ticks: "node tid kind user system" for every thread of the nodes, and "node total
# total user system" for each process (its total keeps the time of threads that have ended).
# Fields 14 and 15 of stat count after the ")" that ends the name, which may hold spaces: cut
# there.
cpu_ticks() {
    local i=0 p t
    for p in "${NODE_PIDS[@]}"; do
        i=$((i + 1))
        echo "$i total total $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12, $13 }')"
        for t in /proc/"$p"/task/*; do
            echo "$i ${t##*/} $(tr ' ' _ <"$t/comm" 2>/dev/null) $(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $12, $13 }')"
        done
    done
}

run() {
    "$LG" run --system redraft --endpoints "$endpoints" --workload "$WL" --mode "$MODE" \
        --value-size 256 --concurrency "$CONC" --pipeline "$PIPE" --warmup 0s \
        --server-pids "$(IFS=,; echo "${NODE_PIDS[*]}")" "$@"
}
run --duration 2s >/dev/null 2>"$WORK/warmup.log"
cpu_ticks >"$WORK/before"
run --duration "${SECS}s" >"$OUT/run.json" 2>"$WORK/loadgen.log"
cpu_ticks >"$WORK/after"
cp "$WORK/before" "$WORK/after" "$OUT/"
ops=$(jq '.ops' "$OUT/run.json")
hz=$(getconf CLK_TCK)
role() { [ "${CLUSTER_PORTS[$(($1 - 1))]}" = "$LEADER" ] && echo leader || echo follower; }
{
    suffix=""
    [ "$PIPE" = 1 ] || suffix=", pipeline $PIPE"
    echo "# Server CPU by thread: $WL${MODE:+ ($MODE)}, $CONC clients$suffix, ${SECS} s"
    echo
    jq -c '{throughput, p50: .latency_ms.p50, p99: .latency_ms.p99, cpu_us_per_op: .server_cpu.us_per_op}' "$OUT/run.json"
    echo
    echo "µs of CPU per operation, user + system (the kernel's part: system calls, the network"
    echo "stack, the scheduler, page cache and block layer), and the share of that node's CPU; a"
    echo "thread kind's threads summed."
    echo
    echo "| node | thread kind | µs per op | of which system | share |"
    echo "|---|---|---:|---:|---:|"
    for i in 1 2 3; do
        # Threads present at both reads, by kind; the process's total; the rest is "ended threads".
        join <(awk -v n=$i '$1 == n { print $2, $3, $4, $5 }' "$WORK/before" | sort) \
            <(awk -v n=$i '$1 == n { print $2, $4, $5 }' "$WORK/after" | sort) |
            awk -v ops="$ops" -v hz="$hz" -v node="$i ($(role $i))" '
                function us(t) { return t / hz * 1e6 / ops }
                $1 == "total" { tu = $5 - $3; ts = $6 - $4; next }
                { u[$2] += $5 - $3; s[$2] += $6 - $4; lu += $5 - $3; ls += $6 - $4 }
                END {
                    u["ended threads"] = tu - lu; s["ended threads"] = ts - ls
                    for (k in u) if (u[k] + s[k] > 0)
                        printf "| %s | %s | %.2f | %.2f | %.1f %% |\n", node, k, us(u[k] + s[k]), us(s[k]), 100 * (u[k] + s[k]) / (tu + ts)
                    printf "| %s | **all** | **%.2f** | **%.2f** | |\n", node, us(tu + ts), us(ts)
                }' | sort -t'|' -k4,4nr
    done
} >"$OUT/threads.md"
cat "$OUT/threads.md"
echo "results in $OUT" >&2
