#!/usr/bin/env bash
# Reproduces jepsen/README.md "Bugs found" #2: right after kill -9 of every node and a restart,
# the first linearizable GET of the last acknowledged key can return nil; the value reappears
# later (the write is not lost, the read is stale). Needs redis-cli and a release build.
#
#   bash jepsen/repro/stale_read_after_full_restart.sh [ROUNDS]
#
# Exits 1 if any round read nil or an old value first.
set -u
cd "$(dirname "$0")/../.."
B=${REDRAFT_BIN:-$PWD/target/release/redraft}
dir=$(mktemp -d /tmp/redraft-repro-XXXXXX)
cd "$dir"
cat > c.toml <<TOML
[cluster]
name = "repro"
[[node]]
id = 1
raft_addr = "127.0.0.1:17101"
redis_addr = "127.0.0.1:16381"
data_dir = "d1"
[[node]]
id = 2
raft_addr = "127.0.0.1:17102"
redis_addr = "127.0.0.1:16382"
data_dir = "d2"
[[node]]
id = 3
raft_addr = "127.0.0.1:17103"
redis_addr = "127.0.0.1:16383"
data_dir = "d3"
[raft]
heartbeat_ms = 50
election_timeout_ms = 500
TOML
pids=()
start() { pids=(); for i in 1 2 3; do "$B" --config c.toml --node "$i" >> "n$i.log" 2>&1 & pids+=($!); done; }
stop() { kill -9 "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }
trap stop EXIT
start; sleep 2
stale=0
for round in $(seq 1 "${1:-6}"); do
    for k in $(seq 1 20); do redis-cli -p "1638$((k % 3 + 1))" SET "key$round-$k" "v$k" > /dev/null; done
    stop; sleep 0.3; start
    r=
    for _ in $(seq 1 100); do
        r=$(redis-cli -p 16381 GET "key$round-20" 2>&1)
        case "$r" in TRYAGAIN*|*refused*|*ERR*) sleep 0.05 ;; *) break ;; esac
    done
    echo "round $round: first GET key$round-20 after the restart -> '$r' (want v20)"
    [ "$r" = v20 ] || stale=$((stale + 1))
    sleep 1
done
echo "stale first reads: $stale (logs in $dir)"
[ "$stale" = 0 ]
