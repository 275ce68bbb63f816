#!/bin/bash
# Alternating wrk runs against HAProxy, nginx and Ballast (each pinned to CPU 1, alone) in front
# of the same backend (bench backend, CPU 0); wrk on CPU 0. Prints req/s, latency, proxy CPU/req.
# Needs: apt-get install haproxy nginx-light wrk bc; cargo build --release -p ballast -p ballast-bench
B="$(cd "$(dirname "$0")/../.." && pwd)/target/release"
WORK=$(mktemp -d); cp "$(dirname "$0")"/{haproxy.cfg,nginx.conf,ballast.toml} "$WORK"; cd "$WORK"; mkdir -p body proxy fcgi uwsgi scgi; sed -i "s|/tmp/cmp|$WORK|g" nginx.conf
nice -n -20 taskset -c 0 $B/bench backend --listen 127.0.0.1:28000 >/dev/null 2>&1 & BE=$!
nice -n -20 taskset -c 1 haproxy -db -f haproxy.cfg >/dev/null 2>&1 & HA=$!
nice -n -20 taskset -c 1 nginx -c "$WORK/nginx.conf" >/dev/null 2>&1 & NG=$!
nice -n -20 taskset -c 1 $B/ballast run --config ballast.toml >/dev/null 2>&1 & BA=$!
sleep 2
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for round in 1 2 3 4 5; do
  for t in "haproxy 28081 $HA" "nginx 28082 $NG" "ballast 28083 $BA"; do
    set -- $t
    nice -n -20 taskset -c 0 wrk -t1 -c50 -d2s http://127.0.0.1:$2/ >/dev/null
    c0=$(cpu $3)
    out=$(nice -n -20 taskset -c 0 wrk -t1 -c50 -d8s --latency http://127.0.0.1:$2/)
    c1=$(cpu $3)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    us=$(echo "($c1-$c0)*10000/$reqs" | bc -l)
    printf "round %d %-8s %10s req/s  p50 %8s p99 %8s  proxy %.2f us/req\n" $round $1 $rps $p50 $p99 $us
  done
done
kill $BE $HA $NG $BA; rm -rf "$WORK"
