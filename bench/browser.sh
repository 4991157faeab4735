#!/usr/bin/env bash
# bench/browser.sh: the browser step of `make bench` (make -C bench all),
# which rewrites the generated part of the "Browser rendering
# (crawl/browser)" section of RESULTS.md.
#
#  1. installs Debian's chromium-headless-shell if missing;
#  2. builds cmd/browserbench into out/bin;
#  3. runs it: rendered pages/s at 1, 2 and 4 tabs against the plain
#     chromedp ceiling measured in the same run (BROWSER_RUNS iterations,
#     default 5), memory per open tab (3 runs) and over BROWSER_MEM_PAGES
#     renders (default 10000), and the cancel → return latency over
#     BROWSER_CANCEL_N cancels (default 200); the Web connector
#     (connectors/webfetch) crawling the same site at the same tab counts
#     in the same iterations, its Stop → Stopped through the queue
#     (BROWSER_CONN_STOP_N, default 100) and its memory over a crawl of
#     BROWSER_CONN_MEM_PAGES pages (default 10000). Every browser it starts is
#     stopped by the program (crawl/browser's Close; chromedp's cancel for
#     the ceiling).
#
# QUICK=1: 1 iteration, 20 pages, 1 and 2 tabs, 200 renders, 20 cancels
# (~1 min); results to out/RESULTS.quick.md.
set -euo pipefail
cd "$(dirname "$0")"

QUICK=${QUICK:-}
BROWSER_RUNS=${BROWSER_RUNS:-5}
BROWSER_MEM_PAGES=${BROWSER_MEM_PAGES:-10000}
BROWSER_CANCEL_N=${BROWSER_CANCEL_N:-200}
BROWSER_CONN_STOP_N=${BROWSER_CONN_STOP_N:-100}
BROWSER_CONN_MEM_PAGES=${BROWSER_CONN_MEM_PAGES:-10000}

../scripts/ensure-deb.sh chromium-headless-shell

echo "browser: building cmd/browserbench" >&2
mkdir -p out/bin
go build -trimpath -o out/bin/browserbench ./cmd/browserbench

args=(-rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
if [ -n "$QUICK" ]; then
	args+=(-quick -runs 1 -pages 20 -tabs 1,2 -mem-pages 200 -mem-runs 1 -cancel-n 20 -conn-stop-n 20 -conn-mem-pages 1000 -results out/RESULTS.quick.md)
else
	args+=(-runs "$BROWSER_RUNS" -pages 200 -tabs 1,2,4 -mem-pages "$BROWSER_MEM_PAGES" -mem-runs 3
		-cancel-n "$BROWSER_CANCEL_N" -conn-stop-n "$BROWSER_CONN_STOP_N" -conn-mem-pages "$BROWSER_CONN_MEM_PAGES"
		-results RESULTS.md -summary results/browser.json)
fi
out/bin/browserbench "${args[@]}"
