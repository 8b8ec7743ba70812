#!/usr/bin/env bash
# Storage at scale: redraft and etcd with many keys and a long history, side by side (not run
# in CI).
#
# Usage: benches/scale.sh [--quick] [--keys K] [--revisions R] [--value-size V]
#            [--history N] [--systems "redraft etcd"] [--redraft-concurrency C]
#            [--redraft-pipeline P] [--etcd-concurrency C] [--timeout S] [--out DIR]
#            [--snapshot-log-percent N]
#
# For each system in turn (one at a time, so they do not share the cores): starts a three-node
# cluster on 127.0.0.1 (redraft: release build; etcd: Debian's etcd-server 3.4), writes keys
# 0..K-1 once each with V-byte values, then overwrites keys chosen uniformly until R writes in
# all (about R revisions: one per write), every write acknowledged, with history compacted to
# the last N revisions during the load (redraft `[store] history_revisions = N`; etcd
# `--auto-compaction-mode revision --auto-compaction-retention N`, which etcd 3.4 applies every
# 5 minutes). The load is `redraft-loadgen run --workload fill --total-ops R`: pipelined RESP
# connections for redraft, many concurrent gRPC clients for etcd. Then it writes a marker key
# and measures:
#
#   - each node's resident memory (VmRSS) and its bytes per key (VmRSS / K), and the size of
#     its data dir (du), after a 10 s settle;
#   - follower restart: kill -9 of one follower, start it again, time until it serves a
#     linearizable read of the marker key and its applied index reaches the leader's;
#   - a NEW node joining: redraft `--join` of node 4, etcd `member add` and the start of a
#     fourth member, time until its applied index (and for etcd its revision) reaches the
#     leader's. The log is compacted by then, so the new node catches up by snapshot (redraft:
#     its `raft_snapshot_index` is recorded).
#
# Times are measured by polling every 50 ms (redis-cli / etcdctl; each poll costs a few ms),
# from just before the start command to the first poll that sees the condition.
#
# Defaults: K = 1,000,000, R = 10,000,000, V = 1024, N = 10,000. --quick: K = 50,000,
# R = 500,000 (a few minutes here). Results in DIR (default benches/results/<date>-scale, or
# <date>-scale-quick): results.md (the table), results.jsonl (the loads, loadgen's format),
# scale.jsonl (one line per system: every measurement), machine.md. Ports: BENCH_PORT_BASE
# (default 22000) + 101..404. Stops everything it started, by PID, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

usage() {
    sed -n '4,6p' "$0" | sed 's/^# //' >&2
    exit 2
}

ARGS="$*"
MODE=full KEYS="" REVS="" VSIZE=1024 HISTORY=10000 OUT="" SYSTEMS="redraft etcd"
RD_CONC=64 RD_PIPE=16 ETCD_CONC=256 TIMEOUT=1800 SNAP_PCT=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) MODE=quick ;;
        --keys) KEYS=$2; shift ;;
        --revisions) REVS=$2; shift ;;
        --value-size) VSIZE=$2; shift ;;
        --history) HISTORY=$2; shift ;;
        --systems) SYSTEMS=$2; shift ;;
        --redraft-concurrency) RD_CONC=$2; shift ;;
        --redraft-pipeline) RD_PIPE=$2; shift ;;
        --snapshot-log-percent) SNAP_PCT=$2; shift ;;
        --etcd-concurrency) ETCD_CONC=$2; shift ;;
        --timeout) TIMEOUT=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) usage ;;
    esac
    shift
done
if [ $MODE = quick ]; then
    KEYS=${KEYS:-50000} REVS=${REVS:-500000}
else
    KEYS=${KEYS:-1000000} REVS=${REVS:-10000000}
fi
for n in "$KEYS" "$REVS" "$VSIZE" "$HISTORY" "$RD_CONC" "$RD_PIPE" "$ETCD_CONC" "$TIMEOUT"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: $n is not a positive integer" >&2; usage; }
done
[ "$REVS" -ge "$KEYS" ] || { echo "scale.sh: --revisions must be at least --keys" >&2; exit 2; }
for s in $SYSTEMS; do
    case $s in redraft | etcd) ;; *) echo "scale.sh: unknown system $s" >&2; exit 2 ;; esac
done
SUFFIX=scale
[ $MODE = quick ] && SUFFIX=scale-quick
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-$SUFFIX}

# ---- what the run needs -------------------------------------------------------------------
missing=()
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if ((${#missing[@]})); then
    echo "scale.sh: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export ETCDCTL_API=3

START=$(date +%s)
bench_init redraft-loadgen
trap 'exit 130' INT TERM
LG=$PWD/target/release/redraft-loadgen
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/results.jsonl
SCALE=$OUT/scale.jsonl
: >"$RAW"
: >"$SCALE"
: >"$OUT/loadgen.log"

BASE=${BENCH_PORT_BASE:-22000}
RAFT=$((BASE + 100)) RD=$((BASE + 200)) ETC=$((BASE + 300)) ETP=$((BASE + 400))
ports=()
for i in 1 2 3 4; do ports+=($((RAFT + i)) $((RD + i)) $((ETC + i)) $((ETP + i))); done
need_free_ports "${ports[@]}"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
log() { echo "scale.sh: $* ($(($(date +%s) - START)) s)" >&2; }

# poll_until SECONDS COMMAND...: runs COMMAND every 50 ms until it succeeds; fails after
# SECONDS.
poll_until() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt $deadline ] || return 1
        sleep 0.05
    done
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
dir_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

# ---- redraft ------------------------------------------------------------------------------
# rinfo PORT FIELD: one field of `INFO raft` on the node at PORT (empty if it does not answer).
rinfo() {
    redis-cli -p "$1" INFO raft 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'
}
rd_leader() {
    local i
    for i in "$@"; do
        [ "$(rinfo $((RD + i)) raft_state)" = Leader ] && { echo "$i"; return 0; }
    done
    return 1
}
# The node at PORT applied at least as far as the leader at LPORT, and reads the marker.
rd_caught_up() {
    local port=$1 lport=$2 want=$3 mine leader
    mine=$(rinfo "$port" raft_applied_index)
    leader=$(rinfo "$lport" raft_applied_index)
    [ -n "$mine" ] && [ -n "$leader" ] && [ "$mine" -ge "$leader" ] || return 1
    [ -z "$want" ] || [ "$(redis-cli -p "$port" GET scale:last 2>/dev/null)" = "$want" ]
}

run_redraft() {
    local i cfg=$WORK/redraft.toml
    {
        echo "[cluster]"
        echo 'name = "scale"'
        for i in 1 2 3; do
            echo "[[node]]"
            echo "id = $i"
            echo "raft_addr = \"127.0.0.1:$((RAFT + i))\""
            echo "redis_addr = \"127.0.0.1:$((RD + i))\""
            echo "data_dir = \"$WORK/redraft$i\""
        done
        echo "[raft]"
        echo "heartbeat_ms = 100"
        echo "election_timeout_ms = 1000"
        [ -z "$SNAP_PCT" ] || echo "snapshot_log_percent = $SNAP_PCT"
        echo "[store]"
        echo "history_revisions = $HISTORY"
    } >"$cfg"
    for i in 1 2 3; do
        pid_start "redraft-$i" "$BIN" --config "$cfg" --node "$i" --log warn
    done
    poll_until 60 rd_leader 1 2 3 >/dev/null || { log "redraft: no leader"; tail -5 "$WORK"/redraft-*.log >&2; return 1; }
    local eps="127.0.0.1:$((RD + 1)),127.0.0.1:$((RD + 2)),127.0.0.1:$((RD + 3))"
    local rev0 writes
    rev0=$(rinfo $((RD + $(rd_leader 1 2 3))) revision)
    writes=$((REVS - ${rev0:-0}))
    [ "$writes" -ge "$KEYS" ] || writes=$KEYS
    log "redraft: fill $KEYS keys, $writes writes"
    "$LG" run --system redraft --endpoints "$eps" --workload fill --keys "$KEYS" \
        --total-ops "$writes" --value-size "$VSIZE" --concurrency "$RD_CONC" \
        --pipeline "$RD_PIPE" --out "$RAW" >/dev/null 2>>"$OUT/loadgen.log" ||
        { log "redraft: the load failed (loadgen.log)"; return 1; }
    local token leader
    token=marker-$(date +%s%N)
    leader=$(rd_leader 1 2 3)
    [ "$(redis-cli -p $((RD + leader)) SET scale:last "$token")" = OK ] || { log "redraft: marker write failed"; return 1; }
    sleep 10
    leader=$(rd_leader 1 2 3)
    local rev crev nodes="" sep=""
    rev=$(rinfo $((RD + leader)) revision)
    crev=$(rinfo $((RD + leader)) compact_revision)
    for i in 1 2 3; do
        local pid role=follower snap purged
        pid=$(cat "$WORK/pids/redraft-$i.pid")
        [ "$i" = "$leader" ] && role=leader
        snap=$(rinfo $((RD + i)) raft_snapshot_index)
        purged=$(rinfo $((RD + i)) raft_purged_index)
        nodes+="$sep{\"node\":$i,\"role\":\"$role\",\"rss_kib\":$(rss_kib "$pid"),\"data_dir_bytes\":$(dir_bytes "$WORK/redraft$i"),\"snapshot_index\":${snap:-null},\"purged_index\":${purged:-null}}"
        sep=,
    done

    # Follower restart.
    local f t0 restart_ms="null"
    f=$(for i in 1 2 3; do [ "$i" != "$leader" ] && echo "$i"; done | head -1)
    log "redraft: kill -9 and restart of node $f"
    eval "$(pid_kill_cmd "redraft-$f")"
    sleep 0.5
    t0=$(now_ms)
    sh "$WORK/start-redraft-$f.sh"
    local up_ms="null"
    rd_up() { [ "$(redis-cli -p $((RD + f)) PING 2>/dev/null)" = PONG ]; }
    poll_until "$TIMEOUT" rd_up && up_ms=$(($(now_ms) - t0))
    if poll_until "$TIMEOUT" rd_caught_up $((RD + f)) $((RD + leader)) "$token"; then
        restart_ms=$(($(now_ms) - t0))
    else
        log "redraft: node $f did not catch up within $TIMEOUT s"
    fi

    # A new node joins.
    local join_ms="null" join_snap="null" join_rss=0 join_dir=0
    leader=$(rd_leader 1 2 3)
    log "redraft: node 4 joins"
    t0=$(now_ms)
    pid_start redraft-4 "$BIN" --config "$cfg" --node 4 --join "127.0.0.1:$((RD + leader))" \
        --raft-addr "127.0.0.1:$((RAFT + 4))" --redis-addr "127.0.0.1:$((RD + 4))" \
        --data-dir "$WORK/redraft4" --log warn
    # Caught up: a voter of the membership, applied as far as the leader.
    rd_joined() {
        rinfo $((RD + leader)) raft_voters | tr , '\n' | grep -qx 4 &&
            rd_caught_up $((RD + 4)) $((RD + leader)) ""
    }
    if poll_until "$TIMEOUT" rd_joined; then
        join_ms=$(($(now_ms) - t0))
        join_snap=$(rinfo $((RD + 4)) raft_snapshot_index)
        join_rss=$(rss_kib "$(cat "$WORK/pids/redraft-4.pid")")
        join_dir=$(dir_bytes "$WORK/redraft4")
    else
        log "redraft: node 4 did not catch up within $TIMEOUT s"
    fi
    printf '{"system":"redraft","keys":%s,"value_size":%s,"history":%s,"revision":%s,"compact_revision":%s,"nodes":[%s],"restart_node":%s,"restart_up_ms":%s,"restart_ms":%s,"join_ms":%s,"join_snapshot_index":%s,"join_rss_kib":%s,"join_data_dir_bytes":%s}\n' \
        "$KEYS" "$VSIZE" "$HISTORY" "${rev:-null}" "${crev:-null}" "$nodes" "$f" "$up_ms" "$restart_ms" "$join_ms" \
        "${join_snap:-null}" "$join_rss" "$join_dir" >>"$SCALE"
    for i in 1 2 3 4; do
        [ -e "$WORK/pids/redraft-$i.pid" ] && eval "$(pid_kill_cmd "redraft-$i")"
    done
    sleep 1
    rm -rf "$WORK"/redraft[1-4]
}

# ---- etcd ---------------------------------------------------------------------------------
# estatus ENDPOINT FIELD: one field of `etcdctl endpoint status -w fields` (Revision,
# RaftAppliedIndex, Leader, MemberID).
estatus() {
    etcdctl --endpoints "$1" --command-timeout 2s endpoint status -w fields 2>/dev/null |
        awk -F' : ' -v f="\"$2\"" '$1 == f {gsub(/"/, "", $2); print $2}'
}
etcd_leader() {
    local i
    for i in "$@"; do
        local ep=127.0.0.1:$((ETC + i)) l m
        l=$(estatus "$ep" Leader)
        m=$(estatus "$ep" MemberID)
        [ -n "$l" ] && [ "$l" = "$m" ] && { echo "$i"; return 0; }
    done
    return 1
}
etcd_caught_up() {
    local ep=$1 lep=$2 want=$3 mine leader
    mine=$(estatus "$ep" RaftAppliedIndex)
    leader=$(estatus "$lep" RaftAppliedIndex)
    [ -n "$mine" ] && [ -n "$leader" ] && [ "$mine" -ge "$leader" ] || return 1
    [ "$(estatus "$ep" Revision)" = "$(estatus "$lep" Revision)" ] || return 1
    [ -z "$want" ] ||
        [ "$(etcdctl --endpoints "$ep" --command-timeout 2s get scale:last --print-value-only 2>/dev/null)" = "$want" ]
}

# etcd_start I CLUSTER STATE: member eI (started through a script, so it can be restarted).
etcd_start() {
    local i=$1
    pid_start "etcd-$i" etcd --name "e$i" --data-dir "$WORK/etcd$i" \
        --listen-client-urls "http://127.0.0.1:$((ETC + i))" \
        --advertise-client-urls "http://127.0.0.1:$((ETC + i))" \
        --listen-peer-urls "http://127.0.0.1:$((ETP + i))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ETP + i))" \
        --initial-cluster "$2" --initial-cluster-state "$3" \
        --initial-cluster-token scale --heartbeat-interval 100 --election-timeout 1000 \
        --auto-compaction-mode revision --auto-compaction-retention "$HISTORY" \
        --quota-backend-bytes 8589934592 --logger zap --log-level warn
}

run_etcd() {
    local i cluster=""
    for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETP + i))"; done
    for i in 1 2 3; do etcd_start "$i" "$cluster" new; done
    poll_until 60 etcd_leader 1 2 3 >/dev/null || { log "etcd: no leader"; tail -5 "$WORK"/etcd-*.log >&2; return 1; }
    local eps="127.0.0.1:$((ETC + 1)),127.0.0.1:$((ETC + 2)),127.0.0.1:$((ETC + 3))"
    local rev0 writes
    rev0=$(estatus 127.0.0.1:$((ETC + 1)) Revision)
    writes=$((REVS - ${rev0:-0}))
    [ "$writes" -ge "$KEYS" ] || writes=$KEYS
    log "etcd: fill $KEYS keys, $writes writes"
    "$LG" run --system etcd --endpoints "$eps" --workload fill --keys "$KEYS" \
        --total-ops "$writes" --value-size "$VSIZE" --concurrency "$ETCD_CONC" \
        --out "$RAW" >/dev/null 2>>"$OUT/loadgen.log" ||
        { log "etcd: the load failed (loadgen.log)"; return 1; }
    local token leader lep
    token=marker-$(date +%s%N)
    etcdctl --endpoints "$eps" put scale:last "$token" >/dev/null
    sleep 10
    leader=$(etcd_leader 1 2 3)
    lep=127.0.0.1:$((ETC + leader))
    local rev nodes="" sep=""
    rev=$(estatus "$lep" Revision)
    for i in 1 2 3; do
        local pid role=follower
        pid=$(cat "$WORK/pids/etcd-$i.pid")
        [ "$i" = "$leader" ] && role=leader
        nodes+="$sep{\"node\":$i,\"role\":\"$role\",\"rss_kib\":$(rss_kib "$pid"),\"data_dir_bytes\":$(dir_bytes "$WORK/etcd$i")}"
        sep=,
    done

    local f t0 restart_ms="null"
    f=$(for i in 1 2 3; do [ "$i" != "$leader" ] && echo "$i"; done | head -1)
    log "etcd: kill -9 and restart of member $f"
    eval "$(pid_kill_cmd "etcd-$f")"
    sleep 0.5
    t0=$(now_ms)
    sh "$WORK/start-etcd-$f.sh"
    local up_ms="null"
    etcd_up() { [ -n "$(estatus "127.0.0.1:$((ETC + f))" MemberID)" ]; }
    poll_until "$TIMEOUT" etcd_up && up_ms=$(($(now_ms) - t0))
    if poll_until "$TIMEOUT" etcd_caught_up "127.0.0.1:$((ETC + f))" "$lep" "$token"; then
        restart_ms=$(($(now_ms) - t0))
    else
        log "etcd: member $f did not catch up within $TIMEOUT s"
    fi

    local join_ms="null" join_rss=0 join_dir=0
    leader=$(etcd_leader 1 2 3)
    lep=127.0.0.1:$((ETC + leader))
    log "etcd: member 4 joins"
    # etcd refuses `member add` ("unhealthy cluster") until the leader has been connected to
    # every member for 5 s (its strict reconfiguration check), e.g. just after the restart
    # above: retry, and time from the add that is accepted.
    member_add() {
        t0=$(now_ms)
        etcdctl --endpoints "$lep" member add e4 --peer-urls "http://127.0.0.1:$((ETP + 4))" \
            >"$WORK/member-add.txt" 2>&1
    }
    if poll_until 60 member_add; then
        etcd_start 4 "$cluster,e4=http://127.0.0.1:$((ETP + 4))" existing
        if poll_until "$TIMEOUT" etcd_caught_up "127.0.0.1:$((ETC + 4))" "$lep" ""; then
            join_ms=$(($(now_ms) - t0))
            join_rss=$(rss_kib "$(cat "$WORK/pids/etcd-4.pid")")
            join_dir=$(dir_bytes "$WORK/etcd4")
        else
            log "etcd: member 4 did not catch up within $TIMEOUT s"
        fi
    else
        log "etcd: member add failed: $(cat "$WORK/member-add.txt")"
    fi
    printf '{"system":"etcd","keys":%s,"value_size":%s,"history":%s,"revision":%s,"nodes":[%s],"restart_node":%s,"restart_up_ms":%s,"restart_ms":%s,"join_ms":%s,"join_rss_kib":%s,"join_data_dir_bytes":%s}\n' \
        "$KEYS" "$VSIZE" "$HISTORY" "${rev:-null}" "$nodes" "$f" "$up_ms" "$restart_ms" "$join_ms" \
        "$join_rss" "$join_dir" >>"$SCALE"
    for i in 1 2 3 4; do
        [ -e "$WORK/pids/etcd-$i.pid" ] && eval "$(pid_kill_cmd "etcd-$i")"
    done
    sleep 1
    rm -rf "$WORK"/etcd[1-4]
}

# ---- the machine --------------------------------------------------------------------------
{
    echo "# Machine and settings"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); mode: $MODE"
    echo "- keys: $KEYS; writes: $REVS in all (first each key once, then uniform overwrites); values: $VSIZE B; history kept: the last $HISTORY revisions"
    echo "- load: redraft $RD_CONC connections × pipeline $RD_PIPE; etcd $ETCD_CONC concurrent gRPC clients; every write acknowledged"
    echo "- cores: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
    echo "- memory: $(free -g | awk '/Mem:/ {print $2}') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    dd if=/dev/zero of="$WORK/dsync.test" bs=4k count=300 oflag=dsync 2>"$WORK/dd.txt" || true
    secs=$(grep -o '[0-9.,]* s,' "$WORK/dd.txt" | tr -d ' s,' | tr ',' '.')
    echo "- disk fsync latency: $(awk -v s="$secs" 'BEGIN{ printf "%.2f ms", s * 1000 / 300 }') per 4 KiB write with O_DSYNC (dd, 300 writes, same disk as the data dirs)"
    echo "- etcd: $(etcd --version | head -1 | awk '{print $3}') (auto-compaction revision mode: every 5 minutes); redraft: $(git rev-parse --short HEAD) (snapshot_every and the other [raft] settings at their defaults${SNAP_PCT:+, except snapshot_log_percent = $SNAP_PCT})"
    echo "- both: heartbeat 100 ms, election timeout 1000 ms; three nodes on 127.0.0.1"
} >"$OUT/machine.md"
rm -f "$WORK/dsync.test"

for s in $SYSTEMS; do
    "run_$s" || log "$s: the run stopped early; its measurements are incomplete"
done

# ---- report -------------------------------------------------------------------------------
# The table, from scale.jsonl and the fill lines of results.jsonl (python3 would do it more
# shortly, but the script needs nothing beyond bash, awk and the loadgen).
field() { { grep -o "\"$2\":[^,}]*" <<<"$1" || true; } | head -1 | cut -d: -f2 | tr -d '"'; }
mib() { awk -v b="$1" 'BEGIN{ printf "%.0f", b / 1048576 }'; }
secs() { [ "$1" = null ] && echo "–" || awk -v m="$1" 'BEGIN{ printf "%.1f", m / 1000 }'; }
{
    echo "# Storage at scale: $KEYS keys of $VSIZE B, $REVS writes, history $HISTORY revisions"
    echo
    echo "| system | revision | load s | writes/s | RSS per node MiB (leader first) | RSS / key, max node | data dir per node MiB | follower restart: answers s | caught up s | new node caught up s | new node's snapshot |"
    echo "|---|---:|---:|---:|---|---:|---|---:|---:|---:|---|"
    while IFS= read -r line; do
        sys=$(field "$line" system)
        fill=$(grep "\"system\":\"$sys\"" "$RAW" | grep '"workload":"fill"' | tail -1 || true)
        rss="" dirs="" maxrss=0
        nodes=$(grep -o '{"node":[^}]*}' <<<"$line" | awk '/"leader"/ {print; next} {f = f $0 "\n"} END {printf "%s", f}')
        while IFS= read -r n; do
            r=$(field "$n" rss_kib)
            d=$(field "$n" data_dir_bytes)
            rss+="${rss:+ / }$(mib $((r * 1024)))"
            dirs+="${dirs:+ / }$(mib "$d")"
            [ "$r" -gt "$maxrss" ] && maxrss=$r
        done <<<"$nodes"
        perkey=$(awk -v r="$maxrss" -v k="$KEYS" 'BEGIN{ printf "%.0f B", r * 1024 / k }')
        snap=$(field "$line" join_snapshot_index)
        case $snap in
            "") snap="–" ;;
            null) snap="not caught up" ;;
            0) snap="none: caught up from the log" ;;
            *) snap="yes, at index $snap" ;;
        esac
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$sys" "$(field "$line" revision)" \
            "$(awk -v s="$(field "$fill" duration_s)" 'BEGIN{ printf "%.0f", s }')" \
            "$(awk -v s="$(field "$fill" throughput)" 'BEGIN{ printf "%.0f", s }')" \
            "$rss" "$perkey" "$dirs" "$(secs "$(field "$line" restart_up_ms)")" \
            "$(secs "$(field "$line" restart_ms)")" \
            "$(secs "$(field "$line" join_ms)")" "$snap"
    done <"$SCALE"
    echo
    echo "RSS is VmRSS after the load and a 10 s settle; RSS / key is the largest node's VmRSS divided by"
    echo "the $KEYS keys. Restart: kill -9 of a follower, from its start command until it answers at all"
    echo "(PING; etcd: endpoint status), and until it serves a linearizable read of the last key written"
    echo "and its applied index reaches the leader's. New node:"
    echo "from \`--join\` (redraft) or \`member add\` (etcd) until its applied index reaches the leader's"
    echo "(etcd: and its revision matches; timed from the accepted \`member add\`, which etcd refuses for"
    echo "5 s after a member reconnects). \"new node's snapshot\": redraft's raft_snapshot_index on the new"
    echo "node once caught up (0: it was sent the log, not a snapshot). scale.jsonl holds every raw figure."
    echo
    "$LG" table "$RAW"
} >"$OUT/results.md"
echo "- command: benches/scale.sh $ARGS; wall time: $(($(date +%s) - START)) s" >>"$OUT/machine.md"
cat "$OUT/results.md"
echo "results in $OUT" >&2
