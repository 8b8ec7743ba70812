#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs the whole suite.
#
# Needs: a Rust toolchain; redis-cli and redis-benchmark (Debian's redis-tools) and
# redis-server (differential tests against real Redis), which this
# script installs with apt-get when they are missing. Tests that need a missing tool fail and
# say how to get it; none is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
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

cargo test --locked "$@"
bash scripts/jepsen-ci.sh
