# The background worker: waits for the extension, delivers within a second of
# commit without deliver(), shows in pg_stat_activity, reloads settings on
# SIGHUP, stops on SIGTERM, prunes old rows.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
my $node = new_node('worker', "cortex_hook.database_name = 'postgres'\n");
$node->start;

# Without the extension the worker waits quietly: one LOG line, no restarts.
$node->wait_for_log(qr/extension cortex_hook is not installed in database "postgres"/);
sleep 2;
my $log = slurp_file($node->logfile);
is(scalar(() = $log =~ /is not installed in database "postgres"/g), 1, 'one LOG line while waiting for the extension');
unlike($log, qr/terminated by signal|exited with exit code/, 'no crash loop while waiting');

# Created after server start: deliveries begin without a restart.
$node->safe_psql('postgres', cortex_setup_sql($mock));
$node->wait_for_log(qr/cortex_hook worker started in database "postgres"/);

my $t0 = time();
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	VALUES ('RequestCreated', '{"entity": "first", "requester": {"name": "Ann"}}')});
my $got = wait_until(10, sub { my $r = mock_requests($mock, 'first'); @$r ? $r : undef });
ok($got && @$got == 1, 'the insert reached the mock server with no call to deliver()');
# Measured from before psql starts (the commit itself is inside psql): an
# upper bound on commit to receipt.  bench/latency.sh measures it exactly.
my $latency = $got->[0]{time} - $t0;
cmp_ok($latency, '<', 1.0, sprintf('received %.1f ms after the INSERT was issued', $latency * 1000));
diag(sprintf('INSERT issued to receipt: %.1f ms', $latency * 1000));
ok($node->poll_query_until('postgres',
	"SELECT status = 'delivered' FROM cortex_hook.delivery"), 'delivery recorded as delivered');

# Visible in pg_stat_activity, waiting on an extension wait event when idle.
is($node->safe_psql('postgres', q{SELECT backend_type || '|' || application_name || '|' || datname
	FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'}),
	'cortex_hook worker|cortex_hook worker|postgres', 'worker in pg_stat_activity');
if ($ENV{ASAN_OPTIONS})
{
	# the sanitizer pass must really run the server under AddressSanitizer
	my $wpid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'});
	like(slurp_file("/proc/$wpid/maps"), qr/libasan/, 'sanitizer pass: the worker runs with the ASan runtime');
}
ok($node->poll_query_until('postgres', q{SELECT wait_event_type = 'Extension' AND state = 'idle'
	FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'}), 'idle worker waits on an extension wait event');

# A rolled-back transaction sends nothing.
$node->safe_psql('postgres', q{BEGIN; INSERT INTO cortex_hook.access_request_event (event_type, data)
	VALUES ('RequestCreated', '{"entity": "rolledback"}'); ROLLBACK;});
sleep 1;
is(scalar @{ mock_requests($mock, 'rolledback') }, 0, 'a rolled-back insert sends nothing');

# 1,000 inserts in 1,000 transactions: all delivered, each once.
my $script = join('', map { "INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', '{\"entity\": \"many\", \"n\": $_}');\n" } 1 .. 1000);
$node->safe_psql('postgres', $script);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1000 FROM cortex_hook.delivery WHERE status = 'delivered' AND url LIKE '%/many/%'}),
	'1,000 single-row transactions all delivered');
my $many = mock_requests($mock, 'many');
my %keys = map { $_->{headers}{'Idempotency-Key'} => 1 } @$many;
is(scalar @$many, 1000, 'the mock received 1,000 requests');
is(scalar keys %keys, 1000, 'each delivery was sent once');

# SIGHUP: a new allowed_hosts applies without a restart.
$node->append_conf('postgresql.conf', "cortex_hook.allowed_hosts = 'api.getcortexapp.com'\n");
$node->reload;
sleep 1;
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data)
	VALUES ('RequestCreated', '{"entity": "reload"}')});
ok($node->poll_query_until('postgres', q{SELECT last_error LIKE 'host "127.0.0.1" is not in cortex_hook.allowed_hosts%'
	FROM cortex_hook.delivery WHERE url LIKE '%/reload/%' AND status = 'failed'}),
	'after SIGHUP the worker refuses a host no longer allowed');
$node->append_conf('postgresql.conf', "cortex_hook.allowed_hosts = '127.0.0.1'\n");
$node->reload;
sleep 1;
$node->safe_psql('postgres', q{SELECT cortex_hook.redeliver(id) FROM cortex_hook.delivery WHERE url LIKE '%/reload/%'});
ok($node->poll_query_until('postgres', q{SELECT status = 'delivered' FROM cortex_hook.delivery WHERE url LIKE '%/reload/%'}),
	'after another SIGHUP it delivers again');

# Retention: old delivered rows are pruned (in batches) when the worker starts.
$node->safe_psql('postgres', q{UPDATE cortex_hook.delivery SET created_at = now() - interval '8 days' WHERE url LIKE '%/many/%';
	UPDATE cortex_hook.invocation SET started_at = now() - interval '8 days' WHERE request_url LIKE '%/many/%'});

# SIGTERM: the worker exits within a second (and is started again).
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'});
my $before = time();
kill 'TERM', $pid;
wait_until(5, sub { !kill(0, $pid) });
my $gone = time() - $before;
cmp_ok($gone, '<', 1.0, sprintf('SIGTERM: worker exited in %.0f ms', $gone * 1000));
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker' AND pid <> $pid"),
	'worker started again');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM cortex_hook.delivery WHERE url LIKE '%/many/%'}),
	'old delivered deliveries pruned');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cortex_hook.invocation WHERE request_url LIKE '%/many/%'}),
	'0', 'old invocations pruned');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cortex_hook.delivery}), '2', 'recent deliveries kept');

$node->stop;
stop_mock($mock);
done_testing();
