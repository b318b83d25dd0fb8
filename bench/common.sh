# Shared by the benchmark scripts: packages, a throwaway server, an nginx sink.
# shellcheck shell=bash
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh
PACKAGES="$PACKAGES nginx-light wrk libpq-dev"
ensure_packages
build_and_install >/dev/null

if [ "$(id -u)" = 0 ]; then
	as_pg() { su postgres -s /bin/bash -c "$(printf '%q ' "$@")"; }
else
	as_pg() { "$@"; }
fi

BENCH_DIR=$(mktemp -d /tmp/cortex_hook_bench.XXXXXX)
chmod 755 "$BENCH_DIR"
[ "$(id -u)" = 0 ] && chown postgres: "$BENCH_DIR"
PGPORT_BENCH=$(free_port)

# start_server "extra postgresql.conf lines"
start_server() {
	as_pg initdb -D "$BENCH_DIR/data" -E UTF8 --no-locale -A trust >/dev/null
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
port = $PGPORT_BENCH
listen_addresses = ''
unix_socket_directories = '$BENCH_DIR'
shared_preload_libraries = 'cortex_hook'
shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
cortex_hook.allowed_hosts = '127.0.0.1'
$1
CONF
	as_pg pg_ctl -D "$BENCH_DIR/data" -l "$BENCH_DIR/server.log" -w start >/dev/null
	as_pg createdb -h "$BENCH_DIR" -p "$PGPORT_BENCH" bench
}

psql_b() { as_pg psql -X -q -At -h "$BENCH_DIR" -p "$PGPORT_BENCH" -d bench -v ON_ERROR_STOP=1 "$@"; }

# An nginx on loopback answering 200 with a small JSON body, logging $msec and the URI.
start_sink() {
	SINK_PORT=$(free_port)
	mkdir -p "$BENCH_DIR/nginx"
	cat >"$BENCH_DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $BENCH_DIR/nginx/nginx.pid;
error_log $BENCH_DIR/nginx/error.log;
events { worker_connections 4096; }
http {
	log_format t '\$msec \$request_uri';
	access_log ${SINK_ACCESS_LOG:-off}${SINK_ACCESS_LOG:+ t};
	keepalive_requests 1000000;
	keepalive_timeout 60s;
	client_body_buffer_size 64k;
	server {
		listen 127.0.0.1:$SINK_PORT;
		location / { return 200 '{"uuid":"00000000-0000-0000-0000-000000000000"}'; }
	}
}
CONF
	nginx -p "$BENCH_DIR/nginx" -c "$BENCH_DIR/nginx/nginx.conf"
}

stop_all() {
	as_pg pg_ctl -D "$BENCH_DIR/data" -m fast stop >/dev/null 2>&1 || true
	[ -f "$BENCH_DIR/nginx/nginx.pid" ] && kill "$(cat "$BENCH_DIR/nginx/nginx.pid")" 2>/dev/null || true
	[ -z "${KEEP:-}" ] && rm -rf "$BENCH_DIR"
	return 0
}
trap stop_all EXIT

# The webhook of the Cortex guide, pointed at the sink, no rate limit.
create_webhook() {
	psql_b <<SQL
CREATE EXTENSION IF NOT EXISTS cortex_hook;
INSERT INTO cortex_hook.webhook (name, url, headers, triggers, rate_limit_per_minute)
VALUES ('Cortex', 'http://127.0.0.1:$SINK_PORT/api/v1/catalog/{{data.access_flow.id}}/custom-events${1:-}',
        '{"Authorization": "Bearer bench-key"}', '{RequestCreated}', NULL);
SQL
	if [ "$(psql_b -c "SHOW cortex_hook.database_name")" = bench ]; then wait_for_worker; fi
}

worker_pid() { psql_b -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'"; }

# Wait until the worker runs in this database and has gone idle.
wait_for_worker() {
	for _ in $(seq 100); do
		[ "$(psql_b -c "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'cortex_hook worker' AND datname = 'bench' AND state = 'idle'")" = 1 ] && return 0
		sleep 0.1
	done
	echo "the worker did not start" >&2
	return 1
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
