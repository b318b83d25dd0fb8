#!/usr/bin/env bash
# Worker memory: resident memory of the worker before and after N (100,000)
# deliveries to a local nginx sink, queued in batches of BATCH (10,000).
# VmRSS counts shared buffers the worker touched; RssAnon is its private
# memory, where a leak would show.
. "$(dirname "$0")/common.sh"
N=${N:-100000}
BATCH=${BATCH:-10000}
start_server "cortex_hook.database_name = 'bench'"
start_sink
create_webhook
mem() { awk '/^(VmRSS|RssAnon)/ {printf "%s %s kB  ", $1, $2}' "/proc/$1/status"; }
drain() {
	psql_b -c "INSERT INTO cortex_hook.access_request_event (event_type, data)
	           SELECT 'RequestCreated', cortex_hook.mock_event()->'data' FROM generate_series(1, $1)"
	while [ "$(psql_b -c "SELECT count(*) FROM cortex_hook.delivery WHERE status IN ('pending', 'delivering')")" != 0 ]; do
		sleep 0.5
	done
}
pid=$(worker_pid)
drain 1000		# warm up: plans prepared, connections open
before=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
echo "after 1,000 (warm):   $(mem "$pid")"
done_n=0
while [ "$done_n" -lt "$N" ]; do
	drain "$BATCH"
	done_n=$((done_n + BATCH))
	echo "after $done_n more: $(mem "$pid")"
done
after=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
[ "$(worker_pid)" = "$pid" ] || echo "warning: the worker restarted"
echo "private memory growth over $N deliveries: $((after - before)) kB"
psql_b -c "SELECT count(*) AS delivered FROM cortex_hook.delivery WHERE status = 'delivered'"
