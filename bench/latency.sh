#!/usr/bin/env bash
# Latency: N (500) single-event transactions SPACING_MS (10) ms apart; from
# commit (client side) to receipt (nginx's $msec in its access log);
# p50, p95, p99, max.  "from send": from the moment the INSERT was sent (an
# upper bound that includes the commit itself); "from ack": from the moment
# the client saw the commit acknowledged.
. "$(dirname "$0")/common.sh"
N=${N:-500}
SPACING_MS=${SPACING_MS:-10}
SINK_ACCESS_LOG="$BENCH_DIR/nginx/access.log"
start_server "cortex_hook.database_name = 'bench'
${EXTRA_CONF:-}"
start_sink
create_webhook "?n={{data.n}}"
gcc -std=gnu11 -O2 -o "$BENCH_DIR/latency_client" bench/latency_client.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq
chmod 755 "$BENCH_DIR/latency_client"
as_pg "$BENCH_DIR/latency_client" "host=$BENCH_DIR port=$PGPORT_BENCH dbname=bench" "$N" "$SPACING_MS" >"$BENCH_DIR/client.txt"
chmod 644 "$BENCH_DIR/client.txt"
for _ in $(seq 100); do
	[ "$(wc -l <"$BENCH_DIR/nginx/access.log")" -ge "$N" ] && break
	sleep 0.1
done
psql_b -c "SELECT 'queue ms (p50, p95, p99):', percentile_cont(array[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM i.started_at - d.created_at)*1000) AS queue_ms, 'http ms:', percentile_cont(array[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY i.duration_ms) AS http_ms FROM cortex_hook.invocation i JOIN cortex_hook.delivery d ON d.id = i.delivery_id" || true
python3 - "$BENCH_DIR/client.txt" "$BENCH_DIR/nginx/access.log" <<'PY'
import re, sys
sent, acked, recv = {}, {}, {}
for line in open(sys.argv[1]):
    n, s, a = line.split()
    sent[n], acked[n] = float(s), float(a)
for line in open(sys.argv[2]):
    t, uri = line.split()
    m = re.search(r"[?&]n=(\d+)", uri)
    if m:
        recv.setdefault(m.group(1), float(t))
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]
for name, base in (("from send", sent), ("from ack", acked)):
    d = [(recv[n] - base[n]) * 1000 for n in recv if n in base]
    print("%-10s n=%d  p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms"
          % (name, len(d), pct(d, 50), pct(d, 95), pct(d, 99), max(d)))
print("received %d of %d" % (len(recv), len(sent)))
PY
