#!/usr/bin/env bash
# Runs Ballast with configs/example.toml in front of three local backends (`ballast vm`
# processes on 127.0.0.11-13:8000). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin ballast
BALLAST=target/release/ballast

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for n in 11 12 13; do
    "$BALLAST" vm --listen "127.0.0.$n:8000" --name "vm-$n" &
    pids+=($!)
done

echo "Ballast listens on http://127.0.0.1:8080/ - try: for i in 1 2 3 4; do curl -s http://127.0.0.1:8080/; done"
"$BALLAST" run --config configs/example.toml &
pids+=($!)
wait "${pids[-1]}"
