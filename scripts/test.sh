#!/usr/bin/env bash
# Runs every test from a fresh clone on Debian: installs the real peers the tests use, then runs
# the whole workspace's tests. The end-to-end tests are integration tests of the root `ballast`
# package, so cargo builds the binary they start before it runs them.
#
# Peers: net-snmp's snmpd/snmpget (Debian `snmpd`, `snmp`), HAProxy and nginx (`haproxy`,
# `nginx-light`), h2load (`nghttp2-client`), promtool (extracted from Debian's `prometheus` package into .tools/), and a
# Python virtualenv (.venv/) with the CloudStack clients `cs` and `apache-libcloud`,
# `prometheus_client`'s OpenMetrics parser, and `websockets` (a real WebSocket client and
# server).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=false
apt_install() {
    if [ "$apt_updated" = false ]; then
        apt-get update -qq
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# net-snmp: the real agent and client.
if ! command -v snmpd >/dev/null 2>&1 && [ ! -x /usr/sbin/snmpd ]; then apt_install snmpd; fi
if ! command -v snmpget >/dev/null 2>&1; then apt_install snmp; fi

# HAProxy in front of Ballast and nginx behind it (the PROXY protocol tests).
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then apt_install haproxy; fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then apt_install nginx-light || apt_install nginx; fi
# h2load: the HTTP/2 load of the bench's smoke run.
if ! command -v h2load >/dev/null 2>&1; then apt_install nghttp2-client; fi

# promtool: only the binary, not the whole Prometheus server and its dependencies.
if [ ! -x .tools/promtool ]; then
    mkdir -p .tools/deb
    if ! command -v promtool >/dev/null 2>&1; then
        [ "$apt_updated" = true ] || { apt-get update -qq; apt_updated=true; }
        (cd .tools/deb && apt-get download prometheus >/dev/null)
        dpkg-deb --fsys-tarfile .tools/deb/prometheus_*.deb | tar -x -C .tools/deb ./usr/bin/promtool
        mv .tools/deb/usr/bin/promtool .tools/promtool
    else
        ln -sf "$(command -v promtool)" .tools/promtool
    fi
    rm -rf .tools/deb
fi

# Python clients and parsers, in a virtualenv. Debian's python3 is preferred: it has a working
# ssl module for pip (a Python built elsewhere on PATH may not).
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import ssl, cs, libcloud, prometheus_client, websockets' 2>/dev/null; then
    python=/usr/bin/python3
    [ -x "$python" ] || { apt_install python3; }
    rm -rf .venv
    "$python" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$python" -m venv .venv; }
    .venv/bin/pip install -q --disable-pip-version-check cs apache-libcloud prometheus_client websockets
fi

cargo test --workspace
# Smoke-run the side-by-side bench on the debug binaries the tests built, so it never rots
# (every scenario, small: about 3 minutes; its figures mean nothing and go to a temporary
# directory).
cargo build -q -p ballast-bench
bench_out=$(mktemp -d)
target/debug/bench all --quick --ballast target/debug/ballast \
    --md "$bench_out/BENCHMARKS.md" --json "$bench_out/bench-results.json"
rm -rf "$bench_out"
