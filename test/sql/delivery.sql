-- deliver(), test_webhook(), redeliver() against the mock Cortex server over HTTP.
\pset format unaligned
\pset tuples_only on
\getenv port MOCK_PORT
SELECT format('http://127.0.0.1:%s/api/v1/catalog/', :'port') AS base \gset
\! curl -s -o /dev/null -X POST http://127.0.0.1:$MOCK_PORT/_mock/reset

CREATE FUNCTION hook(name text, entity text, extra jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE new_id bigint;
BEGIN
	INSERT INTO cortex_hook.webhook (name, url, headers, triggers, timeout_ms, max_attempts, rate_limit_per_minute)
	VALUES (name, current_setting('my.base') || entity || '/custom-events',
			coalesce(extra->'headers', '{"Authorization": "Bearer test-token", "X-Team": "payments"}'),
			coalesce((extra->>'triggers')::cortex_hook.event_type[], '{RequestCreated}'),
			coalesce((extra->>'timeout_ms')::int, 5000), coalesce((extra->>'max_attempts')::int, 12),
			CASE WHEN extra ? 'rate' THEN (extra->>'rate')::int END)
	RETURNING webhook.id INTO new_id;
	IF extra ? 'body_template' THEN
		UPDATE cortex_hook.webhook SET body_template = extra->>'body_template' WHERE webhook.id = new_id;
	END IF;
	RETURN new_id;
END
$$;
SET my.base = :'base';
-- queue one event of the given type; only webhooks triggered by it match
CREATE FUNCTION fire(t cortex_hook.event_type, n int DEFAULT 1) RETURNS void LANGUAGE sql AS $$
	INSERT INTO cortex_hook.access_request_event (event_type, event_time, data)
	SELECT t, '2026-12-03 15:29:52.123456+00', fixed_event(t)->'data' FROM generate_series(1, n)
$$;
-- make every pending delivery due now
CREATE FUNCTION due() RETURNS void LANGUAGE sql AS $$
	UPDATE cortex_hook.delivery SET next_attempt_at = now() WHERE status = 'pending'
$$;

-- One event, one webhook: the mock receives exactly the rendered request.
SELECT hook('Cortex', 'apono') > 0;
SELECT fire('RequestCreated');
SELECT cortex_hook.deliver();
SELECT status, attempts, delivered_at IS NOT NULL, last_error FROM cortex_hook.delivery;
SELECT i.attempt, i.is_test, i.delivery_id = d.id, i.request_method, i.request_url = d.url,
	   i.request_body = d.body, i.response_status, i.success, i.error, i.duration_ms > 0,
	   i.started_at BETWEEN d.created_at AND now() + interval '1 s'
FROM cortex_hook.invocation i JOIN cortex_hook.delivery d ON d.id = i.delivery_id;
SELECT jsonb_pretty(request_headers - 'Idempotency-Key'), request_headers->>'Idempotency-Key' = delivery_id::text
FROM cortex_hook.invocation;
-- what the mock received
SELECT r->>'method', r->>'path', r->>'entity', r->>'body' = d.body,
	   r->'headers'->>'Authorization', r->'headers'->>'Content-Type', r->'headers'->>'User-Agent',
	   r->'headers'->>'X-Team', r->'headers'->>'Idempotency-Key' = d.id::text
FROM cortex_hook.invocation i JOIN cortex_hook.delivery d ON d.id = i.delivery_id,
	 LATERAL (SELECT i.response_body::jsonb->'received') x(r);
SELECT response_body::jsonb ? 'uuid', response_headers->>'Content-Type' FROM cortex_hook.invocation;
-- nothing due: nothing done
SELECT cortex_hook.deliver();
-- a rolled-back insert sends nothing
BEGIN;
SELECT fire('RequestCreated');
ROLLBACK;
SELECT cortex_hook.deliver();
SELECT count(*) FROM cortex_hook.invocation;

-- 500 twice, then 200: three attempts, with the backoff of SPEC §5.2.
\! curl -s -o /dev/null -d '{"entity": "flaky", "fail": 2, "status": 500}' http://127.0.0.1:$MOCK_PORT/_mock/script
SELECT hook('Flaky', 'flaky', '{"triggers": "{RequestApproved}"}') > 0;
SELECT fire('RequestApproved');
SELECT cortex_hook.deliver();
SELECT status, attempts, next_attempt_at - now() BETWEEN interval '3.9 s' AND interval '6.1 s' AS backoff_5s, last_error
FROM cortex_hook.delivery WHERE url LIKE '%/flaky/%';
SELECT cortex_hook.deliver();  -- not due yet
SELECT due(), cortex_hook.deliver();
SELECT status, attempts, next_attempt_at - now() BETWEEN interval '7.9 s' AND interval '12.1 s' AS backoff_10s
FROM cortex_hook.delivery WHERE url LIKE '%/flaky/%';
SELECT due(), cortex_hook.deliver();
SELECT status, attempts, last_error FROM cortex_hook.delivery WHERE url LIKE '%/flaky/%';
SELECT attempt, response_status, success FROM cortex_hook.invocation i
JOIN cortex_hook.delivery d ON d.id = i.delivery_id WHERE d.url LIKE '%/flaky/%' ORDER BY attempt;

-- 429 with Retry-After: 2 is honoured.
\! curl -s -o /dev/null -d '{"entity": "limited", "fail": 1, "status": 429, "retry_after": 2}' http://127.0.0.1:$MOCK_PORT/_mock/script
SELECT hook('Limited', 'limited', '{"triggers": "{RequestRejected}"}') > 0;
SELECT fire('RequestRejected');
SELECT cortex_hook.deliver();
SELECT d.status, d.attempts, d.next_attempt_at - (i.started_at + i.duration_ms * interval '1 ms') BETWEEN interval '1.95 s' AND interval '2.2 s' AS after_2s,
	   i.response_headers->>'Retry-After'
FROM cortex_hook.delivery d JOIN cortex_hook.invocation i ON i.delivery_id = d.id WHERE d.url LIKE '%/limited/%';

-- 400, 401, 404 and a redirect: failed after one attempt, error and response kept.
\! curl -s -o /dev/null -d '{"entity": "moved", "fail": 1, "redirect": "http://127.0.0.1:1/elsewhere"}' http://127.0.0.1:$MOCK_PORT/_mock/script
SELECT hook('Bad body', 'apono', '{"triggers": "{RequestGranted}", "body_template": "{\"type\": \"{{event_type}}\"}"}') > 0,
	   hook('Bad key', 'apono', '{"triggers": "{RequestGranted}", "headers": {"Authorization": "Bearer wrong"}}') > 0,
	   hook('No entity', 'missing-entity', '{"triggers": "{RequestGranted}"}') > 0,
	   hook('Moved', 'moved', '{"triggers": "{RequestGranted}"}') > 0;
SELECT fire('RequestGranted');
SELECT cortex_hook.deliver();
SELECT w.name, d.status, d.attempts, d.last_error, i.response_status, i.response_body::jsonb->>'message',
	   i.response_headers->>'Location'
FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id
JOIN cortex_hook.invocation i ON i.delivery_id = d.id WHERE d.event_type = 'RequestGranted' ORDER BY w.name;

-- Timeouts, refused connections and unknown hosts are retried, then failed.
\! curl -s -o /dev/null -d '{"entity": "slow", "delay_ms": 1500}' http://127.0.0.1:$MOCK_PORT/_mock/script
ALTER SYSTEM SET cortex_hook.allowed_hosts = '127.0.0.1, *.invalid';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
DELETE FROM cortex_hook.webhook;
SELECT hook('Slow', 'slow', '{"timeout_ms": 300, "max_attempts": 2}') > 0;
INSERT INTO cortex_hook.webhook (name, url, triggers, max_attempts)
VALUES ('Refused', 'http://127.0.0.1:1/api/v1/catalog/x/custom-events', '{RequestCreated}', 2),
	   ('Unknown host', 'http://no-such-host.invalid/api/v1/catalog/x/custom-events', '{RequestCreated}', 2);
SELECT fire('RequestCreated');
SELECT cortex_hook.deliver();
SELECT w.name, d.status, d.attempts, regexp_replace(regexp_replace(d.last_error, '\(dns[^)]*\)', '(...)'), 'after \d+ ms:', 'after N ms:')
FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id ORDER BY w.name;
SELECT due(), cortex_hook.deliver();
SELECT w.name, d.status, d.attempts, regexp_replace(regexp_replace(d.last_error, '\(dns[^)]*\)', '(...)'), 'after \d+ ms:', 'after N ms:')
FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id ORDER BY w.name;
SELECT error ~ '^timed out after 300 ms waiting for the response \(dns \d+ ms, connect \d+ ms, tls 0 ms, request sent at \d+ ms, first response byte never received\)$'
FROM cortex_hook.invocation WHERE request_url LIKE '%/slow/%';

-- Hosts outside cortex_hook.allowed_hosts: failed, nothing sent.
DELETE FROM cortex_hook.webhook;
INSERT INTO cortex_hook.webhook (name, url, triggers)
VALUES ('Elsewhere', 'https://example.com/api/v1/catalog/x/custom-events', '{RequestCreated}'),
	   ('By name', 'http://localhost:' || :'port' || '/api/v1/catalog/x/custom-events', '{RequestCreated}');
ALTER SYSTEM SET cortex_hook.allowed_hosts = 'localhost';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT fire('RequestCreated');
SELECT cortex_hook.deliver();
SELECT w.name, d.status, d.attempts, regexp_replace(d.last_error, '::1|127\.0\.0\.1', '<loopback>', 'g'),
	   i.response_status IS NULL AS no_response
FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id
JOIN cortex_hook.invocation i ON i.delivery_id = d.id ORDER BY w.name;
\! curl -s http://127.0.0.1:$MOCK_PORT/_mock/requests?entity=x
ALTER SYSTEM RESET cortex_hook.allowed_hosts;
ALTER SYSTEM SET cortex_hook.response_body_limit = '1kB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);

-- A 100 MB response is cut at response_body_limit; the delivery succeeds.
\! curl -s -o /dev/null -d '{"entity": "huge", "huge_bytes": 100000000}' http://127.0.0.1:$MOCK_PORT/_mock/script
DELETE FROM cortex_hook.webhook;
SELECT hook('Huge', 'huge') > 0;
SELECT fire('RequestCreated');
SELECT cortex_hook.deliver();
SELECT d.status, i.response_status, length(i.response_body), i.error
FROM cortex_hook.delivery d JOIN cortex_hook.invocation i ON i.delivery_id = d.id;
ALTER SYSTEM RESET cortex_hook.response_body_limit;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);

-- Concurrency: 200 deliveries to an endpoint that answers in 200 ms overlap
-- (one at a time would take 40 s), and a slow webhook does not hold up a fast one.
\! curl -s -o /dev/null -d '{"entity": "slow200", "delay_ms": 200}' http://127.0.0.1:$MOCK_PORT/_mock/script
\! curl -s -o /dev/null -d '{"entity": "slow3s", "delay_ms": 3000}' http://127.0.0.1:$MOCK_PORT/_mock/script
DELETE FROM cortex_hook.webhook;
SELECT hook('Slow 200', 'slow200') > 0;
SELECT fire('RequestCreated', 200);
SELECT clock_timestamp() AS t0 \gset
SELECT cortex_hook.deliver(1000);
SELECT count(*) FILTER (WHERE status = 'delivered'), clock_timestamp() - :'t0'::timestamptz < interval '15 s' AS overlapped
FROM cortex_hook.delivery;
DELETE FROM cortex_hook.webhook;
SELECT hook('Slow 3s', 'slow3s') > 0, hook('Fast', 'apono') > 0;
SELECT fire('RequestCreated', 20);
SELECT cortex_hook.deliver(1000);
SELECT (SELECT max(started_at + duration_ms * interval '1 ms') FROM cortex_hook.invocation WHERE request_url LIKE '%/apono/%')
	 < (SELECT min(started_at + duration_ms * interval '1 ms') FROM cortex_hook.invocation WHERE request_url LIKE '%/slow3s/%') - interval '1 s'
	 AS fast_not_held_up,
	   (SELECT count(*) FROM cortex_hook.delivery WHERE status = 'delivered') AS delivered;

-- Rate limit: 70 deliveries at 60 a minute: 60 now, 10 spread one a second; waiting is not an attempt.
DELETE FROM cortex_hook.webhook;
SELECT hook('Rated', 'apono', '{"rate": 60}') > 0;
SELECT fire('RequestCreated', 70);
SELECT cortex_hook.deliver(1000);
SELECT status, attempts, count(*) FROM cortex_hook.delivery GROUP BY 1, 2 ORDER BY 1;
SELECT min(next_attempt_at) - now() BETWEEN interval '0.5 s' AND interval '1.5 s' AS first_in_1s,
	   max(next_attempt_at) - min(next_attempt_at) BETWEEN interval '8.5 s' AND interval '9.5 s' AS spread_9s
FROM cortex_hook.delivery WHERE status = 'pending';

-- Signing: Standard Webhooks headers, verifiable by the receiver.
CREATE EXTENSION pgcrypto;
DELETE FROM cortex_hook.webhook;
SELECT hook('Signed', 'apono') > 0;
UPDATE cortex_hook.webhook SET signing_secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
SELECT fire('RequestCreated');
SELECT cortex_hook.deliver();
SELECT h->>'webhook-id' = d.id::text AS id_ok,
	   (h->>'webhook-timestamp')::bigint BETWEEN extract(epoch FROM now())::bigint - 60 AND extract(epoch FROM now())::bigint + 60 AS ts_ok,
	   h->>'webhook-signature' = 'v1,' || encode(hmac(convert_to(d.id || '.' || (h->>'webhook-timestamp') || '.' || d.body, 'UTF8'),
		   decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'), 'sha256'), 'base64') AS signature_ok,
	   i.request_headers->>'webhook-signature' = h->>'webhook-signature' AS logged
FROM cortex_hook.invocation i JOIN cortex_hook.delivery d ON d.id = i.delivery_id,
	 LATERAL (SELECT i.response_body::jsonb->'received'->'headers') x(h);

-- test_webhook(): sends the mock event now, logs it as a test, returns the invocation.
UPDATE cortex_hook.webhook SET active = false;
SELECT (t).is_test, (t).delivery_id IS NULL, (t).success, (t).response_status, (t).attempt,
	   ((t).request_body)::jsonb->>'type', ((t).response_body)::jsonb->'received'->'headers'->>'Idempotency-Key' LIKE 'test-%'
FROM (SELECT cortex_hook.test_webhook('signed') AS t) x;
SELECT ((cortex_hook.test_webhook('Signed', 'RequestExpired')).request_body)::jsonb->>'type';
SELECT count(*) FROM cortex_hook.invocation WHERE is_test;
SELECT try($$SELECT cortex_hook.test_webhook('nope')$$);
-- statement_timeout cancels a test send cleanly: nothing logged, the session goes on
\! curl -s -o /dev/null -d '{"entity": "slow3s", "delay_ms": 3000}' http://127.0.0.1:$MOCK_PORT/_mock/script
SELECT hook('Slow test', 'slow3s') > 0;
SET statement_timeout = '300ms';
SELECT cortex_hook.test_webhook('Slow test');
RESET statement_timeout;
SELECT count(*) FROM cortex_hook.invocation i JOIN cortex_hook.webhook w ON w.id = i.webhook_id WHERE w.name = 'Slow test';
SELECT (cortex_hook.test_webhook('Signed')).success;

-- redeliver(): a failed delivery gets a fresh attempt budget.
\! curl -s -o /dev/null -d '{"entity": "down", "fail": 1, "status": 503}' http://127.0.0.1:$MOCK_PORT/_mock/script
DELETE FROM cortex_hook.webhook;
SELECT hook('Down', 'down', '{"max_attempts": 1}') > 0;
SELECT fire('RequestCreated');
SELECT cortex_hook.deliver();
SELECT status, attempts, last_error FROM cortex_hook.delivery;
SELECT cortex_hook.redeliver(id) FROM cortex_hook.delivery;
SELECT status, attempts, budget_start, last_error FROM cortex_hook.delivery;
SELECT cortex_hook.deliver();
SELECT status, attempts FROM cortex_hook.delivery;
SELECT attempt, response_status FROM cortex_hook.invocation ORDER BY id;
SELECT try($$SELECT cortex_hook.redeliver(-1)$$);

-- webhook_status at a glance.
SELECT name, status, pending, delivering, delivered, failed, last_success IS NOT NULL, last_failure IS NOT NULL, last_error
FROM cortex_hook.webhook_status;

-- The API key is stored nowhere but the webhook row.
SELECT (SELECT count(*) FROM cortex_hook.delivery d WHERE d::text LIKE '%test-token%') +
	   (SELECT count(*) FROM cortex_hook.invocation i WHERE i::text LIKE '%test-token%') AS leaks;
DELETE FROM cortex_hook.webhook;
DROP EXTENSION pgcrypto;
