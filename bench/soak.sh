#!/usr/bin/env bash
# Soak: N (1,000,000) events through the worker to a stand-in for Cortex,
# inserted BATCH to a transaction while the worker delivers.  SINK=mock sends
# them to the project's mock Cortex (test/mock_cortex.py --count-only, which
# checks each body and the API key); the default, SINK=nginx, to an nginx
# answering 200, several times faster.  Reports: all delivered and none twice
# (delivery statuses, and Idempotency-Keys counted at the sink), worker private
# memory and the claim query's time, buffers and plan every 100,000 events,
# and table and index sizes before and after retention pruned the delivered
# rows.
. "$(dirname "$0")/common.sh"
N=${N:-1000000}
BATCH=${BATCH:-1000}	# events per INSERT transaction
MAX_PENDING=${MAX_PENDING:-100000}
start_server "cortex_hook.database_name = 'bench'
cortex_hook.max_in_flight = 64
cortex_hook.log_retention = '60s'
autovacuum_naptime = '5s'"
SINK=${SINK:-nginx}
if [ "$SINK" = mock ]; then
	start_mock bench-key --count-only
	SINK_PORT=$MOCK_PORT
	trap 'kill $MOCK_PID 2>/dev/null; stop_all' EXIT
	# requests received, distinct Idempotency-Keys, keys received twice or
	# more, answers other than 2xx
	sink_counts() {
		python3 -c 'import json, sys, urllib.request
c = json.load(urllib.request.urlopen("http://127.0.0.1:%s/_mock/counts" % sys.argv[1]))
print(c["requests"], c["distinct"], c["twice"], c["refused"])' "$MOCK_PORT"
	}
else
	# nginx logs each request's Idempotency-Key
	SINK_ACCESS_LOG="$BENCH_DIR/nginx/access.log"
	start_sink
	sed -i "s|log_format t '\$msec \$request_uri';|log_format t '\$msec \$http_idempotency_key';|" "$BENCH_DIR/nginx/nginx.conf"
	nginx -p "$BENCH_DIR/nginx" -c "$BENCH_DIR/nginx/nginx.conf" -s reload
	sink_counts() {
		awk '{print $2}' "$BENCH_DIR/nginx/access.log" | sort | uniq -c |
			awk '{ keys++; total += $1; if ($1 > 1) dup++ } END { print total + 0, keys + 0, dup + 0, 0 }'
	}
fi
create_webhook
# e.g. RELOPTIONS="autovacuum_vacuum_scale_factor = 0.2, autovacuum_vacuum_cost_delay = 2"
# for PostgreSQL's defaults instead of the extension's
[ -n "${RELOPTIONS:-}" ] && psql_b -c "ALTER TABLE cortex_hook.delivery SET ($RELOPTIONS);
	ALTER TABLE cortex_hook.invocation SET ($RELOPTIONS)"
pid=$(worker_pid)
# The worker's claim query (its SELECT part), with the plan node that feeds
# it and the buffers it touched: time alone is noisy on a shared machine.
claim() {
	psql_b -c "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
		SELECT id FROM cortex_hook.delivery WHERE status = 'pending' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT 64 FOR UPDATE SKIP LOCKED" |
		python3 -c 'import json,sys; p=json.load(sys.stdin)[0]; n=p["Plan"]
b=n.get("Shared Hit Blocks", 0) + n.get("Shared Read Blocks", 0)
while "Plans" in n and n["Node Type"] != "Index Scan": n=n["Plans"][0]
print("%.3f ms, %d buffers (%s %s)" % (p["Execution Time"], b, n["Node Type"], n.get("Index Name", "")))'
}
# resident memory, and the private part of it (shared buffers touched are not
# the worker's own)
rss() { awk '/VmRSS/ {r = $2} /RssAnon/ {a = $2} END {printf "%d kB resident, %d kB private", r, a}' "/proc/$pid/status"; }
pending() { psql_b -c "SELECT count(*) FROM cortex_hook.delivery WHERE status = 'pending'"; }
# The oldest other open transaction: while it runs, index entries of rows
# claimed since it began cannot be skipped without a heap visit.
oldest() {
	psql_b -c "SELECT coalesce(round(extract(epoch FROM max(now() - xact_start)) * 1000) || ' ms ('
		|| (array_agg(coalesce(nullif(query, ''), backend_type) ORDER BY xact_start))[1] || ')', 'none')
		FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
		AND backend_type <> 'cortex_hook worker'" | cut -c1-60
}
echo "worker memory at start (cold): $(rss)"
inserted=0
start=$(date +%s)
while [ "$inserted" -lt "$N" ]; do
	psql_b -c "INSERT INTO cortex_hook.access_request_event (event_type, data)
	           SELECT 'RequestCreated', cortex_hook.mock_event()->'data' FROM generate_series(1, $BATCH)"
	inserted=$((inserted + BATCH))
	# every 100,000 events, just after a batch went in: the same point each time
	if [ $((inserted % 100000)) = 0 ] || [ "$inserted" = "$BATCH" ]; then
		printf '%8d inserted, %6d pending: claim %s; worker %s; oldest other transaction %s\n' \
			"$inserted" "$(pending)" "$(claim)" "$(rss)" "$(oldest)"
	fi
	# keep the queue bounded
	if [ $((inserted % 20000)) = 0 ]; then
		while [ "$(pending)" -gt "$MAX_PENDING" ]; do sleep 1; done
	fi
done
while [ "$(psql_b -c "SELECT count(*) FROM cortex_hook.delivery WHERE status IN ('pending', 'delivering')")" != 0 ]; do sleep 1; done
secs=$(( $(date +%s) - start ))
echo "queue empty: claim $(claim); worker $(rss)"
[ "$(worker_pid)" = "$pid" ] || echo "warning: the worker restarted"
read -r total keys dup refused <<<"$(sink_counts)"
echo "$SINK received $total requests for $keys distinct deliveries of $N; sent twice: $dup; refused: $refused"
IFS='|' read -r by_status not_delivered <<<"$(psql_b -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status),
	coalesce(sum(n) FILTER (WHERE status <> 'delivered'), 0)
	FROM (SELECT status, count(*) AS n FROM cortex_hook.delivery GROUP BY status) s")"
echo "deliveries not yet pruned, by status: $by_status"
echo "$N events in ${secs}s ($((N / (secs > 0 ? secs : 1))) /s end to end)"
if [ "$keys" = "$N" ] && [ "$dup" = 0 ] && [ "$refused" = 0 ] && [ "$not_delivered" = 0 ]; then
	verdict="all $N delivered, none twice"
else
	verdict="FAILED: $keys of $N received, $dup twice, $refused refused, $not_delivered not delivered"
fi
echo "$verdict"
sizes() {
	psql_b -c "SELECT relname, n_live_tup, n_dead_tup, pg_size_pretty(pg_table_size(relid)),
		pg_size_pretty(pg_indexes_size(relid)), autovacuum_count
		FROM pg_stat_user_tables WHERE schemaname = 'cortex_hook' ORDER BY relname"
}
echo "table|live rows|dead rows|table size|index size|autovacuums"
sizes
sleep "${RETENTION_WAIT:-150}"	# retention (log_retention 60 s, pruned at least once a minute), then autovacuum
echo "after retention:"
sizes
echo "claim after retention: $(claim); worker $(rss)"
# How much of the worker's private memory PostgreSQL's memory contexts hold;
# the rest is malloc (libcurl, the template engine) and what glibc keeps.
psql_b -c "SELECT pg_log_backend_memory_contexts($pid)" >/dev/null
sleep 1
grep -a "Grand total" "$BENCH_DIR/server.log" | tail -1 | sed 's/.*Grand total/worker memory contexts: grand total/'
[ "${verdict#FAILED}" = "$verdict" ]
