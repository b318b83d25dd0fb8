-- The extension installs, drops and installs again in one session.
CREATE EXTENSION cortex_hook;
DROP EXTENSION cortex_hook;
CREATE EXTENSION cortex_hook;
SELECT extversion FROM pg_extension WHERE extname = 'cortex_hook';

-- Its objects; the churning tables are vacuumed early (README, "Delivery, retries and rate limits").
SELECT c.relname, c.relkind, c.reloptions
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'cortex_hook' AND c.relkind IN ('r', 'v')
ORDER BY 1;
SELECT enum_range(NULL::cortex_hook.event_type);
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
	   pg_get_function_result(p.oid) AS result, p.prosecdef
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'cortex_hook' ORDER BY 1;

-- Settings, all defined and documented.
SELECT name, setting, unit, context FROM pg_settings
WHERE name LIKE 'cortex\_hook.%' ORDER BY name;
SET cortex_hook.no_such_setting = 1;

-- Indexes the delivery path uses.
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid IN ('cortex_hook.delivery'::regclass, 'cortex_hook.invocation'::regclass,
				   'cortex_hook.webhook'::regclass)
ORDER BY indexrelid::regclass::text;

-- A helper for error tests: SQLSTATE, message, detail and hint on one line.
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	msg text; det text; hnt text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || msg
		|| CASE WHEN det <> '' THEN E'\n  detail: ' || det ELSE '' END
		|| CASE WHEN hnt <> '' THEN E'\n  hint: ' || hnt ELSE '' END;
END
$$;

-- A mock event with fixed times, for deterministic output.
CREATE FUNCTION fixed_event(t cortex_hook.event_type DEFAULT 'RequestCreated') RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_set(jsonb_set(e, '{event_time}', '"2026-12-03T15:29:52.123456Z"'),
					 '{data,creation_date}', '"2026-12-03T15:24:52.123456Z"')
		   || jsonb_build_object('data', jsonb_set(jsonb_set(e->'data', '{creation_date}', '"2026-12-03T15:24:52.123456Z"'),
			   '{revocation_date}', CASE WHEN e->'data'->>'revocation_date' IS NULL THEN 'null'
									ELSE '"2026-12-03T19:29:52.123456Z"' END::jsonb))
	FROM cortex_hook.mock_event(t) e
$$;
