# Shared by the scripts in benches/: build, scratch folder, process cleanup, a local
# three-node cluster, a local Redis, a local etcd cluster (compare.sh), medians. Source it; it
# defines functions only, plus WORK, BIN and PIDS once `bench_init` has run.
#
# Processes are stopped by PID only, never by name (other people's servers may run here):
# those in PIDS, and those whose PID a start script wrote to $WORK/pids/NAME.pid (the
# processes compare.sh's failover restarts through such scripts).

# Builds the release binary, makes a scratch folder, and kills every process the script
# started (by PID) when it exits. `bench_init redraft-loadgen` builds the load generator in the
# same cargo command: built separately, redraft's dependencies would be compiled a second time
# (cargo unifies features over the packages of one command).
#
# REDRAFT_BIN=path skips the build and runs that binary instead (to compare two builds: run
# the script once per binary, alternating).
bench_init() {
    if [ -n "${REDRAFT_BIN:-}" ]; then
        BIN=$REDRAFT_BIN
    elif [ $# -gt 0 ]; then
        local p pkgs=()
        for p in "$@"; do pkgs+=(-p "$p"); done
        cargo build --release --locked -q -p redraft "${pkgs[@]}"
    else
        cargo build --release --locked -q --bin redraft
    fi
    if [ -z "${REDRAFT_BIN:-}" ]; then
        BIN=$PWD/target/release/redraft
    fi
    WORK=$(mktemp -d)
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    local f
    for f in "$WORK"/pids/*.pid; do
        [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# Fails unless every port named is free on 127.0.0.1.
need_free_ports() {
    local p
    for p in "$@"; do
        if ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "port $p is in use; set BENCH_PORT_BASE to another base (e.g. 23000)" >&2
            exit 1
        fi
    done
}

# pid_start NAME COMMAND...: writes $WORK/start-NAME.sh, which starts COMMAND in the
# background (output appended to $WORK/NAME.log) and records its PID in $WORK/pids/NAME.pid;
# then runs it. The script can be run again to restart the process.
pid_start() {
    local name=$1 q
    shift
    mkdir -p "$WORK/pids"
    q=$(printf '%q ' "$@")
    printf '#!/bin/sh\n%s >>%q 2>&1 </dev/null &\necho $! >%q\n' \
        "$q" "$WORK/$name.log" "$WORK/pids/$name.pid" >"$WORK/start-$name.sh"
    sh "$WORK/start-$name.sh"
}

# pid_kill_cmd NAME: a shell command that kill -9s the process NAME and forgets its PID (NAME
# may hold the loadgen's `{node}` placeholder; WORK, from mktemp, needs no quoting).
pid_kill_cmd() {
    local f="$WORK/pids/$1.pid"
    echo "p=\$(cat '$f') && rm -f '$f' && kill -9 \"\$p\""
}

# Fails unless every named tool is installed.
need_tools() {
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "need $t: apt-get install redis-tools redis-server" >&2; exit 1; }
    done
}

# start_cluster RAFT_BASE REDIS_BASE: a three-node cluster on 127.0.0.1 ports RAFT_BASE+i and
# REDIS_BASE+i (i = 1..3); waits for a leader; sets LEADER and FOLLOWER (redis ports) and
# CLUSTER_PORTS. CLUSTER_EXTRA_TOML=FILE appends that file (e.g. a `[raft]` section) to the
# cluster's configuration.
start_cluster() {
    local raft_base=$1 redis_base=$2 i
    {
        echo "[cluster]"
        echo 'name = "bench"'
        for i in 1 2 3; do
            echo "[[node]]"
            echo "id = $i"
            echo "raft_addr = \"127.0.0.1:$((raft_base + i))\""
            echo "redis_addr = \"127.0.0.1:$((redis_base + i))\""
            echo "data_dir = \"$WORK/node$i\""
        done
        if [ -n "${CLUSTER_EXTRA_TOML:-}" ]; then cat "$CLUSTER_EXTRA_TOML"; fi
    } >"$WORK/cluster.toml"
    CLUSTER_PORTS=()
    for i in 1 2 3; do
        "$BIN" --config "$WORK/cluster.toml" --node $i --log warn 2>"$WORK/node$i.log" &
        PIDS+=($!)
        CLUSTER_PORTS+=($((redis_base + i)))
    done
    LEADER=""
    for _ in $(seq 1 100); do
        for p in "${CLUSTER_PORTS[@]}"; do
            if [ "$(redis-cli -p "$p" ROLE 2>/dev/null | head -1)" = master ]; then LEADER=$p; fi
        done
        [ -n "$LEADER" ] && break
        sleep 0.1
    done
    [ -n "$LEADER" ] || { echo "no leader elected; logs in $WORK" >&2; tail -5 "$WORK"/node*.log >&2; exit 1; }
    FOLLOWER=$(for p in "${CLUSTER_PORTS[@]}"; do [ "$p" != "$LEADER" ] && echo "$p"; done | head -1)
}

# start_redis PORT [redis-server options...]: a local Redis without snapshots.
# cluster_endpoints all|leader|followers: the started cluster's client addresses (after
# start_cluster), comma-separated: every node (clients round-robin, as compare.sh), the leader
# only, or the followers only (every write forwarded).
cluster_endpoints() {
    local port out=""
    for port in "${CLUSTER_PORTS[@]}"; do
        case $1 in
            leader) [ "$port" = "$LEADER" ] || continue ;;
            followers) [ "$port" != "$LEADER" ] || continue ;;
        esac
        out="$out${out:+,}127.0.0.1:$port"
    done
    echo "$out"
}

start_redis() {
    local port=$1
    shift
    redis-server --port "$port" --save '' --dir "$WORK" --daemonize no "$@" \
        >"$WORK/redis-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 50); do
        redis-cli -p "$port" PING >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "redis-server on $port did not start" >&2
    exit 1
}

# Median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END{ if (NR == 0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
