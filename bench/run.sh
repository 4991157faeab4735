#!/usr/bin/env bash
# bench/run.sh: what `make bench` (make -C bench all) runs, in one shell so
# that one trap stops everything it started, however it ends.
#
#  1. installs Redis and PostgreSQL 15 if missing (Debian packages);
#  2. builds the bench programs into out/bin;
#  3. starts, on 127.0.0.1 with private data folders and non-default ports:
#     Redis with appendfsync everysec, Redis with appendfsync always,
#     a private PostgreSQL 15 cluster (initdb; synchronous_commit=on);
#  4. runs out/bin/driver, which runs every benchmark RUNS times and
#     rewrites the generated sections of RESULTS.md;
#  5. stops what it started (by PID / pg_ctl) and removes the data.
#
# Environment: QUICK=1 (small sizes, ~3 min, results to out/RESULTS.quick.md),
# RUNS, HEAVY_RUNS, SOAK, REDIS_PORT1, REDIS_PORT2, PG_PORT, CONNECTOR, ONLY
# (some steps only, for debugging: results to out/RESULTS.only.md).
set -euo pipefail
cd "$(dirname "$0")"

QUICK=${QUICK:-}
RUNS=${RUNS:-5}
HEAVY_RUNS=${HEAVY_RUNS:-3}
SOAK=${SOAK:-30m}
REDIS_PORT1=${REDIS_PORT1:-6390}
REDIS_PORT2=${REDIS_PORT2:-6391}
PG_PORT=${PG_PORT:-5491}
CONNECTOR=${CONNECTOR:-../bin/connector}
ONLY=${ONLY:-}

../scripts/ensure-deb.sh redis-server postgresql

echo "bench: building the bench programs" >&2
mkdir -p out/bin
for p in floors ceiling inproc httpbench peers driver crawlsite; do # crawlsite: the soak's churning site
	go build -trimpath -o "out/bin/$p" "./cmd/$p"
done
if [ ! -x "$CONNECTOR" ]; then
	echo "bench: $CONNECTOR is missing: run 'make build' at the top (make bench does it)" >&2
	exit 1
fi

WORK=$(mktemp -d /tmp/bench-run.XXXXXX)
chmod 755 "$WORK" # the postgres user must reach its data folder when we run as root
PIDS=()
PGBIN=""
PGDATA="$WORK/pg"

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	if [ -n "$PGBIN" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_redis() { # name port appendfsync
	local dir="$WORK/$1"
	port_free "$2" || { echo "bench: port $2 is in use; set REDIS_PORT1/REDIS_PORT2" >&2; exit 1; }
	mkdir -p "$dir"
	redis-server --bind 127.0.0.1 --port "$2" --dir "$dir" --appendonly yes --appendfsync "$3" \
		--save '' --daemonize no --protected-mode yes --logfile "$dir/redis.log" &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 100); do
		if [ "$(redis-cli -p "$2" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: redis on port $2 did not start (see $dir/redis.log)" >&2
	exit 1
}

start_pg() {
	PGBIN=$(pg_config --bindir 2>/dev/null || true)
	[ -x "$PGBIN/initdb" ] || PGBIN=/usr/lib/postgresql/15/bin
	port_free "$PG_PORT" || { echo "bench: port $PG_PORT is in use; set PG_PORT" >&2; exit 1; }
	mkdir -p "$PGDATA"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$PGDATA"
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U bench --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1 ||
		{ cat "$WORK/initdb.log" >&2; exit 1; }
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PGDATA -c synchronous_commit=on -c fsync=on -c max_connections=200" \
		start >/dev/null
}

echo "bench: starting redis (everysec :$REDIS_PORT1, always :$REDIS_PORT2) and postgresql (:$PG_PORT) in $WORK" >&2
start_redis redis-everysec "$REDIS_PORT1" everysec
start_redis redis-always "$REDIS_PORT2" always
start_pg

args=(-bin out/bin -connector "$CONNECTOR" -work "$WORK/data" -out out
	-redis-everysec "127.0.0.1:$REDIS_PORT1" -redis-always "127.0.0.1:$REDIS_PORT2"
	-pg "postgres://bench@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
	-rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" -soak "$SOAK" -only "$ONLY")
if [ -n "$QUICK" ]; then
	args+=(-quick -runs 1 -heavy-runs 1 -results out/RESULTS.quick.md)
elif [ -n "$ONLY" ]; then
	# Some steps only (debugging): not over the committed results.
	args+=(-runs "$RUNS" -heavy-runs "$HEAVY_RUNS" -results out/RESULTS.only.md)
else
	args+=(-runs "$RUNS" -heavy-runs "$HEAVY_RUNS" -results RESULTS.md -summary results/latest.json)
fi
out/bin/driver "${args[@]}"
