#!/usr/bin/env bash
# bench/crawlcompare.sh: before/after of our crawl against the tokenising
# ceiling, interleaved in one run, outside `make bench`.
#
#   ./crawlcompare.sh REV [RUNS] [CONCS] [MODE]
#
# builds crawlours from REV's product code with this revision's harness
# (bench/cmd/crawlours), so that both sides end a Synchronize the same way
# (with the queue's commit of the action's end, which carries the deferred
# datastore writes), and the current crawlours; serves the PostgreSQL
# manual (cmd/crawlsite) and, RUNS times at each concurrency of CONCS
# (default 7 and 4,8,16), runs the tokenising ceiling (crawlget -tokenize),
# then REV's and the current crawlours -mode MODE (sync, the durable
# Synchronize, by default; or engine), in alternating order (REV's first in
# odd runs, the current one first in even runs: on a noisy machine the
# second of two runs in a row is not in the same state as the first),
# printing pages/s and CPU ms per 1000 pages of each, then medians
# (min–max) of the ratios.
set -euo pipefail
cd "$(dirname "$0")"
REV=${1:?usage: crawlcompare.sh REV [RUNS] [CONCS] [MODE]}
RUNS=${2:-7}
CONCS=${3:-4,8,16}
MODE=${4:-sync}

../scripts/ensure-deb.sh postgresql-doc-15
W=$(mktemp -d /tmp/crawlcompare-XXXXXX)
SP=
cleanup() {
	[ -n "$SP" ] && kill "$SP" 2>/dev/null && wait "$SP" 2>/dev/null || true
	git -C .. worktree remove --force "$W/before-tree" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

mkdir -p out/bin "$W/bin"
for p in crawlsite crawlours crawlget crawldriver; do
	go build -trimpath -o "out/bin/$p" "./cmd/$p"
done
git -C .. worktree add -q --detach "$W/before-tree" "$REV"
cp cmd/crawlours/*.go "$W/before-tree/bench/cmd/crawlours/"
(cd "$W/before-tree/bench" && go build -trimpath -o "$W/bin/crawlours-before" ./cmd/crawlours)

out/bin/crawlsite -dir /usr/share/doc/postgresql-doc-15/html >"$W/site.out" 2>"$W/site.err" &
SP=$!
for _ in $(seq 100); do grep -q listening "$W/site.out" && break; sleep 0.1; done
ADDR=$(awk '/listening/{print $2}' "$W/site.out")
out/bin/crawldriver -expect-only "http://$ADDR" >"$W/expect.txt"

metric() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));m={x['name']:x['value'] for x in d['metrics']};print('%.0f %.0f'%(m['pages_per_s'],m['cpu_ms_per_kpage']))" "$1"; }
extra=()
[ "$MODE" = sync ] && extra=(-store durable -dir "$W/run")
for c in ${CONCS//,/ }; do
	for r in $(seq "$RUNS"); do
		out/bin/crawlget -urls "$W/expect.txt" -conc "$c" -client nethttp -tokenize -passes 5 >"$W/tok.json"
		line="$c $(metric "$W/tok.json")"
		order="before after"
		if [ $((r % 2)) = 0 ]; then order="after before"; fi
		for side in $order; do
			bin=out/bin/crawlours
			if [ "$side" = before ]; then bin="$W/bin/crawlours-before"; fi
			rm -rf "$W/run" && mkdir -p "$W/run"
			"$bin" -mode "$MODE" "${extra[@]}" -start "http://$ADDR/index.html" -expect "$W/expect.txt" -conc "$c" -depth 2 >"$W/o-$side.json"
		done
		# The columns stay ceiling, REV, current whatever the order.
		line="$line $(metric "$W/o-before.json") $(metric "$W/o-after.json")"
		echo "$line (first: $(echo "$order" | cut -d' ' -f1))" | tee -a "$W/all.txt"
	done
done
echo "conc: pages/s and CPU ms/1000 pages of ceiling | $REV | current"
python3 - "$W/all.txt" <<'PY'
import sys, statistics as st
rows = {}
for l in open(sys.argv[1]):
    v = list(map(float, l.split("(")[0].split()))
    rows.setdefault(int(v[0]), []).append(v[1:])
def s(xs, f="%.2f"):
    xs = sorted(xs)
    return (f + " (" + f + "–" + f + ")") % (st.median(xs), xs[0], xs[-1])
for c, rs in rows.items():
    print(f"concurrency {c}: ceiling {s([r[0] for r in rs], '%.0f')}/s, {s([r[1] for r in rs], '%.0f')} ms")
    print(f"  before {s([r[2] for r in rs], '%.0f')}/s, {s([r[3] for r in rs], '%.0f')} ms, ÷ ceiling {s([r[2]/r[0] for r in rs])}")
    print(f"  after  {s([r[4] for r in rs], '%.0f')}/s, {s([r[5] for r in rs], '%.0f')} ms, ÷ ceiling {s([r[4]/r[0] for r in rs])}")
    print(f"  after ÷ before {s([r[4]/r[2] for r in rs])}; CPU after ÷ before {s([r[5]/r[3] for r in rs])}")
PY
