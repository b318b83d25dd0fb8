-- Templates (SPEC §3) through render_template() and preview().
\pset format unaligned
\pset tuples_only on

-- The Cortex guide's body template, against mock events of all six types.
SELECT t, cortex_hook.render_template($tpl${
  "customData": "{{json data}}",
  "description": "New {{event_type}} request made by {{data.requester.name}}",
  "timestamp": "{{event_time}}",
  "title": "New {{event_type}} request made by {{data.requester.name}}",
  "type": "{{event_type}}"
}$tpl$, fixed_event(t))::jsonb - 'customData' AS rendered,
	cortex_hook.render_template('{"c": "{{json data}}"}', fixed_event(t))::jsonb->'c' = fixed_event(t)->'data' AS custom_data_whole
FROM unnest(enum_range(NULL::cortex_hook.event_type)) t;

-- Output is compact JSON; numbers keep their spelling.
SELECT cortex_hook.render_template(E'{ "a" : [ 1.50, -2e3, true, null ],\n "b": {} }', '{}');

-- Paths, types, missing values.
SELECT cortex_hook.render_template('{"s": "{{data.s}}", "n": "{{data.n}}", "r": "{{data.r}}", "b": "{{data.b}}", "o": "{{data.o}}", "a": "{{data.a}}", "z": "[{{data.z}}|{{data.nope}}|{{nope.x.y}}]"}',
	'{"data": {"s": "text", "n": 42, "r": 0.5, "b": false, "o": {"k": [1, "x"]}, "a": [1, 2], "z": null}}');
SELECT cortex_hook.render_template('["{{data.a.0}}", "{{data.a.1.k}}", "<{{data.a.5}}>", "<{{data.a.x}}>"]',
	'{"data": {"a": ["first", {"k": "nested"}]}}');
-- {{json path}} alone keeps the value's type; inside text it is compact JSON.
SELECT cortex_hook.render_template('{"o": "{{json data.o}}", "a": "{{json data.a}}", "n": "{{json data.n}}", "b": "{{json data.b}}", "z": "{{json data.z}}", "m": "{{json data.nope}}", "s": "{{json data.s}}", "t": "x={{json data.o}}"}',
	'{"data": {"s": "text", "n": 42, "b": true, "o": {"k": [1, "x"]}, "a": [1, 2], "z": null}}');

-- Helpers.
SELECT cortex_hook.render_template($$["{{upper data.s}}", "{{lower data.s}}", "{{iso8601 data.t}}", "{{iso8601 data.e}}", "{{iso8601 data.s}}", "{{default data.nope 'none'}}", "{{default data.empty \"n/a\"}}", "{{default data.s 'none'}}", "{{join data.tags}}", "{{join data.tags ' | '}}"]$$,
	'{"data": {"s": "Mixed Case", "t": "2026-12-03 16:29:52.5+01", "e": 1764775792, "empty": "", "tags": ["a", "b", 3]}}');

-- Injection: event data is always text inside a string, never structure.
WITH nasty(s) AS (VALUES
	('quote " and backslash \'),
	(E'new\nline and\ttab'),
	('</script><script>alert(1)</script>'),
	('{{data.id}}'),
	('", "title": "x'),
	('emoji 😀 and 𝄞'),
	(E'control \x01\x02\x1f chars'),
	('{{json data}}'))
SELECT s = (r::jsonb->>'title') AS same_text,
	   (SELECT count(*) FROM jsonb_object_keys(r::jsonb)) AS keys
FROM nasty,
	 LATERAL cortex_hook.render_template('{"title": "{{data.requester.name}}", "type": "t"}',
		jsonb_build_object('data', jsonb_build_object('requester', jsonb_build_object('name', s), 'id', 'ID'))) r;
SELECT cortex_hook.render_template('{"k": "{{data.s}}"}', '{"data": {"s": "a\"b\\c\n\u0001"}}');

-- Errors: line and column.
SELECT try($$SELECT cortex_hook.render_template(E'{\n  "a": 1,\n  "b": }', '{}')$$);
SELECT try($$SELECT cortex_hook.render_template('{"a": "{{x"}', '{}')$$);
SELECT try($$SELECT cortex_hook.render_template('{"a": "{{nope x}}"}', '{}')$$);
SELECT try($$SELECT cortex_hook.render_template('{"a": 01}', '{}')$$);

-- URL tags are percent-encoded into their path segment (seen through preview()).
INSERT INTO cortex_hook.webhook (name, url, triggers)
VALUES ('url', 'http://127.0.0.1/api/v1/catalog/{{data.id}}/custom-events?by={{data.requester.email}}', '{RequestCreated}');
SELECT v AS id, cortex_hook.preview('url', jsonb_build_object('event_type', 'RequestCreated',
	'data', jsonb_build_object('id', v, 'requester', jsonb_build_object('email', 'a+b@x.io'))))->>'url'
FROM unnest(ARRAY['../../admin', 'a/b', 'a?b=c', 'a#frag', 'sp ace', '100%', '..', '.', 'plain-id_1.x~']) v;
SELECT try($$SELECT cortex_hook.preview('url', '{"event_type": "RequestCreated", "data": {}}')$$);
DELETE FROM cortex_hook.webhook;
