#!/usr/bin/env bash
# bench/crawl.sh: the crawl benchmark step of `make bench` (make -C bench
# all, after run.sh), which rewrites the generated part of the "Crawl"
# section of RESULTS.md.
#
#  1. installs the PostgreSQL 15 manual (Debian postgresql-doc-15) if missing;
#  2. builds the crawl programs into out/bin;
#  3. runs out/bin/crawldriver, which serves the manual on 127.0.0.1 from its
#     own process (cmd/crawlsite), crawls it with our engine, colly, the
#     plain-fetch ceilings and our full Synchronize, RUNS times at each
#     concurrency, then the datastore memory run and the engine's CPU
#     profile. It stops the servers it started.
#
# Environment: QUICK=1 (one iteration at concurrency 4, a 20k-page memory
# run, ~1 min, results to out/RESULTS.quick.md), CRAWL_RUNS (default 7),
# CRAWL_CONCS (default 4,8,16), CRAWL_MEM_N (default 1000000; 0 skips the
# memory run, ~10 min at 1M), CRAWL_MEM_RUNS (default 1).
set -euo pipefail
cd "$(dirname "$0")"

QUICK=${QUICK:-}
CRAWL_RUNS=${CRAWL_RUNS:-7}
CRAWL_CONCS=${CRAWL_CONCS:-4,8,16}
CRAWL_MEM_N=${CRAWL_MEM_N:-1000000}
CRAWL_MEM_RUNS=${CRAWL_MEM_RUNS:-1}

../scripts/ensure-deb.sh postgresql-doc-15

echo "crawl: building the crawl programs" >&2
mkdir -p out/bin
for p in crawlsite crawlours crawlcolly crawlget crawldriver; do
	go build -trimpath -o "out/bin/$p" "./cmd/$p"
done

args=(-bin out/bin -out out -product .. -rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
if [ -n "$QUICK" ]; then
	args+=(-quick -runs 1 -concs 4 -mem-n 20000 -mem-runs 1 -profile-repeat 3 -results out/RESULTS.quick.md)
else
	args+=(-runs "$CRAWL_RUNS" -concs "$CRAWL_CONCS" -mem-n "$CRAWL_MEM_N" -mem-runs "$CRAWL_MEM_RUNS"
		-results RESULTS.md -summary results/crawl.json)
fi
if [ -n "${CRAWL_BASELINE:-}" ]; then
	args+=(-baseline "$CRAWL_BASELINE" -baseline-rev "${CRAWL_BASELINE_REV:-}")
fi
out/bin/crawldriver "${args[@]}"
