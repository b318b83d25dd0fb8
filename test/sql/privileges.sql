-- Least privilege (SPEC §7).
\pset format unaligned
\pset tuples_only on

\getenv port MOCK_PORT
INSERT INTO cortex_hook.webhook (name, url, headers, triggers)
VALUES ('Cortex', 'http://127.0.0.1:' || :'port' || '/api/v1/catalog/apono/custom-events',
		'{"Authorization": "Bearer test-token"}', '{RequestCreated}');

CREATE ROLE cortex_hook_nobody;
CREATE ROLE cortex_hook_app;
GRANT INSERT ON cortex_hook.access_request_event TO cortex_hook_app;

-- A role granted nothing reads and writes nothing.
SET ROLE cortex_hook_nobody;
SELECT try($$SELECT * FROM cortex_hook.webhook$$);
SELECT try($$SELECT * FROM cortex_hook.delivery$$);
SELECT try($$SELECT * FROM cortex_hook.invocation$$);
SELECT try($$SELECT * FROM cortex_hook.webhook_status$$);
SELECT try($$INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', '{}')$$);
RESET ROLE;

-- The application role inserts events; deliveries are queued for it, but it
-- can read no webhook, delivery or invocation, nor send anything itself.
SET ROLE cortex_hook_app;
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', '{"id": "from app"}');
SELECT try($$SELECT * FROM cortex_hook.webhook$$);
SELECT try($$SELECT * FROM cortex_hook.delivery$$);
SELECT try($$SELECT * FROM cortex_hook.invocation$$);
SELECT try($$SELECT cortex_hook.deliver()$$);
SELECT try($$SELECT cortex_hook.test_webhook('Cortex')$$);
SELECT try($$SELECT cortex_hook.preview('Cortex')$$);
SELECT try($$SELECT cortex_hook.matches('Cortex', '{}')$$);
SELECT try($$SELECT cortex_hook.redeliver(1)$$);
SELECT try($$CREATE TABLE mine (event_type text, data jsonb)$$);
-- harmless helpers stay available
SELECT cortex_hook.render_template('{"a": "{{x}}"}', '{"x": 1}'), cortex_hook.mock_event() ? 'data';
RESET ROLE;
SELECT count(*), min(body::jsonb->'customData'->>'id') FROM cortex_hook.delivery;
-- and what it queued is sent (deliver() does what the worker does)
SELECT cortex_hook.deliver();
SELECT status, attempts FROM cortex_hook.delivery;

-- The SECURITY DEFINER trigger cannot be hijacked through search_path:
-- look-alike tables, functions and operators in a schema the caller controls change nothing.
CREATE SCHEMA evil;
GRANT USAGE, CREATE ON SCHEMA evil TO cortex_hook_app;
SET ROLE cortex_hook_app;
CREATE TABLE evil.delivery (LIKE pg_catalog.pg_class);
CREATE TABLE evil.webhook (id bigint);
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'pwned' $$;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE FUNCTION evil.jsonb_path_match(jsonb, jsonpath, jsonb, boolean) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
SET search_path = evil, pg_catalog, public;
INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', '{"id": "hijack attempt"}');
SELECT count(*) FROM evil.delivery;
RESET search_path;
RESET ROLE;
SELECT count(*), count(*) FILTER (WHERE body::jsonb->'customData'->>'id' = 'hijack attempt') FROM cortex_hook.delivery;

DROP SCHEMA evil CASCADE;
DELETE FROM cortex_hook.webhook;
REVOKE ALL ON cortex_hook.access_request_event FROM cortex_hook_app;
DROP ROLE cortex_hook_app, cortex_hook_nobody;
