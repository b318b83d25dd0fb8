-- mock_event(), payload_schema(), preview().
\pset format unaligned
\pset tuples_only on

-- A small JSON Schema checker (type, enum, required, properties, items,
-- $ref into $defs, format date-time): enough for payload_schema().
CREATE FUNCTION schema_errors(s jsonb, doc jsonb, root jsonb, path text DEFAULT '$')
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	k text;
	v jsonb;
	types text[];
	t text := jsonb_typeof(doc);
BEGIN
	IF s ? '$ref' THEN
		s := root #> string_to_array(substr(s->>'$ref', 3), '/');
	END IF;
	IF s ? 'type' THEN
		types := CASE jsonb_typeof(s->'type') WHEN 'array'
				 THEN ARRAY(SELECT jsonb_array_elements_text(s->'type')) ELSE ARRAY[s->>'type'] END;
		IF NOT (t = ANY (types) OR (t = 'number' AND 'integer' = ANY (types)
				AND (doc::text)::numeric = trunc((doc::text)::numeric))) THEN
			RETURN NEXT path || ': ' || t || ' is not ' || array_to_string(types, ' or ');
		END IF;
	END IF;
	IF s ? 'enum' AND NOT (s->'enum') @> jsonb_build_array(doc) THEN
		RETURN NEXT path || ': not one of ' || (s->>'enum');
	END IF;
	IF s->>'format' = 'date-time' AND t = 'string' AND (doc->>0) !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$' THEN
		RETURN NEXT path || ': not a date-time';
	END IF;
	IF t = 'object' THEN
		FOR k IN SELECT jsonb_array_elements_text(coalesce(s->'required', '[]')) LOOP
			IF NOT doc ? k THEN RETURN NEXT path || ': missing ' || k; END IF;
		END LOOP;
		FOR k, v IN SELECT * FROM jsonb_each(coalesce(s->'properties', '{}')) LOOP
			IF doc ? k THEN RETURN QUERY SELECT schema_errors(v, doc->k, root, path || '.' || k); END IF;
		END LOOP;
	END IF;
	IF t = 'array' AND s ? 'items' THEN
		FOR i IN 0 .. jsonb_array_length(doc) - 1 LOOP
			RETURN QUERY SELECT schema_errors(s->'items', doc->i, root, path || '[' || i || ']');
		END LOOP;
	END IF;
END
$$;

-- Every mock event satisfies the schema...
SELECT t, count(e) AS errors
FROM unnest(enum_range(NULL::cortex_hook.event_type)) t
LEFT JOIN LATERAL schema_errors(cortex_hook.payload_schema(), cortex_hook.mock_event(t),
								cortex_hook.payload_schema()) e ON true
GROUP BY t ORDER BY t;
-- ...and the checker does catch bad ones.
SELECT schema_errors(cortex_hook.payload_schema(),
	'{"event_type": "Bogus", "event_time": "yesterday", "data": {"requester": 5, "access_groups": [{"access_units": [{"permission": {"name": 7}}]}]}}',
	cortex_hook.payload_schema());
SELECT cortex_hook.payload_schema()->>'$schema';

-- The mock event is complete and realistic.
SELECT cortex_hook.mock_event()->>'event_type',
	   jsonb_array_length(cortex_hook.mock_event()->'data'->'access_groups') AS groups,
	   jsonb_array_length(cortex_hook.mock_event()->'data'->'access_groups'->0->'access_units') AS units,
	   cortex_hook.mock_event()->'data'->'custom_fields' AS custom_fields,
	   (cortex_hook.mock_event()->>'event_time')::timestamptz > now() - interval '1 minute' AS recent;
SELECT t, cortex_hook.mock_event(t)->'data'->'approvals'->0->>'status' AS approval,
	   cortex_hook.mock_event(t)->'data'->>'revocation_date' IS NOT NULL AS revoked
FROM unnest(enum_range(NULL::cortex_hook.event_type)) t;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(cortex_hook.mock_event()->'data') k);

-- preview(): method, rendered URL, redacted headers, the body.
INSERT INTO cortex_hook.webhook (name, method, url, headers, triggers, signing_secret)
VALUES ('Preview me', 'put', 'https://api.getcortexapp.com/api/v1/catalog/{{data.access_flow.id}}/custom-events',
		'{"Authorization": "Bearer sk-live-123", "X-Api-Key": "k-456", "X-Session-Token": "t-789", "Cookie": "c=1", "X-Team": "payments"}',
		'{RequestGranted,RequestCreated}', 'whsec_' || encode(convert_to(repeat('k', 32), 'UTF8'), 'base64'));
SELECT jsonb_pretty(cortex_hook.preview('preview me', fixed_event('RequestExpired')) - 'body');
SELECT cortex_hook.preview('Preview me', fixed_event('RequestExpired'))->'body'->>'title';
-- With no event: the mock event of the webhook's first trigger.
SELECT cortex_hook.preview('Preview me')->'body'->>'type';
SELECT position('sk-live-123' IN cortex_hook.preview('Preview me')::text) = 0 AS key_hidden;
SELECT try($$SELECT cortex_hook.preview('nope')$$);
DELETE FROM cortex_hook.webhook;
