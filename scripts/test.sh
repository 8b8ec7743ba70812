#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs the whole suite: cargo
# test over the workspace (redraft, the jepsen harness, the load generator), then the short
# jepsen run (scripts/jepsen-ci.sh), then builds the benchmarks (`cargo build --benches`:
# they are built, never timed, here) and type-checks the cargo-fuzz targets. Ends with one
# line: total passed/failed.
#
# Needs: a Rust toolchain; redis-cli and redis-benchmark (Debian's redis-tools) and
# redis-server (differential tests against real Redis); fusermount3 (Debian's fuse3, for
# jepsen's lossyfs); protoc (Debian's protobuf-compiler, which etcd-client's build script needs
# for the load generator); strace (the log's fdatasync count in tests/durability/wal_durability.rs);
# ip and iptables (Debian's iproute2 and iptables: the jepsen harness's tests in network
# namespaces); libfaketime (Debian's libfaketime: the harness's clock faults); node and npm
# (Debian's nodejs and npm: tests/compat/uncertain_replies.rs installs a pinned ioredis
# with npm under target/); chromium and chromedriver (Debian's chromium and chromium-driver: the
# console's browser test). This script installs them with apt-get when they are missing. Tests
# that need a missing tool fail and say how to get it; none is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# lossyfs (jepsen's power-loss filesystem, run by scripts/jepsen-ci.sh): fusermount3.
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The jepsen harness's tests against real nodes in network namespaces (jepsen/tests/*) run in
# the `cargo test` below, before scripts/jepsen-ci.sh would install these.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
# Clock faults (jepsen/src/clock.rs; jepsen/tests/lease_clock_drift.rs): libfaketime.
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || missing+=(libfaketime)
# The web console's browser test (tests/cluster/console.rs): headless Chromium over WebDriver.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "test.sh: need ${missing[*]}: run 'apt-get install ${missing[*]}' as root" >&2
        exit 1
    fi
fi

# Everything is also written to a log, so the last line can sum it up for people and CI.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The whole workspace in one build: redraft, the jepsen harness's unit tests and its tests
# against real nodes (they run target/debug/redraft, built by this same command), and the load
# generator's. One `cargo test --workspace` compiles every shared dependency once with one
# feature set; testing the packages one by one rebuilt tokio, serde and the rest per package.
cargo test --locked --workspace "$@" 2>&1 | tee "$log"
# The short jepsen run (jepsen/README.md): fails unless the main run is linearizable and the
# stale-read control is caught.
bash scripts/jepsen-ci.sh 2>&1 | tee -a "$log"
# The benchmarks compile (not run: CI machines are too noisy to gate on speed). Built in the
# test build's profile and features, so only the bench targets themselves compile; a release
# build (`cargo bench --no-run`) recompiled everything and cost CI 8 to 20 minutes.
cargo build --locked --workspace --benches 2>&1 | tee -a "$log"
# The cargo-fuzz targets (fuzz/: the framer, snapshot decoding, the WAL's open) type-check on
# stable: running them needs nightly and cargo-fuzz (fuzz/Cargo.toml), but a change to the
# API they call fails here, not months later. Its own lockfile, with the main one's versions.
cargo check --locked --manifest-path fuzz/Cargo.toml --bins 2>&1 | tee -a "$log"
awk '/^test result:/ {
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^passed;?$/) p += $(i - 1)
            if ($i ~ /^failed;?$/) f += $(i - 1)
        }
     }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
