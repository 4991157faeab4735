#!/usr/bin/env bash
# bench/clustercrash.sh: the cluster crash step of `make bench` (make -C
# bench all), the bigger variant of `make test`'s cluster crash test.
#
# Runs TestClusterCrashLosesNothing (cmd/connector/cluster_crash_test.go)
# with CONNECTOR_CLUSTER_CRASH_ROUNDS=CLUSTER_CRASH_ROUNDS rounds (default
# 25; make test runs 2; QUICK=1: 3): a three-member etcd, PostgreSQL and
# three real nodes on loopback (etcd-server and postgresql are installed
# when missing); in each round submitters (and Stops and
# Cancels) go to random nodes while a random node is killed with SIGKILL at
# a random moment and started again. The test fails on the first
# acknowledged token lost, answered differently by two nodes, or whose
# acknowledged Stop or Cancel was undone; so does this script (and make
# bench). The log is bench/out/clustercrash.log. Takeover timings are the
# cluster benchmarks' (RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")"

QUICK=${QUICK:-}
ROUNDS=${CLUSTER_CRASH_ROUNDS:-25}
if [ -n "$QUICK" ]; then
	ROUNDS=3
fi
# The test runs Debian's etcd and PostgreSQL (internal/clustertest).
../scripts/ensure-deb.sh etcd-server postgresql
mkdir -p out
log=out/clustercrash.log
t0=$(date +%s)
echo "clustercrash: $ROUNDS kill -9 rounds of a three-node cluster (log in bench/$log)" >&2
if ! (cd .. && CONNECTOR_CLUSTER_CRASH_ROUNDS=$ROUNDS go test -count=1 -timeout 60m -v \
	-run '^TestClusterCrashLosesNothing$' ./cmd/connector) >"$log" 2>&1; then
	tail -60 "$log" >&2
	echo "clustercrash: FAILED: see bench/$log" >&2
	exit 1
fi
acked=$(sed -n 's/.*: \([0-9]*\) acknowledged actions$/\1/p' "$log" | tail -1)
echo "clustercrash: $ROUNDS rounds passed in $(($(date +%s) - t0))s: ${acked:-?} acknowledged actions, none lost" >&2
