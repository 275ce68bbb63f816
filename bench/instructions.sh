#!/usr/bin/env bash
# Instructions Ballast's own code runs per proxied request, counted by valgrind's
# callgrind: user space only, and the same from run to run whatever else the machine does, so
# two builds compare where wall-clock figures drown in noise. (It says nothing of the kernel's
# share; `bench http` measures the whole.)
#
#   bench/instructions.sh [--h2c] [BALLAST...]     default: target/release/ballast
#
# For each binary: `bench backend` as the member, Ballast with one HTTP vserver and one worker
# under callgrind, `wrk -t1 -c10` for 10 s through it (HTTP/1.1 keep-alive; with `--h2c`,
# `h2load -t1 -c10 -m10`: HTTP/2 with prior knowledge, 10 streams per connection), then the
# total instructions divided by the requests the client counted (start-up and shutdown add
# about 0.1%). Needs valgrind, and wrk or h2load (`apt-get install -y valgrind wrk
# nghttp2-client`), and a release build of `bench` and `ballast`.
set -euo pipefail
cd "$(dirname "$0")/.."

client=wrk
if [ "${1:-}" = "--h2c" ]; then
    client=h2load
    shift
fi
bench=target/release/bench
[ -x "$bench" ] || { echo "build first: cargo build --release -p ballast -p ballast-bench" >&2; exit 1; }
for tool in valgrind callgrind_annotate "$client"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y valgrind wrk nghttp2-client" >&2; exit 1; }
done
[ $# -gt 0 ] || set -- target/release/ballast

work=$(mktemp -d)
children=()
cleanup() {
    for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A free port for the member and one for the vserver (the kernel picks them).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
member_port=$(free_port)
vserver_port=$(free_port)

cat > "$work/ballast.toml" <<EOF
[ballast]
workers = 1

[[servicegroup]]
servicegroupname = "backend"
servicetype = "HTTP"
members = [{ ip = "127.0.0.1", port = $member_port }]

[[lbvserver]]
name = "bench"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = $vserver_port
lbmethod = "ROUNDROBIN"
servicegroupname = "backend"
EOF

"$bench" backend --listen "127.0.0.1:$member_port" >/dev/null 2>&1 &
children+=($!)

printf '%-40s %14s %10s %12s\n' binary instructions requests "per request"
for ballast in "$@"; do
    out="$work/callgrind.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$ballast" run --config "$work/ballast.toml" >"$work/ballast.log" 2>&1 &
    proxy=$!
    children+=("$proxy")
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$vserver_port") 2>/dev/null && break
        sleep 0.3
    done
    url="http://127.0.0.1:$vserver_port/"
    if [ "$client" = wrk ]; then
        requests=$(wrk -t1 -c10 -d10s "$url" | awk '/requests in/ {print $1}') || true
    else
        requests=$(h2load -t1 -c10 -m10 -D 10 "$url" | awk '/^requests:/ {print $8}') || true
    fi
    kill -TERM "$proxy" 2>/dev/null || true
    wait "$proxy" || true
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}') || true
    if [ -z "$total" ] || [ -z "$requests" ] || [ "$requests" = 0 ]; then
        echo "$ballast: nothing measured; its log ends:" >&2
        tail -5 "$work/ballast.log" >&2
        exit 1
    fi
    printf '%-40s %14s %10s %12s\n' "$ballast" "$total" "$requests" "$((total / requests))"
done
