#!/usr/bin/env bash
# SET throughput and latency, A/B: two or more redraft binaries side by side in the same run.
#
# Usage: benches/set_ab.sh [--bin LABEL=PATH]... [--failpoints LABEL=SPEC]...
#                          [--config LABEL=TOML]... [--reps N]
#                          [--duration D] [--warmup W] [--concurrency "1 64 256"]
#                          [--workload set|get|mixed|watch-latency] [--mode M] [--pipeline P]
#                          [--preload N] [--endpoints all|leader|followers] [--out DIR]
#
# For every binary (default: this checkout's release build, labelled "this"), a three-node
# cluster on 127.0.0.1 with the shipped timings. Then, repeated N times (default 3) and
# interleaved over the binaries and concurrencies so that machine noise hits each alike:
# `redraft-loadgen run --workload set` of 256 B values over 1,000 keys, clients round-robin
# over the three nodes, for D (default 5s) after W (default 1s) of warm-up, with every node's
# CPU time per write (`--server-pids`). `--workload get --mode lease` measures GET in a read
# mode instead (the keys are written first by the workload itself); `--workload watch-latency`
# the put → event delay (a put every 10 ms on the first node, the event on the second;
# `--mode keyspace`, the default, or `xread`). `--pipeline P` has every
# client keep P requests in flight (as `redis-benchmark -P`; default 1). `--failpoints LABEL=SPEC`
# starts that binary's nodes with `REDRAFT_FAILPOINTS=SPEC` (test-only failpoints,
# `src/raft/log_store.rs`; e.g. `committed_sync_off`, which `benches/committed_sync.sh` uses).
# `--config LABEL=TOML` appends the file TOML (e.g. a `[raft]` or `[store]` section) to that
# cluster's `cluster.toml`; the same binary may run under two labels with different configs
# (`--bin a=PATH --bin b=PATH --config b=nosnap.toml`). `--preload N` first writes N SETs
# (256 B over the same 1,000 keys, 256 clients) to every cluster, untimed: with N past the
# default history cap (1,000,000 revisions) every run is in the steady state a long-lived
# cluster under writes reaches, where each write also pays automatic compaction and the
# snapshots carry a full history window.
#
# `--endpoints leader` sends every client to the leader, `followers` spreads them over the two
# followers (every write forwarded), `all` (the default) round-robin over the three nodes as
# `compare.sh` does: what forwarding costs.
#
# Writes DIR/results.jsonl (every run), DIR/table.md (loadgen's tables), DIR/summary.md
# (per binary and concurrency: the median over the repetitions of throughput, p50, p99, CPU µs
# per write and log syncs per write over all nodes (`INFO raft` `raft_log_syncs`), and each
# run's throughput) and DIR/info-raft-LABEL-N.txt (each node's `INFO raft` at the end). Only
# one cluster takes load at a time; the others idle (heartbeats). Processes are stopped by PID
# on exit. Ports: BENCH_PORT_BASE (default 25200) + 10*b + 1..3 (raft) and + 500 (redis).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

BINS=()
declare -A FAILPOINTS CONFIGS
REPS=3 DUR=5s WARM=1s CONCS="1 64 256" WL=set MODE="" PIPE=1 OUT="" PRELOAD=0 ENDPOINTS=all
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BINS+=("$2"); shift ;;
        --failpoints) FAILPOINTS[${2%%=*}]=${2#*=}; shift ;;
        --config) CONFIGS[${2%%=*}]=${2#*=}; shift ;;
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --warmup) WARM=$2; shift ;;
        --concurrency) CONCS=$2; shift ;;
        --workload) WL=$2; shift ;;
        --mode) MODE=$2; shift ;;
        --pipeline) PIPE=$2; shift ;;
        --preload) PRELOAD=$2; shift ;;
        --endpoints) ENDPOINTS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--bin LABEL=PATH]... [--failpoints LABEL=SPEC]... [--config LABEL=TOML]... [--reps N] [--duration D] [--warmup W] [--concurrency \"1 64 256\"] [--workload W] [--mode M] [--pipeline P] [--preload N] [--endpoints all|leader|followers] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
# The watch workload needs a mechanism; keyspace notifications unless told (`--mode xread`).
[ "$WL" != watch-latency ] || [ -n "$MODE" ] || MODE=keyspace
case $ENDPOINTS in all | leader | followers) ;; *) echo "--endpoints: all, leader or followers" >&2; exit 2 ;; esac
need_tools redis-cli
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
[ ${#BINS[@]} -gt 0 ] || BINS=("this=$BIN")
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-set-ab}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BASE=${BENCH_PORT_BASE:-25200}
: >"$OUT/results.jsonl"

LABELS=()
declare -A EPS SPIDS
b=0
for spec in "${BINS[@]}"; do
    label=${spec%%=*} path=${spec#*=}
    [ -x "$path" ] || { echo "not an executable: $path" >&2; exit 2; }
    LABELS+=("$label")
    raft=$((BASE + 10 * b)) redis=$((BASE + 500 + 10 * b))
    need_free_ports $((raft + 1)) $((raft + 2)) $((raft + 3)) $((redis + 1)) $((redis + 2)) $((redis + 3))
    {
        echo "[cluster]"
        echo "name = \"setab-$label\""
        for i in 1 2 3; do
            echo "[[node]]"
            echo "id = $i"
            echo "raft_addr = \"127.0.0.1:$((raft + i))\""
            echo "redis_addr = \"127.0.0.1:$((redis + i))\""
            echo "data_dir = \"$WORK/$label-$i\""
        done
        if [ -n "${CONFIGS[$label]:-}" ]; then cat "${CONFIGS[$label]}"; fi
    } >"$WORK/$label.toml"
    for i in 1 2 3; do
        pid_start "$label-$i" env REDRAFT_FAILPOINTS="${FAILPOINTS[$label]:-}" \
            "$path" --config "$WORK/$label.toml" --node "$i" --log warn
    done
    EPS[$label]="127.0.0.1:$((redis + 1)),127.0.0.1:$((redis + 2)),127.0.0.1:$((redis + 3))"
    SPIDS[$label]=$(cat "$WORK/pids/$label-1.pid"),$(cat "$WORK/pids/$label-2.pid"),$(cat "$WORK/pids/$label-3.pid")
    leader=""
    for _ in $(seq 1 300); do
        for i in 1 2 3; do
            redis-cli -p $((redis + i)) ROLE 2>/dev/null | grep -qx master && leader=$i
        done
        [ -n "$leader" ] && break
        sleep 0.2
    done
    [ -n "$leader" ] || { echo "$label: no leader; logs in $WORK" >&2; tail -5 "$WORK"/*.log >&2; exit 1; }
    if [ "$ENDPOINTS" != all ]; then
        eps=""
        for i in 1 2 3; do
            if { [ "$ENDPOINTS" = leader ] && [ "$i" = "$leader" ]; } ||
                { [ "$ENDPOINTS" = followers ] && [ "$i" != "$leader" ]; }; then
                eps="$eps${eps:+,}127.0.0.1:$((redis + i))"
            fi
        done
        EPS[$label]=$eps
    fi
    b=$((b + 1))
done

if [ "$PRELOAD" -gt 0 ]; then
    for label in "${LABELS[@]}"; do
        "$LG" run --out "$OUT/preload.jsonl" --system redraft --label "$label" \
            --endpoints "${EPS[$label]}" --workload set --value-size 256 --concurrency 256 \
            --total-ops "$PRELOAD" --warmup 0s --duration 3600s >/dev/null 2>>"$OUT/loadgen.log" ||
            { echo "preload failed (see loadgen.log): $label" >&2; exit 1; }
        echo "set_ab.sh: $label preloaded with $PRELOAD writes" >&2
    done
fi

for rep in $(seq 1 "$REPS"); do
    for c in $CONCS; do
        for label in "${LABELS[@]}"; do
            if ! "$LG" run --out "$OUT/results.jsonl" --rep "$rep" --system redraft \
                --label "$label" --endpoints "${EPS[$label]}" --workload "$WL" --mode "$MODE" --value-size 256 \
                --concurrency "$c" --pipeline "$PIPE" --duration "$DUR" --warmup "$WARM" \
                --server-pids "${SPIDS[$label]}" >/dev/null 2>>"$OUT/loadgen.log"; then
                echo "run failed (see loadgen.log): $label c=$c rep $rep" | tee -a "$OUT/loadgen.log" >&2
            fi
        done
    done
    echo "set_ab.sh: repetition $rep of $REPS done" >&2
done

# Every node's raft counters at the end (`INFO raft`: syncs, announcements, probes skipped...).
b=0
for label in "${LABELS[@]}"; do
    for i in 1 2 3; do
        redis-cli -p $((BASE + 500 + 10 * b + i)) INFO raft >"$OUT/info-raft-$label-$i.txt" 2>&1 || true
    done
    b=$((b + 1))
done

"$LG" table "$OUT/results.jsonl" >"$OUT/table.md"
{
    echo "# ${WL^^}${MODE:+ ($MODE)} A/B: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- $WL${MODE:+ ($MODE)} of 256 B over 1,000 keys, clients $(case $ENDPOINTS in all) echo "round-robin over three nodes" ;; leader) echo "all on the leader" ;; *) echo "round-robin over the two followers" ;; esac)$([ "$PIPE" = 1 ] || echo ", $PIPE requests pipelined per client"), $DUR after $WARM of warm-up; $REPS repetitions interleaved$([ "$PRELOAD" = 0 ] || echo "; every cluster preloaded with $PRELOAD SETs first")"
    [ "$ENDPOINTS" = all ] ||
        echo "- log syncs/op counts only the nodes the clients connect to (the load generator reads their \`INFO raft\`)"
    for spec in "${BINS[@]}"; do
        l=${spec%%=*} bin=${spec#*=}
        echo "- binary $l: ${bin#"$PWD"/}${FAILPOINTS[$l]:+, REDRAFT_FAILPOINTS=${FAILPOINTS[$l]}}${CONFIGS[$l]:+, config: $(tr '\n' ' ' <"${CONFIGS[$l]}")}"
    done
    echo
    echo "| binary | clients | ops/s (median) | p50 ms | p99 ms | CPU µs/op | log syncs/op | ops/s, each run |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    for c in $CONCS; do
        for label in "${LABELS[@]}"; do
            sel() { jq -r --arg l "$label" --argjson c "$c" \
                "select(.system == \$l and .concurrency == \$c) | $1" "$OUT/results.jsonl"; }
            tp=$(sel .throughput | median) p50=$(sel .latency_ms.p50 | median)
            p99=$(sel .latency_ms.p99 | median)
            cpu=$(sel '.server_cpu.us_per_op // empty' | median)
            [ "$cpu" = - ] || cpu=$(printf '%.0f' "$cpu")
            # Every node's log syncs over the measured time, per operation (empty on builds
            # without raft_log_syncs).
            syncs=$(sel 'if (.log_flush.nodes // []) != [] and all(.log_flush.nodes[]; .syncs != null) and .ops > 0
                then ([.log_flush.nodes[].syncs] | add) / .ops else empty end' | median)
            [ "$syncs" = - ] || syncs=$(printf '%.2f' "$syncs")
            each=$(sel .throughput | awk '{ printf "%.0f\n", $1 }' | paste -sd' ' | sed 's/ /, /g')
            printf '| %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$label" "$c" "$tp" "$p50" "$p99" "$cpu" "$syncs" "$each"
        done
    done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
echo "results in $OUT" >&2
