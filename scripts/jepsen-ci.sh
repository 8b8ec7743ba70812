#!/usr/bin/env bash
# The short Jepsen run of CI (jepsen/README.md): a ~60 s run against a real three-node cluster
# (kill, pause, partition, leader-transfer and membership nemeses; register and set workloads,
# two cache readers keeping client-side caches: jepsen/src/cache.rs; history compacted to the
# last 300 revisions, with a lagging watcher resuming below it) that must end
# `linearizable: true`, a ~40 s run in lease read mode with the peers over mutual TLS and
# drifting clocks (kill, pause, partition and forced snapshots over a preloaded keyspace) that
# must end `linearizable: true`, then a ~20 s
# negative control with read_mode = "stale" and partitions that must end
# `linearizable: false` (the checker bites on the real system), and a ~15 s control whose nodes
# send no invalidations, which the cache check must catch. The harness's unit tests and
# its tests against real nodes run in scripts/test.sh's `cargo test --workspace`.
#
# Power loss (data dirs on lossyfs, jepsen/README.md "Power loss"; needs root and /dev/fuse):
# two controls that must catch a log that does not fsync — the plain power-cut check and a
# short cluster run, both with REDRAFT_FAILPOINTS=log_sync_off, must end `false` — and the real
# checks: the plain power-cut check (200 acknowledged SETs, power cut, all 200 back) and a ~30 s
# cluster run with the power-loss and kill nemeses, both of which must end `true`
# (JEPSEN_POWER_LOSS=0 leaves the real checks out).
#
# Needs root for network namespaces (without it the harness runs on 127.0.0.1 with kill and
# pause only, and says so). Installs iproute2, iptables and fonts-dejavu-core (plot text) with
# apt-get when missing, as scripts/test.sh does for redis-tools.
#
# The binary under test: target/debug/redraft, which `cargo test --workspace` has just built (a
# release build from scratch costs CI minutes); JEPSEN_PROFILE=release builds and tests the
# release one.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# Clock faults of the lease run (jepsen/src/clock.rs).
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || missing+=(libfaketime)
# lossyfs mounts with mount(2) as root; fusermount3 is fuser's fallback.
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
if ((${#missing[@]})); then
    echo "jepsen-ci.sh: installing ${missing[*]}" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "jepsen-ci.sh: no root: partitions will be skipped; plot without text" >&2
    fi
fi

start=$SECONDS
if [ "${JEPSEN_PROFILE:-debug}" = release ]; then
    cargo build --locked --release --bin redraft
    cargo build --locked -p jepsen
    bin=target/release/redraft
else
    # The binaries `cargo test --locked --workspace` (scripts/test.sh) has just built, with the
    # same feature set, so nothing is compiled again; `cargo build` of one package would pick
    # other features for the shared dependencies and rebuild them all.
    cargo test --locked --workspace --no-run
    bin=target/debug/redraft
fi
# The harness's own tests (jepsen/tests/) run in scripts/test.sh's `cargo test --workspace`.
harness=target/debug/redraft-jepsen
out=${JEPSEN_OUT:-jepsen/store/ci}
mkdir -p "$out"

# The main run: every verdict must be true. It ends with kill -9 of every node and a restart
# (jepsen/README.md bug #2 was found that way). History is kept to the last 300 revisions, so
# compaction runs throughout, and a lagging watcher resumes below the compact revision: it must
# be told COMPACTED and see everything from the oldest revision left (never a silent gap).
# Half the clients read in lease mode (READMODE per connection), so lease reads also meet the
# transfer and membership faults.
"$harness" --bin "$bin" --out "$out" --time-limit "${JEPSEN_TIME_LIMIT:-60}" \
    --nemesis kill,pause,partition,transfer,membership --workload register,set \
    --nemesis-interval 4 --fault-duration 5 --history-revisions 300 \
    --client-read-modes linearizable,lease ${JEPSEN_CI_FLAGS:-} \
    | tee "$out/main.txt" || true
last=$(tail -n 1 "$out/main.txt")
if [ "$last" != "linearizable: true" ]; then
    echo "jepsen-ci.sh: main run ended with '$last' (want 'linearizable: true'); see $out" >&2
    exit 1
fi

# Lease reads: the same register workload with read_mode = "lease", under kills, pauses and
# partitions of the leader (the faults a lease must survive) and forced snapshots while the
# clients read from every node (a leader whose apply lags its commit). The peers of this run
# speak mutual TLS (--peer-tls: certificates from `redraft cert`), so reconnects after kills,
# pauses and partitions, and snapshots in chunks, go through TLS sessions. The nodes' clocks
# drift (--clock-drift 0.2: every start of a node runs its clocks at a rate in [1/1.2, 1.2]
# through libfaketime, two nodes at most 1.44 apart, inside the lease's margin of 1.5).
"$harness" --bin "$bin" --out "$out" --time-limit "${JEPSEN_LEASE_TIME_LIMIT:-40}" \
    --read-mode lease --nemesis kill,pause,partition,snapshot --workload register --peer-tls \
    --nemesis-interval 3 --fault-duration 4 --clock-drift 0.2 \
    | tee "$out/lease.txt" || true
last=$(tail -n 1 "$out/lease.txt")
if [ "$last" != "linearizable: true" ]; then
    echo "jepsen-ci.sh: lease run ended with '$last' (want 'linearizable: true'); see $out" >&2
    exit 1
fi

passed=2
# Control for the cache check: nodes that never send invalidations (failpoint
# tracking_invalidations_off) must leave the cache readers disagreeing with the cluster.
"$harness" --bin "$bin" --out "$out" --time-limit 8 --nemesis none --workload register \
    --watchers 0 --cache-converge-timeout 5 --failpoints tracking_invalidations_off \
    | tee "$out/cache-control.txt" || true
if [ "$(tail -n 1 "$out/cache-control.txt")" != "linearizable: false" ] \
    || ! grep -q '^cache: false' "$out/cache-control.txt"; then
    echo "jepsen-ci.sh: the cache control did not end 'cache: false': the cache check failed" \
        "to catch caches that are never invalidated; see $out" >&2
    exit 1
fi
passed=$((passed + 1))
# Negative control: stale reads from nodes cut off by partitions must be caught. The clients are
# pinned to their nodes: clients that moved on at random left a cut-off node after their first
# failed write, and one CI run (seed 16481234925570706455) read nothing there and ended `true`.
if [ "$(id -u)" = 0 ]; then
    "$harness" --bin "$bin" --out "$out" --time-limit 20 --read-mode stale --pinned-clients \
        --nemesis partition --workload register --nemesis-interval 3 --fault-duration 5 \
        | tee "$out/stale.txt" || true
    last=$(tail -n 1 "$out/stale.txt")
    if [ "$last" != "linearizable: false" ]; then
        echo "jepsen-ci.sh: stale-read control ended with '$last' (want 'linearizable: false'):" \
            "the checker failed to catch stale reads" >&2
        exit 1
    fi
    passed=$((passed + 1))
fi

# Power loss: `expect NAME WANT CMD...` runs a harness command, keeps its output in
# $out/NAME.txt and fails unless its last line is WANT.
expect() {
    local name=$1 want=$2
    shift 2
    "$@" | tee "$out/$name.txt" || true
    local got
    got=$(tail -n 1 "$out/$name.txt")
    if [ "$got" != "$want" ]; then
        echo "jepsen-ci.sh: $name ended with '$got' (want '$want'); see $out" >&2
        exit 1
    fi
    passed=$((passed + 1))
}
if [ "$(id -u)" = 0 ] && [ -e /dev/fuse ]; then
    # Controls: a log that skips its fsyncs must be caught, alone and in a cluster (the run
    # ends with a power cut of every node, so nothing unsynced can survive anywhere).
    expect powercut-sync-off "durable: false" \
        "$harness" --bin "$bin" --out "$out" --power-cut-sets 200 --failpoints log_sync_off
    expect power-loss-sync-off "linearizable: false" \
        "$harness" --bin "$bin" --out "$out" --time-limit 10 --nemesis power-loss \
        --workload register,set --nemesis-interval 3 --fault-duration 2 \
        --failpoints log_sync_off
    if [ "${JEPSEN_POWER_LOSS:-1}" = 1 ]; then
        expect powercut "durable: true" \
            "$harness" --bin "$bin" --out "$out" --power-cut-sets 200
        expect power-loss "linearizable: true" \
            "$harness" --bin "$bin" --out "$out" --time-limit "${JEPSEN_POWER_LOSS_TIME_LIMIT:-30}" \
            --nemesis power-loss,kill --workload register,set --nemesis-interval 4 \
            --fault-duration 3
    else
        echo "jepsen-ci.sh: power-loss runs off (JEPSEN_POWER_LOSS=0)" >&2
    fi
else
    echo "jepsen-ci.sh: no root or no /dev/fuse: power-loss controls and runs not run" >&2
fi
echo "jepsen-ci.sh: passed in $((SECONDS - start)) s"
# The plain closing line CI reads: the runs above, each checked against its expected verdict.
echo "jepsen: $passed passed, 0 failed"
