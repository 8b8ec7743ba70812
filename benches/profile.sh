#!/usr/bin/env bash
# Where a workload's server CPU goes: a three-node cluster under one redraft-loadgen workload,
# profiled with `perf record --call-graph dwarf` on every node, each sample assigned to the
# part of redraft it was taken in, plus the context switches per operation.
#
# Usage: benches/profile.sh [--workload set|get|mixed] [--mode lease] [--concurrency 64]
#                           [--pipeline 1] [--endpoints all|leader|followers] [--seconds 4] [--freq 499]
#                           [--out DIR] [--keep-data DIR] [--frame-pointers]
#
# Starts a cluster on 127.0.0.1 (BENCH_PORT_BASE, default 26000, + 1..3 raft, + 101..103
# redis), runs the workload (256 B values over 1,000 keys; clients round-robin over the three
# nodes, or `--endpoints leader`: every connection on the leader, or `followers`: on the two
# followers, every write forwarded) and, while it runs, records
# each node for `--seconds` (linux-perf; works with `kernel.perf_event_paranoid` = 2 for our
# own processes). Writes DIR (default benches/results/<date>-profile-<workload>-c<N>):
#
#   run.json        the load generator's result (throughput, latencies, server CPU per op)
#   switches.md     context switches per operation, per thread kind (from /proc/PID/task/*)
#   components.md   per node: the share of samples in each part (see `classify` below)
#   top-<node>.txt  per node: the 40 hottest functions (self time)
#
# `--keep-data DIR` also copies the perf recordings there (node<i>.data; tens of MB each, not
# for committing) for `perf report --children` and the like.
#
# `--frame-pointers` profiles a build with frame pointers (`-C force-frame-pointers=yes`, its
# own target directory, target/frame-pointers: a first build takes ~8 minutes) recorded with
# `--call-graph fp` instead of DWARF. DWARF unwinding copies 16 KiB of stack per sample and
# stops at libc functions it cannot unwind (most `memmove` stacks ended there); frame pointers
# unwind every frame of redraft's own code, and a libc leaf shows its caller's caller. Use it
# to find who calls a hot user-space leaf (`perf report -G` on the kept data), not for the
# parts' shares: libc's system-call wrappers keep no frame pointer, so a sample inside the
# kernel loses its user frames and lands in "other" (about 40 % of a leader's samples).
#
# A sample belongs to the first part found walking its stack from the leaf: the WAL's sync
# thread (anything under `sync_worker`: the fdatasync and the callbacks), a client session
# (`server::session`, `commands::`, except under openraft's state-machine worker: a script run
# at apply is apply), the peer RPC server (`raft::rpc`), the peer RPC client
# (`raft::network`: AppendEntries, forwarded writes), openraft's replication tasks, apply
# (openraft's state-machine worker and `raft::state_machine`, snapshots included), openraft's
# core, the batcher and the forwarder, the WAL's append path (`raft::wal`, `LogStore`), watch
# and pub/sub, tokio's I/O driver and tokio parking; a `sched:` prefix marks samples inside the
# kernel's scheduler (a thread switched out or in) under that part.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

WL=set MODE="" CONC=64 PIPE=1 EPS=all SECS=4 FREQ=499 OUT="" KEEP="" FP=0
while [ $# -gt 0 ]; do
    case $1 in
        --workload) WL=$2; shift ;;
        --mode) MODE=$2; shift ;;
        --concurrency) CONC=$2; shift ;;
        --pipeline) PIPE=$2; shift ;;
        --endpoints) EPS=$2; shift ;;
        --seconds) SECS=$2; shift ;;
        --freq) FREQ=$2; shift ;;
        --out) OUT=$2; shift ;;
        --keep-data) KEEP=$2; shift ;;
        --frame-pointers) FP=1 ;;
        *) echo "usage: $0 [--workload W] [--mode M] [--concurrency N] [--pipeline P] [--endpoints all|leader|followers] [--seconds S] [--freq HZ] [--out DIR] [--keep-data DIR] [--frame-pointers]" >&2; exit 2 ;;
    esac
    shift
done
need_tools redis-cli perf jq
CALL_GRAPH=dwarf,16384
if [ "$FP" = 1 ]; then
    # The same release profile, frame pointers kept in every function of redraft and its
    # dependencies (std's prebuilt code and libc have none: their frames are skipped).
    RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=$PWD/target/frame-pointers \
        cargo build --release --locked -q -p redraft -p redraft-loadgen
    export REDRAFT_BIN=$PWD/target/frame-pointers/release/redraft
    CALL_GRAPH=fp
fi
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
[ "$FP" = 1 ] && LG=$PWD/target/frame-pointers/release/redraft-loadgen
suffix=""
[ "$PIPE" = 1 ] || suffix=-p$PIPE
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-profile-$WL-c$CONC$suffix}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BASE=${BENCH_PORT_BASE:-26000}
need_free_ports $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 101)) $((BASE + 102)) $((BASE + 103))
start_cluster "$BASE" $((BASE + 100))
NODE_PIDS=("${PIDS[@]}")
endpoints=$(cluster_endpoints "$EPS")

# switches: "kind count" for every thread of the nodes (kind: the thread's name).
switches() {
    local p t
    for p in "${NODE_PIDS[@]}"; do
        for t in /proc/"$p"/task/*; do
            awk -v kind="$(cat "$t/comm" 2>/dev/null)" -v tid="${t##*/}" \
                '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print tid, kind, n }' \
                "$t/status" 2>/dev/null || true
        done
    done
}

# The run: warm-up, then the measured time, with perf recording inside it.
dur=$((SECS + 4))
switches >"$WORK/cs-before"
"$LG" run --system redraft --endpoints "$endpoints" --workload "$WL" --mode "$MODE" \
    --value-size 256 --concurrency "$CONC" --pipeline "$PIPE" --duration "${dur}s" --warmup 1s \
    --server-pids "$(IFS=,; echo "${NODE_PIDS[*]}")" >"$OUT/run.json" 2>"$WORK/loadgen.log" &
lg=$!
sleep 3
i=0
perfs=()
for p in "${NODE_PIDS[@]}"; do
    i=$((i + 1))
    perf record -q -F "$FREQ" --call-graph "$CALL_GRAPH" -p "$p" -o "$WORK/node$i.data" \
        -- sleep "$SECS" >/dev/null 2>&1 &
    perfs+=($!)
done
wait "$lg"
# Not a bare `wait`: the nodes are children of this shell too.
wait "${perfs[@]}"
switches >"$WORK/cs-after"
if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP"
    cp "$WORK"/node*.data "$KEEP"/
fi

# The switches were counted over the warm-up too: operations at the measured rate over both.
ops=$(jq ".throughput * ($dur + 1)" "$OUT/run.json")
{
    echo "# Context switches per operation: $WL${MODE:+ ($MODE)}, $CONC clients${suffix:+, pipeline $PIPE} ($EPS)"
    echo
    echo "$(jq -c '{throughput, p50: .latency_ms.p50, p99: .latency_ms.p99, cpu_us_per_op: .server_cpu.us_per_op}' "$OUT/run.json")"
    echo
    echo "| thread kind | switches per op |"
    echo "|---|---:|"
    join <(sort "$WORK/cs-before") <(sort "$WORK/cs-after") |
        awk -v ops="$ops" '{ d[$2] += $5 - $3; t += $5 - $3 }
            END { for (k in d) printf "| %s | %.2f |\n", k, d[k] / ops; printf "| all | %.2f |\n", t / ops }'
} >"$OUT/switches.md"

classify() {
    perf script -i "$1" 2>/dev/null | awk '
    /^[^ \t]/ { if (n) emit(); n = 0; delete f; next }
    /^[ \t]+[0-9a-f]+ / { n++; f[n] = $0; next }
    function emit(   i, c, s, w) {
        for (i = 1; i <= n; i++) if (f[i] ~ /sync_worker/) { cnt["WAL sync thread"]++; tot++; return }
        # Under openraft'"'"'s state-machine worker everything is apply, even code of `commands::`
        # (a script run at apply: EVALSHA'"'"'s Lua), which sessions otherwise own.
        w = 0
        for (i = 1; i <= n; i++) if (f[i] ~ /core::sm::worker::Worker/) { w = 1; break }
        c = ""
        for (i = 1; i <= n; i++) {
            s = f[i]
            if (s ~ /finish_task_switch|__schedule|futex/) { if (c == "") c = "sched: " }
            if (s ~ /server::session|commands::/) { c = c (w ? "apply (and snapshots)" : "client sessions"); break }
            if (s ~ /raft::rpc::/) { c = c "peer RPC server"; break }
            if (s ~ /PeerConn|PeerClient|PeerSlot|raft::network/) { c = c "peer RPC client"; break }
            if (s ~ /ReplicationCore/) { c = c "openraft replication"; break }
            if (s ~ /sm::worker|StateMachineStore|state_machine::/) { c = c "apply (and snapshots)"; break }
            if (s ~ /RaftCore/) { c = c "openraft core"; break }
            if (s ~ /batcher|forward::/) { c = c "batcher, forwarder"; break }
            if (s ~ /LogStore|raft::wal::/) { c = c "WAL append and reads"; break }
            if (s ~ /pubsub|watch::/) { c = c "watch, pub/sub"; break }
            if (s ~ /io::driver|epoll_wait/) { c = c "tokio I/O driver"; break }
            if (s ~ /park|Parker|Condvar/) { c = c "tokio parking"; break }
        }
        if (c == "" || c == "sched: ") c = c "other"
        cnt[c]++; tot++
    }
    END { if (n) emit(); for (k in cnt) printf "| %s | %.1f %% |\n", k, 100 * cnt[k] / tot; printf "| (samples) | %d |\n", tot }' |
        sort -t'|' -k3 -rn | awk '/\(samples\)/ { last = $0; next } { print } END { print last }'
}

{
    echo "# Server samples per part: $WL${MODE:+ ($MODE)}, $CONC clients${suffix:+, pipeline $PIPE} ($EPS), ${SECS} s at $FREQ Hz"
    i=0
    for p in "${NODE_PIDS[@]}"; do
        i=$((i + 1))
        role=follower
        [ "$((BASE + 100 + i))" = "$LEADER" ] && role=leader
        echo
        echo "## node $i ($role)"
        echo
        echo "| part | samples |"
        echo "|---|---:|"
        classify "$WORK/node$i.data"
        perf report -i "$WORK/node$i.data" --no-children --sort sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -40 >"$OUT/top-node$i-$role.txt" || true
    done
} >"$OUT/components.md"
cat "$OUT/switches.md" "$OUT/components.md"
echo "results in $OUT" >&2
