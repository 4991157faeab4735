#!/usr/bin/env bash
# fuzz.sh DURATION: run every fuzz target of the module for DURATION each
# (go test -fuzz runs one target at a time). New crashers land in the
# package's testdata/fuzz/<Target>/ and become regression seeds.
set -euo pipefail
dur="${1:-30s}"
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u || true)
	for t in $targets; do
		echo "== $pkg $t ($dur)"
		go test -run '^$' -fuzz "^${t}\$" -fuzztime "$dur" "$pkg" || status=1
	done
done
exit $status
