-- Every rule of SPEC §2.2 has its own error.
\pset format unaligned
\pset tuples_only on

INSERT INTO cortex_hook.webhook (name, url, headers, triggers)
VALUES ('Cortex', 'https://api.getcortexapp.com/api/v1/catalog/apono/custom-events',
		'{"Authorization": "Bearer secret-key-1"}', '{RequestCreated}');
SELECT id, name, active, method, timeout_ms, max_attempts, rate_limit_per_minute,
	   created_at = updated_at AS fresh FROM cortex_hook.webhook;

-- names
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('', 'http://x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES (repeat('a', 65), 'http://x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('a/b', 'http://x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES (' lead', 'http://x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('CORTEX', 'http://x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES (NULL, 'http://x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('Ok name_1-x', 'http://x/', '{RequestCreated}')$$);
-- methods: canonical upper case
SELECT try($$INSERT INTO cortex_hook.webhook (name, method, url, triggers) VALUES ('m', 'TRACE', 'http://x/', '{RequestCreated}')$$);
INSERT INTO cortex_hook.webhook (name, method, url, triggers) VALUES ('m', 'patch', 'http://x/', '{RequestCreated}');
SELECT method FROM cortex_hook.webhook WHERE name = 'm';
-- urls
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'ftp://x', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'not a url', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'notaurl', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'http://', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'http://user:pw@x/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'http://x:99999/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'http://{{data.id}}/', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'http://x/{{data.id', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'http://x/{{shout data.id}}', '{RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('u', 'https://[::1]:8443/a/{{data.id}}/b', '{RequestCreated}')$$);
-- headers
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '["a"]')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '{"X-N": 1}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '{"X Y": "v"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '{"X:Y": "v"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '{"X-Y": "a\r\nEvil: 1"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '{"X-Y": "a\nb"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, headers) VALUES ('h', 'http://x/', '{RequestCreated}', '{"Content-Length": "5"}')$$);
-- triggers
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('t', 'http://x/', '{}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('t', 'http://x/', '{RequestCreated,RequestGranted,RequestCreated}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('t', 'http://x/', '{RequestDeleted}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('t', 'http://x/', '{NULL}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url) VALUES ('t', 'http://x/')$$);
-- filters
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"colour": ["red"]}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"integrations": "pg"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"integrations": [1]}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"integrations": []}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '["integrations"]')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"condition": "$.data.x >"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"condition": "$.data.x"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, filters) VALUES ('f', 'http://x/', '{RequestCreated}', '{"condition": 3}')$$);
-- numbers
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, timeout_ms) VALUES ('n', 'http://x/', '{RequestCreated}', 0)$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, timeout_ms) VALUES ('n', 'http://x/', '{RequestCreated}', 300001)$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, max_attempts) VALUES ('n', 'http://x/', '{RequestCreated}', 0)$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, max_attempts) VALUES ('n', 'http://x/', '{RequestCreated}', 101)$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, rate_limit_per_minute) VALUES ('n', 'http://x/', '{RequestCreated}', 0)$$);
-- signing secrets
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, signing_secret) VALUES ('s', 'http://x/', '{RequestCreated}', 'hunter2')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, signing_secret) VALUES ('s', 'http://x/', '{RequestCreated}', 'whsec_c2hvcnQ=')$$);
-- body templates: position of the problem in the hint
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, body_template) VALUES ('b', 'http://x/', '{RequestCreated}', E'{\n  "title": "x",\n  "type" "y"\n}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, body_template) VALUES ('b', 'http://x/', '{RequestCreated}', E'{"title": "{{data.requester.name"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, body_template) VALUES ('b', 'http://x/', '{RequestCreated}', E'{"title": "{{shout data.id}}"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, body_template) VALUES ('b', 'http://x/', '{RequestCreated}', E'{"title": "{{default data.id}}"}')$$);
SELECT try($$INSERT INTO cortex_hook.webhook (name, url, triggers, body_template) VALUES ('b', 'http://x/', '{RequestCreated}', '')$$);

-- An UPDATE that breaks a rule is refused; the row keeps its valid values.
SELECT try($$UPDATE cortex_hook.webhook SET url = 'ftp://x', timeout_ms = 5 WHERE name = 'Cortex'$$);
SELECT try($$UPDATE cortex_hook.webhook SET name = 'm' WHERE name = 'Cortex'$$);
SELECT name, url, timeout_ms FROM cortex_hook.webhook WHERE name = 'Cortex';
-- A valid UPDATE keeps created_at and moves updated_at.
UPDATE cortex_hook.webhook SET created_at = '2000-01-01', updated_at = '2000-01-01', timeout_ms = 5000 WHERE name = 'Cortex';
SELECT timeout_ms, created_at > '2001-01-01' AS created_kept, updated_at > '2001-01-01' AS updated_now
FROM cortex_hook.webhook WHERE name = 'Cortex';
-- Renaming to the same name in another case is fine.
UPDATE cortex_hook.webhook SET name = 'CORTEX' WHERE name = 'Cortex';
UPDATE cortex_hook.webhook SET name = 'Cortex' WHERE name = 'CORTEX';
SELECT count(*) FROM cortex_hook.webhook;
DELETE FROM cortex_hook.webhook;
