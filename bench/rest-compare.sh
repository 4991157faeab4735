#!/usr/bin/env bash
# bench/rest-compare.sh: before/after of the Webex and Objective
# connectors, interleaved. The same restbench (this tree's
# cmd/restbench) is built against the connectors of BASE (a git
# revision, default main) and of this tree; PAIRS times, both builds run
# `restbench -n N -runs 1` (both connectors, or ONLY=webex|objective), in
# alternating order: the BASE build first in odd pairs, this one first in
# even pairs (on a noisy machine the second of two runs in a row is not
# in the same state as the first). The output is their log lines (items per
# second, ceiling, CPU of the process per 1000 items), "== before" or
# "== after" first, for medians by hand. Not part of `make bench`.
#
# Environment: BASE (default main), PAIRS (default 4), N (default 10000),
# ONLY.
set -euo pipefail
cd "$(dirname "$0")"
base=${BASE:-main}
mkdir -p out/bin
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git -C .. archive "$base" | tar -x -C "$old"
cp cmd/restbench/main.go "$old/bench/cmd/restbench/main.go"
(cd "$old/bench" && go build -trimpath -o "$OLDPWD/out/bin/restbench.before" ./cmd/restbench)
go build -trimpath -o out/bin/restbench.after ./cmd/restbench
for i in $(seq 1 "${PAIRS:-4}"); do
	order="before after"
	if [ $((i % 2)) = 0 ]; then order="after before"; fi
	for b in $order; do
		echo "== $b pair $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
		out/bin/restbench.$b -n "${N:-10000}" -runs 1 ${ONLY:+-only "$ONLY"} 2>&1 | grep -E " run 1:"
	done
done
