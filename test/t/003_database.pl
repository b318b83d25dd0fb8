# The worker's database: DROP DATABASE is not blocked by the worker, and a
# database created again gets deliveries again, with no restart.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $mock = start_mock();
my $node = new_node('database', "cortex_hook.database_name = 'hookdb'\n");
$node->start;
my $setup = cortex_setup_sql($mock);

# The database does not exist yet: the launcher waits quietly, no crash loop.
$node->wait_for_log(qr/database "hookdb" does not exist; waiting for it to be created/);
sleep 2;
my $log = slurp_file($node->logfile);
is(scalar(() = $log =~ /does not exist; waiting/g), 1, 'one LOG line while the database is missing');
unlike($log, qr/FATAL|exited with exit code/, 'no FATAL, no restarts');

$node->safe_psql('postgres', 'CREATE DATABASE hookdb');
$node->safe_psql('hookdb', $setup);
$node->safe_psql('hookdb', q{INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', '{"entity": "one"}')});
ok($node->poll_query_until('hookdb', q{SELECT status = 'delivered' FROM cortex_hook.delivery}), 'delivering in hookdb');

my $t0 = time();
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE hookdb');
my $took = time() - $t0;
is($rc, 0, 'DROP DATABASE of the worker\'s database succeeds') or diag($err);
cmp_ok($took, '<', 4, sprintf('and is not held up by the worker (%.2f s)', $took));
ok(wait_until(10, sub { slurp_file($node->logfile) =~ /does not exist; waiting(.|\n)*does not exist; waiting/ }),
	'the launcher waits for the database again');

$node->safe_psql('postgres', 'CREATE DATABASE hookdb');
$node->safe_psql('hookdb', $setup);
$node->safe_psql('hookdb', q{INSERT INTO cortex_hook.access_request_event (event_type, data) VALUES ('RequestCreated', '{"entity": "two"}')});
ok($node->poll_query_until('hookdb', q{SELECT status = 'delivered' FROM cortex_hook.delivery}),
	'a database created again gets deliveries, no restart needed');
is(scalar @{ mock_requests($mock, 'two') }, 1, 'received once');

$node->stop;
stop_mock($mock);
done_testing();
