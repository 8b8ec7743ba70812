#!/usr/bin/env bash
# What snapshots cost concurrent writes: compare.sh's snapshot side run on its own, longer, and
# for one or more redraft binaries side by side in the same run.
#
# Usage: benches/snapshot_stall.sh [--bin LABEL=PATH]... [--reps N] [--duration D]
#                                  [--keys K] [--every E] [--out DIR]
#
# For every binary (default: this checkout's release build, labelled "this"), a three-node
# cluster on 127.0.0.1 with `snapshot_every` out of reach, preloaded with K keys of 256 B
# (default 20,000, as compare.sh --quick). Then, repeated N times (default 3) and interleaved
# over the binaries so that machine noise hits each alike: SET at concurrency 64 for D
# (default 10s, after 1 s of warm-up) without snapshots ("redraft-nosnap"), and with
# `RAFT.SNAPSHOT` sent to the leader every E (default 1s) ("redraft-snap"). Writes, per
# binary, DIR/LABEL/results.jsonl and DIR/LABEL/table.md (loadgen's snapshot table: both p99s
# and their ratio; the target is at most 1.5x), and DIR/summary.md with every table.
#
# Only one cluster takes load at a time; the others idle (heartbeats). Processes are stopped
# by PID on exit. Ports: BENCH_PORT_BASE (default 24000) + 10*b + 1..3 (raft) and + 500 (redis).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

BINS=()
REPS=3 DUR=10s WARM=1s KEYS=20000 EVERY=1s OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BINS+=("$2"); shift ;;
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --keys) KEYS=$2; shift ;;
        --every) EVERY=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--bin LABEL=PATH]... [--reps N] [--duration D] [--keys K] [--every E] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
need_tools redis-cli
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
[ ${#BINS[@]} -gt 0 ] || BINS=("this=$BIN")
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-snapshot-stall}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BASE=${BENCH_PORT_BASE:-24000}

LABELS=()
declare -A EPS
b=0
for spec in "${BINS[@]}"; do
    label=${spec%%=*} path=${spec#*=}
    [ -x "$path" ] || { echo "not an executable: $path" >&2; exit 2; }
    LABELS+=("$label")
    mkdir -p "$OUT/$label"
    : >"$OUT/$label/results.jsonl"
    raft=$((BASE + 10 * b)) redis=$((BASE + 500 + 10 * b))
    need_free_ports $((raft + 1)) $((raft + 2)) $((raft + 3)) $((redis + 1)) $((redis + 2)) $((redis + 3))
    {
        echo "[cluster]"
        echo "name = \"snapstall-$label\""
        for i in 1 2 3; do
            echo "[[node]]"
            echo "id = $i"
            echo "raft_addr = \"127.0.0.1:$((raft + i))\""
            echo "redis_addr = \"127.0.0.1:$((redis + i))\""
            echo "data_dir = \"$WORK/$label-$i\""
        done
        echo "[raft]"
        echo "heartbeat_ms = 100"
        echo "election_timeout_ms = 1000"
        echo "snapshot_every = 1000000000"
        echo "[store]"
        echo "history_revisions = 100000"
    } >"$WORK/$label.toml"
    for i in 1 2 3; do
        pid_start "$label-$i" "$path" --config "$WORK/$label.toml" --node "$i" --log warn
    done
    EPS[$label]="127.0.0.1:$((redis + 1)),127.0.0.1:$((redis + 2)),127.0.0.1:$((redis + 3))"
    leader=""
    for _ in $(seq 1 300); do
        for i in 1 2 3; do
            redis-cli -p $((redis + i)) ROLE 2>/dev/null | grep -qx master && leader=$i
        done
        [ -n "$leader" ] && break
        sleep 0.2
    done
    [ -n "$leader" ] || { echo "$label: no leader; logs in $WORK" >&2; tail -5 "$WORK"/*.log >&2; exit 1; }
    "$LG" run --system redraft --label snapside-preload --endpoints "${EPS[$label]}" \
        --workload fill --keys "$KEYS" --value-size 256 --concurrency 16 --pipeline 16 \
        >/dev/null 2>>"$OUT/loadgen.log"
    b=$((b + 1))
done

S="--workload set --value-size 256 --concurrency 64 --duration $DUR --warmup $WARM"
for rep in $(seq 1 "$REPS"); do
    for label in "${LABELS[@]}"; do
        for snap in off on; do
            extra=() name=redraft-nosnap
            [ $snap = on ] && extra=(--force-snapshots "$EVERY") name=redraft-snap
            if ! "$LG" run --out "$OUT/$label/results.jsonl" --rep "$rep" --system redraft \
                --label $name --endpoints "${EPS[$label]}" $S "${extra[@]}" \
                >/dev/null 2>>"$OUT/loadgen.log"; then
                echo "run failed (see loadgen.log): $label $name rep $rep" | tee -a "$OUT/loadgen.log" >&2
            fi
        done
    done
    echo "snapshot_stall.sh: repetition $rep of $REPS done" >&2
done

{
    echo "# Snapshot stall: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- $KEYS keys of 256 B preloaded; SET at concurrency 64 for $DUR after $WARM, $REPS repetitions interleaved; RAFT.SNAPSHOT every $EVERY on the leader in the snap runs"
    for spec in "${BINS[@]}"; do bin=${spec#*=}; echo "- binary ${spec%%=*}: ${bin#"$PWD"/}"; done
    for label in "${LABELS[@]}"; do
        "$LG" table "$OUT/$label/results.jsonl" >"$OUT/$label/table.md"
        echo
        echo "## $label"
        echo
        awk '/^### Snapshots during writes/ { on = 1; next } on && /^\|/ { print; seen = 1; next }
             on && seen { exit }' "$OUT/$label/table.md"
    done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
echo "results in $OUT" >&2
