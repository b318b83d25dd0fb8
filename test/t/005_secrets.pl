# No secret reaches the server log, even at log_min_messages = debug5, nor any
# table but cortex_hook.webhook: trigger, worker, deliver(), test_webhook(),
# preview(), failures.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_node('secrets', "cortex_hook.database_name = 'postgres'\nlog_min_messages = debug5\nlog_min_error_statement = debug5\n");
$node->start;
my $base = "http://127.0.0.1:$mock->{port}/api/v1/catalog";
my $key = 'test-token';
my $wrong = 'sk-wrong-9f8e7d6c5b4a';
my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
$node->safe_psql('postgres', 'CREATE EXTENSION cortex_hook');
# insert the secrets without putting them in any statement text the server logs
$node->safe_psql('postgres', qq{
SET log_min_messages = warning; SET log_min_error_statement = panic; SET log_statement = none;
INSERT INTO cortex_hook.webhook (name, url, headers, triggers, signing_secret)
VALUES ('Good', '$base/good/custom-events', '{"Authorization": "Bearer $key", "X-Api-Key": "$key"}', '{RequestCreated}', '$secret'),
       ('Bad', '$base/bad/custom-events', '{"Authorization": "Bearer $wrong"}', '{RequestCreated}', NULL);
});
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	SELECT 'RequestCreated', cortex_hook.mock_event()->'data' FROM generate_series(1, 3)});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 6 FROM cortex_hook.delivery WHERE status <> 'pending' AND status <> 'delivering'}),
	'worker delivered (and failed the bad key)');
$node->safe_psql('postgres', q{UPDATE cortex_hook.webhook SET active = false});
$node->safe_psql('postgres', q{SELECT cortex_hook.test_webhook('Good'), cortex_hook.test_webhook('Bad'), cortex_hook.preview('Good')});
$node->safe_psql('postgres', q{SELECT cortex_hook.redeliver(id) FROM cortex_hook.delivery; SELECT cortex_hook.deliver()});
my $errors = $node->safe_psql('postgres', q{SELECT count(*) FROM cortex_hook.invocation WHERE response_status = 401});
cmp_ok($errors, '>=', 2, 'the failure path ran');

my $log = slurp_file($node->logfile);
cmp_ok(length($log), '>', 10000, 'debug5 log written');
for my $s ($key, $wrong, $secret, 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')
{
	unlike($log, qr/\Q$s\E/, "secret $s is not in the server log");
	is($node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM cortex_hook.delivery d WHERE d::text LIKE '%$s%')
			 + (SELECT count(*) FROM cortex_hook.invocation i WHERE i::text LIKE '%$s%')
			 + (SELECT count(*) FROM cortex_hook.access_request_event e WHERE e::text LIKE '%$s%')}),
		'0', "secret $s is in no table but webhook");
	unlike($node->safe_psql('postgres', q{SELECT cortex_hook.preview('Good')::text}), qr/\Q$s\E/, "nor in preview()");
}

$node->stop;
stop_mock($mock);
done_testing();
