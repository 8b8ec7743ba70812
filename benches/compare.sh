#!/usr/bin/env bash
# redraft against Redis and etcd, side by side in one run, with plots.
#
# Usage: benches/compare.sh [--quick] [--out DIR]
#
# Starts, on 127.0.0.1: a Redis with no persistence ("redis"), a Redis with `appendonly yes`
# and `appendfsync always` ("redis-aof", the durable comparison), a three-node etcd cluster
# and a three-node redraft cluster (release build). Then runs every workload of
# redraft-loadgen (benches/loadgen) on each system in turn, repeating the whole matrix so
# that repetitions interleave (machine noise hits every system alike), and writes to DIR
# (default benches/results/<date>-quick|full):
#
#   results.jsonl   one JSON line per run (loadgen's result format)
#   table.md        medians with min–max spread, ratios redraft/etcd and redraft/Redis;
#                   redraft's log entries per fsync during its write runs; the snapshot side run
#   *.png           throughput per workload, latency CDFs, watch CDF, failover timelines
#   machine.md      cores, disk fsync latency (dd oflag=dsync), versions, the exact settings
#
# Clients connect round-robin to all three nodes of a cluster (any node takes writes and reads),
# except "redraft-leader": lease reads with every connection on the leader.
#
# Group commit: for every redraft write run the load generator reads each node's `INFO raft`
# counters (raft_log_flushes, raft_log_entries_flushed) as the measured time starts and after
# it ends, and records log entries per flush (one fsync each) in the results and the table.
#
# Snapshot side run: a second three-node redraft cluster ("redraft-nosnap", "redraft-snap")
# with `snapshot_every` out of reach, preloaded with SNAP_KEYS keys of 256 B, then SET at
# concurrency 64 without snapshots and with `RAFT.SNAPSHOT` sent to the leader every second
# (each waiting for its snapshot), interleaved; the table gives both p99s and their ratio.
#
# --quick takes about 5 minutes; the full run under 30 (both on the project's 2-core VM).
# Installs what is missing from Debian (redis-server, redis-tools, etcd-server, etcd-client,
# protobuf-compiler for etcd-client's build, fonts-dejavu-core for the plots' text). Stops
# everything it started, by PID, on exit. Ports: BENCH_PORT_BASE (default 21000) + 101..502.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

MODE=full
OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) MODE=quick ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--quick] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-$MODE}

# ---- what the run needs -------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
    echo "compare.sh: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

START=$(date +%s)
bench_init redraft-loadgen
trap 'exit 130' INT TERM
LG=$PWD/target/release/redraft-loadgen
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/results.jsonl
: >"$RAW"
: >"$OUT/loadgen.log"

# ---- the matrix ---------------------------------------------------------------------------
if [ $MODE = quick ]; then
    REPS=2 DUR=2s WARM=0.5s WATCH_DUR=2s FO_REPS=2
    SET_SIZES="256" SET_CONCS="1 16 64 256"
    GET_SIZES="256" GET_CONCS="64 256"
    MIXED_CONCS="64" PIPE_CONCS="" SNAP_KEYS=20000
else
    REPS=3 DUR=4s WARM=1s WATCH_DUR=4s FO_REPS=5
    SET_SIZES="256 1024" SET_CONCS="1 16 64 256"
    GET_SIZES="256 1024" GET_CONCS="1 16 64 256"
    MIXED_CONCS="16 64" PIPE_CONCS="16" SNAP_KEYS=100000
fi
FO_DUR=14s FO_KILL=3s FO_DOWN=4s

# ---- servers ------------------------------------------------------------------------------
BASE=${BENCH_PORT_BASE:-21000}
RAFT=$((BASE + 100)) RD=$((BASE + 200)) ETC=$((BASE + 300)) ETP=$((BASE + 400))
REDIS=$((BASE + 501)) REDIS_AOF=$((BASE + 502))
SRAFT=$((BASE + 600)) SRD=$((BASE + 700))
need_free_ports $((RAFT + 1)) $((RAFT + 2)) $((RAFT + 3)) $((RD + 1)) $((RD + 2)) $((RD + 3)) \
    $((ETC + 1)) $((ETC + 2)) $((ETC + 3)) $((ETP + 1)) $((ETP + 2)) $((ETP + 3)) \
    $REDIS $REDIS_AOF $((SRAFT + 1)) $((SRAFT + 2)) $((SRAFT + 3)) $((SRD + 1)) $((SRD + 2)) \
    $((SRD + 3))

start_redis $REDIS --appendonly no
start_redis $REDIS_AOF --appendonly yes --appendfsync always --appendfilename aof-bench.aof

# etcd: Debian's etcd-server with redraft's shipped timings (heartbeat 50 ms, election timeout
# 250 ms; etcd's own defaults are 100/1000), so failover is compared at equal nominal timeouts.
# History: the last 100,000 revisions (redraft: the same).
ETCD_CLUSTER=""
for i in 1 2 3; do ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:$((ETP + i))"; done
for i in 1 2 3; do
    pid_start "etcd-$i" etcd --name "e$i" --data-dir "$WORK/etcd$i" \
        --listen-client-urls "http://127.0.0.1:$((ETC + i))" \
        --advertise-client-urls "http://127.0.0.1:$((ETC + i))" \
        --listen-peer-urls "http://127.0.0.1:$((ETP + i))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ETP + i))" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
        --initial-cluster-token bench --heartbeat-interval 50 --election-timeout 250 \
        --auto-compaction-mode revision --auto-compaction-retention 100000 \
        --quota-backend-bytes 8589934592 --logger zap --log-level warn
done
ETCD_EPS="127.0.0.1:$((ETC + 1)),127.0.0.1:$((ETC + 2)),127.0.0.1:$((ETC + 3))"

{
    echo "[cluster]"
    echo 'name = "bench"'
    for i in 1 2 3; do
        echo "[[node]]"
        echo "id = $i"
        echo "raft_addr = \"127.0.0.1:$((RAFT + i))\""
        echo "redis_addr = \"127.0.0.1:$((RD + i))\""
        echo "data_dir = \"$WORK/node$i\""
    done
    # [raft]: the shipped timings (heartbeat 50 ms, election timeout 250 ms).
    echo "[store]"
    echo "history_revisions = 100000"
} >"$WORK/cluster.toml"
for i in 1 2 3; do
    pid_start "redraft-$i" "$BIN" --config "$WORK/cluster.toml" --node "$i" --log warn
done
REDRAFT_EPS="127.0.0.1:$((RD + 1)),127.0.0.1:$((RD + 2)),127.0.0.1:$((RD + 3))"

# Waits until every node of both clusters answers and each cluster has a leader.
wait_healthy() {
    local i ok
    for _ in $(seq 1 300); do
        ok=1
        for i in 1 2 3; do
            redis-cli -p $((RD + i)) PING >/dev/null 2>&1 || ok=0
        done
        redis-cli -p $((RD + 1)) ROLE 2>/dev/null | grep -qx master ||
            redis-cli -p $((RD + 2)) ROLE 2>/dev/null | grep -qx master ||
            redis-cli -p $((RD + 3)) ROLE 2>/dev/null | grep -qx master || ok=0
        etcdctl --endpoints "$ETCD_EPS" endpoint health >/dev/null 2>&1 || ok=0
        [ $ok = 1 ] && return 0
        sleep 0.2
    done
    echo "clusters not healthy after 60 s; logs in $WORK" >&2
    tail -5 "$WORK"/*.log >&2
    exit 1
}
wait_healthy
# The redraft leader's client port: lease reads spread over all nodes (followers ask the
# leader's lease for each round's read index) are also measured with every connection on the
# leader ("redraft-leader"), which needs no message at all. The failover runs come last, so it holds until
# then.
for i in 1 2 3; do
    redis-cli -p $((RD + i)) ROLE 2>/dev/null | grep -qx master && LEADER_EP=127.0.0.1:$((RD + i))
done

# ---- the machine --------------------------------------------------------------------------
{
    echo "# Machine and settings"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); mode: $MODE; repetitions: $REPS; run length $DUR after $WARM warm-up"
    echo "- cores: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
    echo "- memory: $(free -g | awk '/Mem:/ {print $2}') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    dd if=/dev/zero of="$WORK/dsync.test" bs=4k count=300 oflag=dsync 2>"$WORK/dd.txt" || true
    secs=$(grep -o '[0-9.,]* s,' "$WORK/dd.txt" | tr -d ' s,' | tr ',' '.')
    echo "- disk fsync latency: $(awk -v s="$secs" 'BEGIN{ printf "%.2f ms", s * 1000 / 300 }') per 4 KiB write with O_DSYNC (dd, 300 writes, same disk as the data dirs)"
    echo "- redis: $(redis-server --version | awk '{print $3}'); etcd: $(etcd --version | head -1 | awk '{print $3}'); redraft: $(git rev-parse --short HEAD)"
    echo "- redraft and etcd: heartbeat 50 ms, election timeout 250 ms (redraft's shipped defaults; both randomise up to 2x), history kept: last 100,000 revisions"
    echo "- clients: redraft-loadgen, one connection per unit of concurrency spread round-robin over the nodes (etcd: one gRPC client each), keys chosen uniformly from 1,000"
    echo "- group commit: each node's INFO raft raft_log_flushes / raft_log_entries_flushed read before and after every redraft write run"
    echo "- snapshot side run: a second redraft cluster (snapshot_every 1,000,000,000, history 100,000 revisions) preloaded with $SNAP_KEYS keys of 256 B; SET at concurrency 64 with RAFT.SNAPSHOT sent to the leader every second and without, interleaved"
} >"$OUT/machine.md"
rm -f "$WORK/dsync.test"

# ---- runs ---------------------------------------------------------------------------------
# lg REP ARGS...: one loadgen run; a failure is logged and the comparison goes on.
lg() {
    local rep=$1
    shift
    if ! "$LG" run --out "$RAW" --rep "$rep" "$@" >/dev/null 2>>"$OUT/loadgen.log"; then
        echo "run failed (see loadgen.log): $*" | tee -a "$OUT/loadgen.log" >&2
    fi
}
# The PIDs of a system's server processes, comma-separated, for the loadgen's --server-pids
# (server CPU per operation). Read at each run: a node restarted by the failover runs has a new
# one.
pids_of() {
    local n out=""
    for n in "$@"; do
        [ -f "$WORK/pids/$n.pid" ] && out="$out${out:+,}$(cat "$WORK/pids/$n.pid")"
    done
    echo "$out"
}
redis_pid() { redis-cli -p "$1" INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p'; }
# sp PIDS: the --server-pids option, or nothing when no PID is known.
sp() { [ -n "$1" ] && echo "--server-pids $1"; }
# shellcheck disable=SC2046 # sp's output is two words or none
rd() { lg "$1" --system redraft --endpoints "$REDRAFT_EPS" \
    $(sp "$(pids_of redraft-1 redraft-2 redraft-3)") "${@:2}"; }
# shellcheck disable=SC2046
et() { lg "$1" --system etcd --endpoints "$ETCD_EPS" $(sp "$(pids_of etcd-1 etcd-2 etcd-3)") "${@:2}"; }
# shellcheck disable=SC2046
rs() { lg "$1" --system redis --endpoints "127.0.0.1:$REDIS" $(sp "$(redis_pid $REDIS)") "${@:2}"; }
# shellcheck disable=SC2046
ra() { lg "$1" --system redis --label redis-aof --endpoints "127.0.0.1:$REDIS_AOF" \
    $(sp "$(redis_pid $REDIS_AOF)") "${@:2}"; }

for rep in $(seq 1 $REPS); do
    T="--duration $DUR --warmup $WARM"
    for size in $SET_SIZES; do
        for c in $SET_CONCS; do
            for sys in rd et rs ra; do
                $sys "$rep" --workload set --value-size "$size" --concurrency "$c" $T
            done
        done
    done
    for size in $GET_SIZES; do
        concs=$GET_CONCS
        [ "$size" = 256 ] || concs=64
        for c in $concs; do
            for m in linearizable lease stale; do
                rd "$rep" --workload get --mode $m --value-size "$size" --concurrency "$c" $T
            done
            lg "$rep" --system redraft --label redraft-leader --endpoints "$LEADER_EP" \
                --workload get --mode lease --value-size "$size" --concurrency "$c" $T
            for m in linearizable serializable; do
                et "$rep" --workload get --mode $m --value-size "$size" --concurrency "$c" $T
            done
            rs "$rep" --workload get --value-size "$size" --concurrency "$c" $T
        done
    done
    for c in $MIXED_CONCS; do
        for sys in rd et rs ra; do
            $sys "$rep" --workload mixed --value-size 256 --concurrency "$c" $T
        done
    done
    # Scripts and hashes (RESP only): redis-py's lock release by EVALSHA (on redraft a Raft
    # entry run at apply on every node), HSET and HGET of one hash's fields.
    for w in evalsha hset hget; do
        for sys in rd rs ra; do
            $sys "$rep" --workload $w --value-size 256 --concurrency 64 $T
        done
    done
    for c in $PIPE_CONCS; do
        for w in set get; do
            rd "$rep" --workload $w --value-size 256 --concurrency "$c" --pipeline 16 $T
            rs "$rep" --workload $w --value-size 256 --concurrency "$c" --pipeline 16 $T
        done
    done
    W="--duration $WATCH_DUR --value-size 256"
    rd "$rep" --workload watch-latency --mode xread $W
    rd "$rep" --workload watch-latency --mode keyspace $W
    et "$rep" --workload watch-latency --mode watch $W
    rs "$rep" --workload watch-latency --mode keyspace $W
    echo "compare.sh: repetition $rep of $REPS done ($(($(date +%s) - START)) s)" >&2
done

# ---- snapshot side run ----------------------------------------------------------------------
# Its own cluster, so that the main one keeps its default snapshot_every (the figures above
# include the snapshots it takes) while this one takes none unless told to.
{
    echo "[cluster]"
    echo 'name = "snapside"'
    for i in 1 2 3; do
        echo "[[node]]"
        echo "id = $i"
        echo "raft_addr = \"127.0.0.1:$((SRAFT + i))\""
        echo "redis_addr = \"127.0.0.1:$((SRD + i))\""
        echo "data_dir = \"$WORK/snapside$i\""
    done
    echo "[raft]"
    echo "snapshot_every = 1000000000"
    echo "[store]"
    echo "history_revisions = 100000"
} >"$WORK/snapside.toml"
for i in 1 2 3; do
    pid_start "snapside-$i" "$BIN" --config "$WORK/snapside.toml" --node "$i" --log warn
done
SNAP_EPS="127.0.0.1:$((SRD + 1)),127.0.0.1:$((SRD + 2)),127.0.0.1:$((SRD + 3))"
for _ in $(seq 1 300); do
    for i in 1 2 3; do
        redis-cli -p $((SRD + i)) ROLE 2>/dev/null | grep -qx master && break 2
    done
    sleep 0.2
done
if "$LG" run --system redraft --label snapside-preload --endpoints "$SNAP_EPS" --workload fill \
    --keys "$SNAP_KEYS" --value-size 256 --concurrency 16 --pipeline 16 \
    >/dev/null 2>>"$OUT/loadgen.log"; then
    for rep in $(seq 1 $REPS); do
        T="--duration $DUR --warmup $WARM"
        S="--workload set --value-size 256 --concurrency 64 $T"
        lg "$rep" --system redraft --label redraft-nosnap --endpoints "$SNAP_EPS" $S
        lg "$rep" --system redraft --label redraft-snap --endpoints "$SNAP_EPS" $S \
            --force-snapshots 1s
    done
else
    echo "snapshot side run: the preload failed (see loadgen.log)" | tee -a "$OUT/loadgen.log" >&2
fi
for i in 1 2 3; do eval "$(pid_kill_cmd "snapside-$i")"; done
rm -rf "$WORK"/snapside[1-3]
echo "compare.sh: snapshot side run done ($(($(date +%s) - START)) s)" >&2

FO="--workload failover --concurrency 16 --value-size 256 --duration $FO_DUR --kill-after $FO_KILL --restart-after $FO_DOWN"
for rep in $(seq 1 $FO_REPS); do
    wait_healthy
    rd "$rep" $FO --kill-cmd "$(pid_kill_cmd 'redraft-{node}')" \
        --restart-cmd "sh '$WORK/start-redraft-{node}.sh'"
    wait_healthy
    et "$rep" $FO --kill-cmd "$(pid_kill_cmd 'etcd-{node}')" \
        --restart-cmd "sh '$WORK/start-etcd-{node}.sh'"
done
echo "compare.sh: failover runs done ($(($(date +%s) - START)) s)" >&2

# ---- report -------------------------------------------------------------------------------
"$LG" table "$RAW" >"$OUT/table.md"
"$LG" plot "$RAW" --out-dir "$OUT" >/dev/null
{
    if [ $MODE = quick ]; then echo "- command: benches/compare.sh --quick"; else echo "- command: benches/compare.sh"; fi
    echo "- wall time: $(($(date +%s) - START)) s"
} >>"$OUT/machine.md"
cat "$OUT/machine.md"
echo
cat "$OUT/table.md"
echo "results in $OUT" >&2
