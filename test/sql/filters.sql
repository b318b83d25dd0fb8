-- Filters (SPEC §4) through matches().
\pset format unaligned
\pset tuples_only on

CREATE FUNCTION hook(name text, filters jsonb, triggers cortex_hook.event_type[] DEFAULT '{RequestCreated}')
RETURNS void LANGUAGE sql AS $$
	INSERT INTO cortex_hook.webhook (name, url, triggers, filters)
	VALUES (name, 'http://127.0.0.1/x', triggers, filters)
$$;

-- Each key alone: a value present in the mock event matches, another does not.
SELECT hook('integrations', '{"integrations": ["aws-prod"]}'),
	   hook('integration_types', '{"integration_types": ["Postgresql"]}'),
	   hook('resource_types', '{"resource_types": ["S3 Bucket"]}'),
	   hook('resources', '{"resources": ["ledger"]}'),
	   hook('permissions', '{"permissions": ["Read"]}'),
	   hook('requesters email', '{"requesters": ["dana.whitfield@example.com"]}'),
	   hook('requesters name', '{"requesters": ["Dana Whitfield"]}'),
	   hook('grantees', '{"grantees": ["Dana Whitfield"]}'),
	   hook('access_flows', '{"access_flows": ["Production databases"]}'),
	   hook('bundles', '{"bundles": ["Payments on-call"]}'),
	   hook('condition true', '{"condition": "$.data.access_duration_in_seconds > 3600"}'),
	   hook('no filter', '{}');
SELECT hook('integrations no', '{"integrations": ["gcp"]}'),
	   hook('integration_types no', '{"integration_types": ["MySQL"]}'),
	   hook('resource_types no', '{"resource_types": ["Bucket"]}'),
	   hook('resources no', '{"resources": ["Ledger"]}'),
	   hook('permissions no', '{"permissions": ["Write"]}'),
	   hook('requesters no', '{"requesters": ["dana"]}'),
	   hook('grantees no', '{"grantees": ["Sam Okafor"]}'),
	   hook('access_flows no', '{"access_flows": ["Staging"]}'),
	   hook('bundles no', '{"bundles": ["Other"]}'),
	   hook('condition false', '{"condition": "$.data.access_duration_in_seconds > 86400"}'),
	   hook('condition missing field', '{"condition": "$.data.no_such_field > 1"}'),
	   hook('condition strict missing', '{"condition": "strict $.data.no_such_field == 1"}');
-- AND across keys, OR within a key.
SELECT hook('and both', '{"integrations": ["aws-prod"], "permissions": ["ReadOnly"]}'),
	   hook('and one fails', '{"integrations": ["aws-prod"], "permissions": ["Admin"]}'),
	   hook('or', '{"integrations": ["nope", "payments-prod-db"]}'),
	   hook('and with condition', '{"bundles": ["Payments on-call"], "condition": "$.event_type == \"RequestCreated\""}'),
	   hook('trigger mismatch', '{}', '{RequestGranted,RequestExpired}');

SELECT name, cortex_hook.matches(name, fixed_event()) FROM cortex_hook.webhook ORDER BY id;

-- Triggers: the event type decides before filters do.
SELECT t, cortex_hook.matches('trigger mismatch', fixed_event(t))
FROM unnest(enum_range(NULL::cortex_hook.event_type)) t;
-- Inactive webhooks still answer matches() (dispatch skips them).
UPDATE cortex_hook.webhook SET active = false WHERE name = 'no filter';
SELECT cortex_hook.matches('no filter', fixed_event());
-- Events missing whole sections match nothing that needs them.
SELECT cortex_hook.matches('integrations', '{"event_type": "RequestCreated", "data": {}}'),
	   cortex_hook.matches('no filter', '{"event_type": "RequestCreated"}'),
	   cortex_hook.matches('no filter', '{"event_type": "Bogus", "data": {}}');
SELECT try($$SELECT cortex_hook.matches('nope', '{}')$$);
DELETE FROM cortex_hook.webhook;
DROP FUNCTION hook;
