#!/usr/bin/env bash
# Drain throughput: 20,000 queued deliveries to a local nginx that answers 200,
# rate limit off, every attempt logged as usual; deliveries/s at
# max_in_flight 8, 32 and 128, and in the same run the loopback limit of the
# same sink measured with wrk.  N=20000 ROUNDS=1 to change.
. "$(dirname "$0")/common.sh"
N=${N:-20000}
ROUNDS=${ROUNDS:-1}

start_server "cortex_hook.database_name = 'bench'"
start_sink
create_webhook
body=$(psql_b -c "SELECT cortex_hook.render_template(body_template, cortex_hook.mock_event()) FROM cortex_hook.webhook")

printf '%-22s %12s %10s\n' "run" "deliveries/s" "seconds"
for round in $(seq "$ROUNDS"); do
	for m in 8 32 128; do
		psql_b -c "ALTER SYSTEM SET cortex_hook.max_in_flight = $m" -c "SELECT pg_reload_conf()" >/dev/null
		psql_b -c "TRUNCATE cortex_hook.delivery, cortex_hook.invocation, cortex_hook.access_request_event" -c "CHECKPOINT"
		sleep 1
		# queue everything in one transaction; the worker is woken at its commit
		psql_b -c "INSERT INTO cortex_hook.access_request_event (event_type, data)
		           SELECT 'RequestCreated', cortex_hook.mock_event()->'data' FROM generate_series(1, $N)"
		committed=$(psql_b -c "SELECT extract(epoch FROM clock_timestamp())")
		while [ "$(psql_b -c "SELECT count(*) FROM cortex_hook.delivery WHERE status IN ('pending', 'delivering')")" != 0 ]; do
			sleep 0.5
		done
		read -r rate secs < <(psql_b -F ' ' -c "SELECT round(count(*) / (extract(epoch FROM max(delivered_at)) - $committed)),
			round((extract(epoch FROM max(delivered_at)) - $committed)::numeric, 2)
			FROM cortex_hook.delivery WHERE status = 'delivered'")
		[ "$(psql_b -c "SELECT count(*) FROM cortex_hook.invocation")" = "$N" ] || echo "warning: invocations != $N"
		printf '%-22s %12s %10s\n' "cortex_hook m=$m" "$rate" "$secs"
	done
	# the sink's own limit on loopback, with the same body
	cat >"$BENCH_DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
wrk.body = [==[$body]==]
LUA
	for c in 32 128; do
		rps=$(wrk -t2 -c$c -d10s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$SINK_PORT/api/v1/catalog/af-7/custom-events" |
			awk '/Requests\/sec/ {printf "%d", $2}')
		printf '%-22s %12s %10s\n' "wrk -c$c (sink limit)" "$rps" "10"
	done
done
