# Nothing queued is lost: an immediate shutdown with 5,000 deliveries in
# flight, kill -9 of the worker, and the endpoint down for ten seconds.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
my $node = new_node('crash', "cortex_hook.database_name = 'postgres'\nrestart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', cortex_setup_sql($mock));

# Count requests per Idempotency-Key for an entity: (total, distinct).
sub received
{
	my ($entity) = @_;
	my $r = mock_requests($mock, $entity);
	my %k = map { $_->{headers}{'Idempotency-Key'} => 1 } @$r;
	return (scalar @$r, scalar keys %k);
}

# 5,000 deliveries against a slow endpoint; stop immediately while in flight.
mock_post($mock, '/_mock/script', { entity => 'slow', delay_ms => 200 });
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	SELECT 'RequestCreated', jsonb_build_object('entity', 'slow', 'n', n) FROM generate_series(1, 5000) n});
ok(wait_until(30, sub { (received('slow'))[0] >= 300 }), 'deliveries under way');
$node->stop('immediate');
my ($sent_before) = received('slow');
$node->start;
$node->wait_for_log(qr/deliveries that were in flight before a restart are pending again|cortex_hook worker started/);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 5000 FROM cortex_hook.delivery WHERE status = 'delivered'}, 't'),
	'after an immediate shutdown every delivery ends delivered');
my ($total, $distinct) = received('slow');
is($distinct, 5000, 'none missing: the mock saw all 5,000 deliveries');
diag("immediate shutdown after $sent_before requests: $total requests for 5000 deliveries, "
	  . ($total - $distinct) . " sent twice (at-least-once)");
cmp_ok($total - $distinct, '<=', 32 * 2, 'duplicates bounded by what was in flight');

# kill -9 of the worker: the postmaster restarts it; nothing is lost.
mock_post($mock, '/_mock/script', { entity => 'killed', delay_ms => 300 });
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	SELECT 'RequestCreated', jsonb_build_object('entity', 'killed', 'n', n) FROM generate_series(1, 300) n});
ok(wait_until(30, sub { (received('killed'))[0] >= 50 }), 'deliveries under way');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'});
kill 'KILL', $pid;
$node->wait_for_log(qr/terminated by signal 9/);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 300 FROM cortex_hook.delivery WHERE status = 'delivered' AND url LIKE '%/killed/%'}, 't'),
	'after kill -9 of the worker every delivery ends delivered');
($total, $distinct) = received('killed');
is($distinct, 300, 'none missing after kill -9');
diag("kill -9: $total requests for 300 deliveries");

# The endpoint down for ten seconds: everything queued meanwhile is delivered.
my $port = $mock->{port};
stop_mock($mock);
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	SELECT 'RequestCreated', jsonb_build_object('entity', 'down', 'n', n) FROM generate_series(1, 20) n});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 20 FROM cortex_hook.delivery WHERE status = 'pending' AND attempts >= 1 AND url LIKE '%/down/%'}),
	'attempts fail while the endpoint is down');
sleep 10;
$mock = start_mock($port);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 20 FROM cortex_hook.delivery WHERE status = 'delivered' AND url LIKE '%/down/%'}, 't'),
	'delivered once the endpoint is back');
is((received('down'))[1], 20, 'all 20 received');

$node->stop;
stop_mock($mock);
done_testing();
