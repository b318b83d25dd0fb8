-- dispatch(): matching webhooks queue one delivery each, in the same transaction.
\pset format unaligned
\pset tuples_only on

INSERT INTO cortex_hook.webhook (name, url, triggers, filters, active) VALUES
	('created', 'http://127.0.0.1:1/api/v1/catalog/{{data.access_flow.id}}/custom-events', '{RequestCreated}', '{}', true),
	('granted aws', 'http://127.0.0.1:1/api/v1/catalog/aws/custom-events', '{RequestGranted}', '{"integrations": ["aws-prod"]}', true),
	('granted gcp', 'http://127.0.0.1:1/api/v1/catalog/gcp/custom-events', '{RequestGranted}', '{"integrations": ["gcp-prod"]}', true),
	('inactive', 'http://127.0.0.1:1/x', '{RequestCreated,RequestGranted,RequestRejected}', '{}', false);

CREATE VIEW queued AS
SELECT d.id, w.name, d.event_id, d.event_type, d.status, d.attempts, d.url,
	   d.body::jsonb->>'title' AS title, d.last_error
FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id;

INSERT INTO cortex_hook.access_request_event (event_type, event_time, data)
SELECT t, '2026-12-03 15:29:52.123456+00', fixed_event(t)->'data'
FROM unnest('{RequestCreated,RequestGranted,RequestRejected}'::cortex_hook.event_type[]) t;
SELECT * FROM queued ORDER BY id;
-- The body is the render of the event, exactly.
SELECT d.body = cortex_hook.render_template(w.body_template,
	jsonb_build_object('event_type', e.event_type, 'event_time', '2026-12-03T15:29:52.123456Z',
					   'event_id', e.id, 'data', e.data)) AS exact
FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id
JOIN cortex_hook.access_request_event e ON e.id = d.event_id ORDER BY d.id;
SELECT status, attempts, next_attempt_at <= now() AS due, delivered_at IS NULL AS undelivered
FROM cortex_hook.delivery ORDER BY id;

-- A rolled-back insert queues nothing.
BEGIN;
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', fixed_event()->'data');
SELECT count(*) FROM cortex_hook.delivery;
ROLLBACK;
SELECT count(*) FROM cortex_hook.delivery;

-- Webhook changes apply at once (the cache is invalidated), even in the same transaction.
BEGIN;
UPDATE cortex_hook.webhook SET active = false WHERE name = 'created';
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', fixed_event()->'data');
SELECT count(*) FROM cortex_hook.delivery;
UPDATE cortex_hook.webhook SET active = true WHERE name IN ('created', 'inactive');
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', fixed_event()->'data');
SELECT name FROM queued WHERE id > 2 ORDER BY id;
ROLLBACK;

-- A rendering problem never fails the INSERT: the delivery is recorded failed.
INSERT INTO cortex_hook.webhook (name, url, triggers)
VALUES ('needs entity', 'http://127.0.0.1:1/api/v1/catalog/{{data.entity}}/custom-events', '{RequestApproved}');
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestApproved', '{"id": "no entity"}');
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestApproved', '{"entity": "svc-a"}');
SELECT name, status, url, last_error FROM queued WHERE event_type = 'RequestApproved' ORDER BY id;
-- An event with 5 MB of data renders over cortex_hook.max_body_size (2MB):
-- failed, not queued for sending; the INSERT succeeds.
INSERT INTO cortex_hook.access_request_event (event_type, data)
VALUES ('RequestApproved', jsonb_build_object('entity', 'big', 'requester', jsonb_build_object('name', repeat('x', 5000000))));
SELECT status, length(body), last_error FROM cortex_hook.delivery WHERE url LIKE '%/big/%';
-- A URL over 8 kB is failed the same way.
INSERT INTO cortex_hook.access_request_event (event_type, data)
VALUES ('RequestApproved', jsonb_build_object('entity', repeat('u', 9000)));
SELECT status, url, length(body), last_error FROM cortex_hook.delivery ORDER BY id DESC LIMIT 1;
-- Data nested 10,000 levels deep renders like any other.
INSERT INTO cortex_hook.access_request_event (event_type, data)
VALUES ('RequestApproved', jsonb_build_object('entity', 'deep', 'nest', (repeat('[', 10000) || repeat(']', 10000))::jsonb));
SELECT status, url, length(body), body::jsonb->'customData'->>'entity' FROM cortex_hook.delivery ORDER BY id DESC LIMIT 1;
-- Invalid surrogate escapes: jsonb input refuses them with the INSERT (a
-- json column keeps them; see my_requests below).
SELECT try($$INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestApproved', '{"entity": "s", "x": "\ud800"}')$$);
DELETE FROM cortex_hook.webhook WHERE name = 'needs entity';

-- dispatch() on a table of one's own: column names as trigger arguments,
-- INSERT and UPDATE, FOR EACH ROW; an unknown event type queues nothing.
CREATE TABLE my_requests (id int PRIMARY KEY, kind text, payload json, happened timestamp);
CREATE TRIGGER to_cortex AFTER INSERT OR UPDATE ON my_requests
	FOR EACH ROW EXECUTE FUNCTION cortex_hook.dispatch('kind', 'payload', 'happened');
INSERT INTO my_requests VALUES (7, 'RequestCreated', (fixed_event()->'data')::json, '2026-12-03 15:29:52');
INSERT INTO my_requests VALUES (8, 'Something else', '{}', now());
UPDATE my_requests SET kind = 'RequestGranted' WHERE id = 7;
SELECT name, event_id, event_type, title FROM queued WHERE event_id = 7 ORDER BY id;
SELECT body::jsonb->>'timestamp' FROM cortex_hook.delivery WHERE event_id = 7 ORDER BY id LIMIT 1;
-- json the json type accepts but jsonb cannot hold: the INSERT succeeds and
-- each webhook for the event type records why nothing was sent.
INSERT INTO my_requests VALUES (9, 'RequestCreated', '{"entity": "nul", "x": "a\u0000b"}', now());
INSERT INTO my_requests VALUES (10, 'RequestCreated', '{"entity": "big number", "x": 1e1000000}', now());
INSERT INTO my_requests VALUES (11, 'RequestCreated', '{"entity": "surrogate", "x": "\ud800 \udc00"}', now());
SELECT event_id, name, status, d.url, last_error FROM cortex_hook.delivery d
	JOIN cortex_hook.webhook w ON w.id = d.webhook_id WHERE event_id IN (9, 10, 11) ORDER BY d.id;
SELECT count(*) FROM my_requests;

-- FOR EACH STATEMENT with a transition table: one call for many rows.
CREATE TABLE bulk_requests (event_type cortex_hook.event_type, data jsonb);
CREATE TRIGGER to_cortex AFTER INSERT ON bulk_requests REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION cortex_hook.dispatch();
INSERT INTO bulk_requests SELECT 'RequestCreated', fixed_event()->'data' FROM generate_series(1, 5);
SELECT count(*), count(event_id) FROM queued WHERE name = 'created' AND event_id IS NULL;

-- 1,000 webhooks for the event type, one of them matching: one delivery.
INSERT INTO cortex_hook.webhook (name, url, triggers, filters)
SELECT 'many ' || i, 'http://127.0.0.1:1/api/v1/catalog/many/custom-events', '{RequestFailed}',
	   jsonb_build_object('integrations', jsonb_build_array(CASE i WHEN 500 THEN 'payments-prod-db' ELSE 'other-' || i END))
FROM generate_series(1, 1000) i;
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestFailed', fixed_event('RequestFailed')->'data');
SELECT name, status FROM queued WHERE event_type = 'RequestFailed';
DELETE FROM cortex_hook.webhook WHERE name LIKE 'many %';

-- Misuse is reported clearly.
CREATE TABLE wrong (id int, data jsonb);
CREATE TRIGGER t AFTER INSERT ON wrong FOR EACH ROW EXECUTE FUNCTION cortex_hook.dispatch('kind');
SELECT try($$INSERT INTO wrong VALUES (1, '{}')$$);
DROP TRIGGER t ON wrong;
CREATE TRIGGER t AFTER INSERT ON wrong FOR EACH STATEMENT EXECUTE FUNCTION cortex_hook.dispatch();
SELECT try($$INSERT INTO wrong VALUES (1, '{}')$$);
DROP TRIGGER t ON wrong;
CREATE TRIGGER t BEFORE INSERT ON wrong FOR EACH ROW EXECUTE FUNCTION cortex_hook.dispatch();
SELECT try($$INSERT INTO wrong VALUES (1, '{}')$$);
DROP TABLE wrong, my_requests, bulk_requests;

-- Deleting a webhook deletes its deliveries.
SELECT count(*) FROM cortex_hook.delivery WHERE webhook_id = (SELECT id FROM cortex_hook.webhook WHERE name = 'created');
DELETE FROM cortex_hook.webhook WHERE name = 'created';
SELECT count(*) FROM cortex_hook.delivery d WHERE NOT EXISTS (SELECT 1 FROM cortex_hook.webhook w WHERE w.id = d.webhook_id);
DELETE FROM cortex_hook.webhook;
TRUNCATE cortex_hook.access_request_event;
DROP VIEW queued;
