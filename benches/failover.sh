#!/usr/bin/env bash
# Failover A/B: compare.sh's failover workload on its own, for one or more redraft binaries
# (and optionally etcd) side by side in the same run.
#
# Usage: benches/failover.sh [--bin LABEL=PATH]... [--reps N] [--etcd] [--log FILTER]
#                            [--heartbeat MS] [--election-timeout MS] [--out DIR]
#
# For every binary (default: this checkout's release build, labelled "this"), a three-node
# cluster on 127.0.0.1 with the given timings (default: the shipped 50 / 250 ms); with --etcd,
# also a three-node etcd (Debian's etcd-server) with the same heartbeat and election timeout.
# Then, repeated N times (default 5) and interleaved over the systems so that machine noise
# hits each alike: SET at concurrency 16, kill -9 of the leader at 3 s, restart 4 s later,
# 14 s in all (`redraft-loadgen run --workload failover`). The unavailability is the longest
# gap between two successful writes (any connection) that ends after the kill.
#
# Writes DIR/results.jsonl (every run), DIR/table.md (loadgen's tables), DIR/summary.md (the
# unavailability of every run and the median per system) and keeps each node's log in
# DIR/logs/ (--log sets the redraft nodes' filter, default `warn`; e.g.
# `warn,openraft::engine=info,openraft::core::raft_core=info` logs every election step).
#
# Processes are stopped by PID on exit. Ports: BENCH_PORT_BASE (default 25000) + 10*b + 1..3
# (raft) and + 500 (redis); etcd + 900 (client) and + 950 (peer).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

BINS=()
REPS=5 ETCD=0 LOG=warn HB=50 ET=250 OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BINS+=("$2"); shift ;;
        --reps) REPS=$2; shift ;;
        --etcd) ETCD=1 ;;
        --log) LOG=$2; shift ;;
        --heartbeat) HB=$2; shift ;;
        --election-timeout) ET=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--bin LABEL=PATH]... [--reps N] [--etcd] [--log FILTER] [--heartbeat MS] [--election-timeout MS] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
need_tools redis-cli
[ $ETCD = 0 ] || need_tools etcd etcdctl
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
[ ${#BINS[@]} -gt 0 ] || BINS=("this=$BIN")
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-failover}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
BASE=${BENCH_PORT_BASE:-25000}
: >"$OUT/results.jsonl"

LABELS=()
declare -A EPS
b=0
for spec in "${BINS[@]}"; do
    label=${spec%%=*} path=${spec#*=}
    [ -x "$path" ] || { echo "not an executable: $path" >&2; exit 2; }
    LABELS+=("$label")
    raft=$((BASE + 10 * b)) redis=$((BASE + 500 + 10 * b))
    need_free_ports $((raft + 1)) $((raft + 2)) $((raft + 3)) $((redis + 1)) $((redis + 2)) $((redis + 3))
    {
        echo "[cluster]"
        echo "name = \"failover-$label\""
        for i in 1 2 3; do
            echo "[[node]]"
            echo "id = $i"
            echo "raft_addr = \"127.0.0.1:$((raft + i))\""
            echo "redis_addr = \"127.0.0.1:$((redis + i))\""
            echo "data_dir = \"$WORK/$label-$i\""
        done
        echo "[raft]"
        echo "heartbeat_ms = $HB"
        echo "election_timeout_ms = $ET"
    } >"$WORK/$label.toml"
    for i in 1 2 3; do
        pid_start "$label-$i" "$path" --config "$WORK/$label.toml" --node "$i" --log "$LOG"
    done
    EPS[$label]="127.0.0.1:$((redis + 1)),127.0.0.1:$((redis + 2)),127.0.0.1:$((redis + 3))"
    b=$((b + 1))
done

ETCD_EPS=""
if [ $ETCD = 1 ]; then
    ETC=$((BASE + 900)) ETP=$((BASE + 950)) cl=""
    need_free_ports $((ETC + 1)) $((ETC + 2)) $((ETC + 3)) $((ETP + 1)) $((ETP + 2)) $((ETP + 3))
    for i in 1 2 3; do cl+="${cl:+,}e$i=http://127.0.0.1:$((ETP + i))"; done
    for i in 1 2 3; do
        pid_start "etcd-$i" etcd --name "e$i" --data-dir "$WORK/etcd$i" \
            --listen-client-urls "http://127.0.0.1:$((ETC + i))" \
            --advertise-client-urls "http://127.0.0.1:$((ETC + i))" \
            --listen-peer-urls "http://127.0.0.1:$((ETP + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((ETP + i))" \
            --initial-cluster "$cl" --initial-cluster-state new \
            --initial-cluster-token failover --heartbeat-interval "$HB" \
            --election-timeout "$ET" --logger zap --log-level warn
    done
    ETCD_EPS="127.0.0.1:$((ETC + 1)),127.0.0.1:$((ETC + 2)),127.0.0.1:$((ETC + 3))"
fi

# Every node answers and one leads (redraft), or the etcd cluster is healthy.
healthy() {
    local label=$1 eps i ok
    for _ in $(seq 1 300); do
        ok=1
        if [ "$label" = etcd ]; then
            etcdctl --endpoints "$ETCD_EPS" endpoint health >/dev/null 2>&1 || ok=0
        else
            eps=${EPS[$label]//,/ } leader=0
            for ep in $eps; do
                redis-cli -p "${ep##*:}" PING >/dev/null 2>&1 || ok=0
                redis-cli -p "${ep##*:}" ROLE 2>/dev/null | grep -qx master && leader=1
            done
            [ $leader = 1 ] || ok=0
        fi
        [ $ok = 1 ] && return 0
        sleep 0.2
    done
    echo "$label not healthy after 60 s; logs in $WORK" >&2
    tail -5 "$WORK"/*.log >&2
    exit 1
}

SYSTEMS=("${LABELS[@]}")
[ $ETCD = 0 ] || SYSTEMS+=(etcd)
FO="--workload failover --concurrency 16 --value-size 256 --duration 14s --kill-after 3s --restart-after 4s"
for rep in $(seq 1 "$REPS"); do
    for label in "${SYSTEMS[@]}"; do
        healthy "$label"
        if [ "$label" = etcd ]; then
            sys=(--system etcd --label etcd --endpoints "$ETCD_EPS")
            name='etcd-{node}'
        else
            sys=(--system redraft --label "$label" --endpoints "${EPS[$label]}")
            name="$label-{node}"
        fi
        echo "== $label rep $rep $(date -u +%T.%N)" >>"$OUT/loadgen.log"
        if ! "$LG" run --out "$OUT/results.jsonl" --rep "$rep" "${sys[@]}" $FO \
            --kill-cmd "$(pid_kill_cmd "$name")" --restart-cmd "sh '$WORK/start-$name.sh'" \
            >/dev/null 2>>"$OUT/loadgen.log"; then
            echo "run failed (see loadgen.log): $label rep $rep" | tee -a "$OUT/loadgen.log" >&2
        fi
    done
    echo "failover.sh: repetition $rep of $REPS done" >&2
done
cp "$WORK"/*.log "$OUT/logs/"

"$LG" table "$OUT/results.jsonl" >"$OUT/table.md"
{
    echo "# Failover: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- heartbeat $HB ms, election timeout $ET ms (redraft and etcd); SET at concurrency 16, kill -9 of the leader at 3 s, restart 4 s later; $REPS repetitions interleaved"
    for spec in "${BINS[@]}"; do echo "- binary ${spec%%=*}: ${spec#*=}"; done
    echo
    echo "| system | unavailable ms, each run | median |"
    echo "|---|---|---:|"
    for label in "${SYSTEMS[@]}"; do
        runs=$(jq -r --arg l "$label" 'select(.system == $l) | .failover.unavailable_ms' \
            "$OUT/results.jsonl" | awk '{ printf "%.0f\n", $1 }')
        echo "| $label | $(echo "$runs" | paste -sd' ' | sed 's/ /, /g') | $(echo "$runs" | median) |"
    done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
echo "results in $OUT" >&2
