#!/bin/bash
# bench/capacity.sh: what one load generator pushes on this machine, against
# two (RESULTS.md, "Load generator capacity"). Starts the bare ceiling server
# and two `connector bench worker` processes on 127.0.0.1, alternates 4 runs of
# one generator and 4 of two (GetVersion, 32 connections, 5 s each), stops
# them by PID, and prints the comparison. Run from bench/ after `make build`:
#   ./capacity.sh            (CONNECTOR=../bin/connector, CEILING=out/bin/ceiling)
set -u
cd "$(dirname "$0")"
CONNECTOR=${CONNECTOR:-../bin/connector}
CEILING=${CEILING:-out/bin/ceiling}
OUT=${OUT:-out/capacity}
mkdir -p "$OUT" out/bin
[ -x "$CEILING" ] || go build -trimpath -o "$CEILING" ./cmd/ceiling
CONNECTOR=$(realpath "$CONNECTOR")
CEILING=$(realpath "$CEILING")
cd "$OUT"
rm -f one-*.json two-*.json
"$CEILING" -addr 127.0.0.1:0 > ceiling.out 2>&1 & CP=$!
"$CONNECTOR" bench worker -listen 127.0.0.1:0 > w1.out 2>w1.err & W1=$!
"$CONNECTOR" bench worker -listen 127.0.0.1:0 > w2.out 2>w2.err & W2=$!
trap 'kill $CP $W1 $W2 2>/dev/null; wait' EXIT
for i in $(seq 50); do grep -q listening ceiling.out w1.out w2.out 2>/dev/null && [ -s w1.out ] && [ -s w2.out ] && [ -s ceiling.out ] && break; sleep 0.1; done
C=$(sed -n 's/listening //p' ceiling.out); A1=$(sed -n 's/listening //p' w1.out); A2=$(sed -n 's/listening //p' w2.out)
echo "ceiling $C workers $A1 $A2 load $(cat /proc/loadavg)"
for i in 1 2 3 4; do
  "$CONNECTOR" bench -quiet -concurrency 32 -duration 5s -json one-$i.json http://$C > /dev/null || echo fail one-$i
  "$CONNECTOR" bench -quiet -concurrency 32 -duration 5s -workers $A1,$A2 -json two-$i.json http://$C > /dev/null || echo fail two-$i
done
echo "load after $(cat /proc/loadavg)"
"$CONNECTOR" bench compare -html compare.html 'one=one-*.json' 'two=two-*.json'
