#!/usr/bin/env bash
# A power cut in which the disk kept a later unsynced sector of the Raft log and lost an
# earlier one (a disk's write cache and the kernel's writeback keep no order between syncs).
# Until 2026-12-07 the restarted node refused to start: its log read as records, a hole,
# records, which open took for corruption in the middle (README, "The log on disk").
#
# One node with its data dir on lossyfs, 64 clients writing (redraft-loadgen), kill -9 at a
# random moment, `crash-reordered SEED` (each unsynced 512-byte block kept or lost by a coin),
# restart. Counts the rounds in which the node did not come back. Needs root, /dev/fuse,
# redis-cli, `cargo build --release --bins` (redraft, redraft-loadgen) and `cargo build -p
# jepsen` (lossyfs).
#
#   bash jepsen/repro/power_cut_hole_in_log_tail.sh [ROUNDS]      # default 30
#   REDRAFT_BIN=path/to/an/older/redraft bash jepsen/repro/power_cut_hole_in_log_tail.sh
#
# Exits 1 if any round's node refused to start.
set -u
cd "$(dirname "$0")/../.."
B=${REDRAFT_BIN:-$PWD/target/release/redraft}
LOADGEN=$PWD/target/release/redraft-loadgen
LOSSYFS=$PWD/target/debug/lossyfs
ROUNDS=${1:-30}
dir=$(mktemp -d /tmp/redraft-repro-XXXXXX)
mkdir "$dir/mnt"
cat > "$dir/c.toml" <<TOML
[cluster]
name = "repro-hole"
[[node]]
id = 1
raft_addr = "127.0.0.1:17201"
redis_addr = "127.0.0.1:16391"
data_dir = "$dir/mnt/n1"
TOML
"$LOSSYFS" --mount "$dir/mnt" --control "$dir/c.sock" > "$dir/lossyfs.log" 2>&1 &
LFS=$!
node=""
cleanup() {
    [ -n "$node" ] && kill -9 "$node" 2>/dev/null
    "$LOSSYFS" --control "$dir/c.sock" unmount > /dev/null 2>&1
    wait 2> /dev/null
}
trap cleanup EXIT
sleep 1
up() { # waits until the node answers PING; fails if it exits first
    for _ in $(seq 100); do
        redis-cli -p 16391 ping 2>/dev/null | grep -q PONG && return 0
        kill -0 "$node" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
refused=0 holes=0
"$B" --config "$dir/c.toml" --node 1 >> "$dir/node.log" 2>&1 &
node=$!
up || { echo "the node did not start"; exit 2; }
for round in $(seq "$ROUNDS"); do
    "$LOADGEN" run --system redraft --endpoints 127.0.0.1:16391 --workload set \
        --value-size 100 --concurrency 64 --duration 4s --warmup 0s > /dev/null 2>&1 &
    lg=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$node"
    wait "$node" 2>/dev/null
    kill "$lg" 2>/dev/null
    wait "$lg" 2>/dev/null
    dropped=$("$LOSSYFS" --control "$dir/c.sock" "crash-reordered $RANDOM$RANDOM" |
        grep -o '"blocks_kept":[0-9]*,"blocks_lost":[0-9]*,"bytes_dropped":[0-9]*')
    "$B" --config "$dir/c.toml" --node 1 > "$dir/restart.log" 2>&1 &
    node=$!
    if up; then
        status="restarted"
        grep -q "records written after it reached the disk" "$dir/restart.log" && holes=$((holes + 1)) && status="restarted, log cut at a hole"
    else
        refused=$((refused + 1))
        status="REFUSED: $(grep -o 'corrupt raft log record[^"]*' "$dir/restart.log" | head -1 | cut -c1-160)"
        kill -9 "$node" 2>/dev/null
        wait "$node" 2>/dev/null
        # Start over on a fresh data dir so the next round measures again.
        rm -rf "$dir/mnt/n1"
        "$B" --config "$dir/c.toml" --node 1 >> "$dir/node.log" 2>&1 &
        node=$!
        up || { echo "the node did not start on a fresh data dir"; exit 2; }
    fi
    echo "round $round: $dropped; $status"
    cat "$dir/restart.log" >> "$dir/node.log"
done
echo "$refused of $ROUNDS rounds refused to start; $holes cut a hole (logs in $dir)"
[ "$refused" = 0 ]
