#!/usr/bin/env bash
# bench/cluster-compare.sh: issue 17's cluster figures before and after a
# change, interleaved in one run, outside `make bench`.
#
#   ./cluster-compare.sh REV [ROUNDS] [MODES]
#
# builds the connector of REV and of this tree, and the current
# clusterbench, then ROUNDS times (default 3) runs clusterbench -runs 1
# -mode MODES (default scale,quota,hop) once with each connector, in
# alternating order (REV first in odd rounds). Prints, for every figure,
# the median (min–max) over the rounds for REV and for this tree, and
# after ÷ before taken within each round, median (min–max) over the rounds
# (clusterbench -mode compare; run it again on out/cluster-compare to
# print the table of the last comparison). The
# clusterbench options are cluster.sh's: DUR (4s), QUOTA (0.05), STOPS
# (60), LOAD (here total: 16 submitters in all; total,per-node adds the
# rows with 16 per node; rate the scale rows with RATE (300) submissions a
# second offered to each node). Needs root for the quota rows (cgroup v1). Raw JSON and logs in
# out/cluster-compare/.
set -euo pipefail
cd "$(dirname "$0")"
REV=${1:?usage: cluster-compare.sh REV [ROUNDS] [MODES]}
ROUNDS=${2:-3}
MODES=${3:-scale,quota,hop}
DUR=${DUR:-4s}
QUOTA=${QUOTA:-0.05}
STOPS=${STOPS:-60}
LOAD=${LOAD:-total}
RATE=${RATE:-300}

# Every cluster runs Debian's etcd and PostgreSQL (internal/clustertest).
../scripts/ensure-deb.sh etcd-server postgresql
W=$(mktemp -d /tmp/cluster-compare-XXXXXX)
cleanup() {
	git -C .. worktree remove --force "$W/before-tree" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

out=out/cluster-compare
rm -rf "$out"
mkdir -p out/bin "$out"
go build -trimpath -o out/bin/clusterbench ./cmd/clusterbench
git -C .. worktree add -q --detach "$W/before-tree" "$REV"
(cd "$W/before-tree" && go build -trimpath -o "$W/connector-before" ./cmd/connector)
(cd .. && go build -trimpath -o "$W/connector-after" ./cmd/connector)

for i in $(seq 1 "$ROUNDS"); do
	order="before after"
	if [ $((i % 2)) = 0 ]; then order="after before"; fi
	for v in $order; do
		echo "$(date -u +%T) round $i: $v" >&2
		if ! out/bin/clusterbench -connector "$W/connector-$v" -mode "$MODES" -runs 1 -dur "$DUR" -quota "$QUOTA" -load "$LOAD" -rate "$RATE" \
			-stops "$STOPS" >"$out/$v-$i.json" 2>"$out/$v-$i.log"; then
			echo "round $i $v failed (left out): $(tail -1 "$out/$v-$i.log")" >&2
			rm -f "$out/$v-$i.json"
		fi
	done
done

# Every metric: each side's median (min–max) and after ÷ before within
# each round where both sides ran, median (min–max) over those rounds.
echo "before: $REV; after: this tree ($(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown), uncommitted changes included)"
out/bin/clusterbench -mode compare -in "$out"
