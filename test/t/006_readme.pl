# Every SQL example in README.md runs as written, in order, against a server
# with the worker, the Cortex host pointed at the mock server.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_node('readme', "cortex_hook.database_name = 'postgres'\n");
$node->start;

my $readme = slurp_file("$FindBin::Bin/../../README.md");
my @blocks = $readme =~ /^```sql\n(.*?)^```/msg;
cmp_ok(scalar @blocks, '>=', 10, scalar(@blocks) . ' SQL examples found');

my $n = 0;
for my $sql (@blocks)
{
	$n++;
	$sql =~ s{https://api\.getcortexapp\.com}{http://127.0.0.1:$mock->{port}}g;
	$sql =~ s{<BASE64-API-KEY>}{test-token}g;
	my ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
	my ($first) = $sql =~ /^\s*(.*)$/m;
	is($rc, 0, "example $n runs: $first") or diag("$sql\n$err");
	like($out, qr/^t\|200\|\|/m, 'the test send succeeds') if $sql =~ /test_webhook\('Cortex'\)/;
}

# what the examples did
ok($node->poll_query_until('postgres', q{SELECT count(*) >= 1 FROM cortex_hook.delivery WHERE status = 'delivered'}),
	'the example event was delivered by the worker');
is(scalar(grep { $_->{entity} eq 'apono-access-requests' } @{ mock_requests($mock) }) >= 2, 1,
	'the mock received the test and the event');

$node->stop;
stop_mock($mock);
done_testing();
