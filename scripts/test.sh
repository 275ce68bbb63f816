#!/usr/bin/env bash
# Runs every test from a fresh clone on Debian: installs the real peers the tests need, builds
# the `ballast` binary that the end-to-end tests start, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers used by the tests (none needed by the Foundation tests yet; later issues add
# net-snmp, promtool and the Python CloudStack clients here).
need_apt=()
for tool in curl; do
    command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

cargo build --workspace --bins
cargo test --workspace
