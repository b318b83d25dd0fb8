# pg_dump keeps the webhooks: a dump restores them into a new database.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_node('dump', "cortex_hook.database_name = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE DATABASE src;
});
$node->safe_psql('src', q{
CREATE EXTENSION cortex_hook;
INSERT INTO cortex_hook.webhook (name, url, headers, triggers, filters, signing_secret)
VALUES ('Cortex', 'https://api.getcortexapp.com/api/v1/catalog/{{data.entity}}/custom-events',
        '{"Authorization": "Bearer k"}', '{RequestCreated,RequestGranted}',
        '{"integrations": ["payments-prod-db"], "condition": "$.data.access_duration_in_seconds > 60"}',
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
       ('Second', 'https://api.getcortexapp.com/x', '{}', '{RequestFailed}', '{}', NULL);
DELETE FROM cortex_hook.webhook WHERE name = 'Second';
INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('Third', 'https://api.getcortexapp.com/y', '{RequestExpired}');
});
my $dump = $node->basedir . '/src.dump';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src')], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(['pg_restore', '-d', $node->connstr('dst'), $dump], 'pg_restore');

my $q = q{SELECT id, name, active, method, url, body_template, headers, triggers, filters, timeout_ms,
	max_attempts, rate_limit_per_minute, signing_secret, created_at FROM cortex_hook.webhook ORDER BY id};
is($node->safe_psql('dst', $q), $node->safe_psql('src', $q), 'webhooks restored exactly');
# new ids continue after the restored ones
$node->safe_psql('dst', q{INSERT INTO cortex_hook.webhook (name, url, triggers) VALUES ('Fourth', 'https://api.getcortexapp.com/z', '{RequestCreated}')});
is($node->safe_psql('dst', q{SELECT id FROM cortex_hook.webhook WHERE name = 'Fourth'}), '4', 'the id sequence is restored too');
# and they work: an event queues a delivery in the restored database
$node->safe_psql('dst', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	SELECT 'RequestCreated', cortex_hook.mock_event()->'data' || '{"entity": "e"}'});
is($node->safe_psql('dst', q{SELECT url FROM cortex_hook.delivery WHERE webhook_id = 1}),
	'https://api.getcortexapp.com/api/v1/catalog/e/custom-events', 'restored webhook dispatches');

$node->stop;
done_testing();
