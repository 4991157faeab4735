#!/usr/bin/env bash
# bench/rest.sh: the Webex and Objective connectors' benchmark step of
# `make bench` (make -C bench all), which rewrites the generated part of
# the "Webex and Objective connectors" section of RESULTS.md. Everything
# runs in one process on 127.0.0.1: each connector against its stand-in
# (cmd/restbench).
#
# Environment: QUICK=1 (2000 items, one run, results to
# out/RESULTS.quick.md), REST_N (default 10000), REST_RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p out/bin
go build -trimpath -o out/bin/restbench ./cmd/restbench
if [ -n "${QUICK:-}" ]; then
	out/bin/restbench -n 2000 -runs 1 -results out/RESULTS.quick.md >/dev/null # its block; the other steps' blocks are kept
else
	out/bin/restbench -n "${REST_N:-10000}" -runs "${REST_RUNS:-5}" -results RESULTS.md
fi
