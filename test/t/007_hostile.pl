# Hostile endpoints: a body dripping one byte a second, a malformed status
# line, a 100 MB body, 10,000 headers, a reset mid-response, a redirect to
# another host, TLS endpoints with a certificate of an unknown CA and with a
# self-signed one.  Each ends as SPEC §5.2 says, with an error a person can
# act on, and memory stays bounded.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;

use CortexHookTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $other = start_mock();
my $node = new_node('hostile', "cortex_hook.database_name = 'postgres'\n");
$node->start;
my $base = "http://127.0.0.1:$mock->{port}/api/v1/catalog";
$node->safe_psql('postgres', 'CREATE EXTENSION cortex_hook');

# one webhook per entity, one attempt each, short timeout
sub hook
{
	my ($entity, $url) = @_;
	$url //= "$base/$entity/custom-events";
	$node->safe_psql('postgres', qq{INSERT INTO cortex_hook.webhook (name, url, headers, triggers, timeout_ms, max_attempts, rate_limit_per_minute)
		VALUES ('$entity', '$url', '{"Authorization": "Bearer test-token"}', '{RequestCreated}', 2000, 1, NULL)});
}
sub outcome
{
	my ($entity) = @_;
	$node->poll_query_until('postgres', qq{SELECT status IN ('delivered', 'failed') FROM cortex_hook.delivery d
		JOIN cortex_hook.webhook w ON w.id = d.webhook_id WHERE w.name = '$entity'});
	return $node->safe_psql('postgres', qq{SELECT d.status, coalesce(i.response_status::text, '-'), coalesce(i.error, ''),
		length(coalesce(i.response_body, '')), coalesce((SELECT count(*) FROM jsonb_object_keys(i.response_headers)), 0)
		FROM cortex_hook.delivery d JOIN cortex_hook.webhook w ON w.id = d.webhook_id
		JOIN cortex_hook.invocation i ON i.delivery_id = d.id WHERE w.name = '$entity'});
}

mock_post($mock, '/_mock/script', { entity => $_->[0], %{ $_->[1] } }) for
  ['drip', { drip => JSON::PP::true }],
  ['garbage', { garbage => JSON::PP::true }],
  ['huge', { huge_bytes => 100_000_000 }],
  ['headers', { many_headers => 10000 }],
  ['reset', { reset_mid_body => JSON::PP::true }],
  ['moved', { fail => 1, redirect => "http://127.0.0.1:$other->{port}/api/v1/catalog/elsewhere/custom-events" }];
hook($_) for qw(drip garbage huge headers reset moved);

# a TLS endpoint whose certificate is signed by a CA nobody trusts yet
my $dir = PostgreSQL::Test::Utils::tempdir();
system_or_bail('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-subj', '/CN=cortex_hook test CA', '-keyout', "$dir/ca.key", '-out', "$dir/ca.pem");
system_or_bail('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
	'-keyout', "$dir/srv.key", '-out', "$dir/srv.csr");
append_to_file("$dir/ext.cnf", "subjectAltName=IP:127.0.0.1\n");
system_or_bail('openssl', 'x509', '-req', '-in', "$dir/srv.csr", '-CA', "$dir/ca.pem", '-CAkey', "$dir/ca.key",
	'-CAcreateserial', '-days', '2', '-extfile', "$dir/ext.cnf", '-out', "$dir/srv.pem");
append_to_file("$dir/full.pem", slurp_file("$dir/srv.pem") . slurp_file("$dir/srv.key"));
my $tls = start_mock(0, '--tls-cert', "$dir/full.pem");
hook('tls', "https://127.0.0.1:$tls->{port}/api/v1/catalog/tls/custom-events");
# and one whose certificate is self-signed: its own issuer
system_or_bail('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
	'-keyout', "$dir/self.key", '-out', "$dir/self.pem");
append_to_file("$dir/self-full.pem", slurp_file("$dir/self.pem") . slurp_file("$dir/self.key"));
my $self = start_mock(0, '--tls-cert', "$dir/self-full.pem");
hook('selfsigned', "https://127.0.0.1:$self->{port}/api/v1/catalog/selfsigned/custom-events");

my $wpid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'cortex_hook worker'});
$node->safe_psql('postgres', q{INSERT INTO cortex_hook.access_request_event (event_type, data) SELECT 'RequestCreated', cortex_hook.mock_event()->'data'});

like(outcome('drip'), qr/^failed\|200\|timed out after 2000 ms receiving the response \(dns \d+ ms, .*first response byte received\)\|/,
	'a body dripping one byte a second: the timeout holds, and says where the time went');
like(outcome('garbage'), qr/^failed\|-\|.*(Unsupported|Weird|weird|version|HTTP)/i, 'a malformed status line: a transport error');
like(outcome('huge'), qr/^delivered\|200\|response body truncated at cortex_hook.response_body_limit \(65536 bytes\)\|65536\|/,
	'a 100 MB body: delivered, 64 kB of it kept');
like(outcome('headers'), qr/^failed\|200\|.*Too large response headers.*\|0\|256$/,
	'10,000 headers (300 kB): refused by libcurl as a transport error, 256 kept in the log');
like(outcome('reset'), qr/^failed\|200\|.*(reset|Recv failure|transfer closed)/i, 'a reset mid-response: a transport error');
like(outcome('moved'), qr/^failed\|302\|\|/, 'a redirect: failed, not followed');
is(scalar @{ mock_requests($other) }, 0, 'nothing was sent to the redirect target');
like(outcome('tls'), qr/^failed\|-\|.*SSL certificate problem: (self[- ]signed certificate in certificate chain|unable to get local issuer certificate)/,
	'a certificate of an unknown CA: a TLS error');
like(outcome('selfsigned'), qr/^failed\|-\|.*SSL certificate problem: self[- ]signed certificate\|/,
	'a self-signed certificate: a TLS error');
is(@{ mock_requests($tls) } + @{ mock_requests($self) }, 0, 'no request reached either TLS endpoint');

# Under AddressSanitizer (the sanitizer pass) freed memory is held in its
# quarantine (up to 256 MB) and every allocation has a shadow: a looser bound.
my $anon = `grep RssAnon /proc/$wpid/status` =~ /(\d+)/ ? $1 : 0;
my $bound = $ENV{ASAN_OPTIONS} ? 300_000 : 50_000;
cmp_ok($anon, '<', $bound, "worker private memory stays bounded ($anon kB)");

# name the CA and the self-signed certificate in cortex_hook.ca_file: both
# endpoints are accepted
append_to_file("$dir/bundle.pem", slurp_file("$dir/ca.pem") . slurp_file("$dir/self.pem"));
$node->append_conf('postgresql.conf', "cortex_hook.ca_file = '$dir/bundle.pem'\n");
$node->reload;
sleep 1;
$node->safe_psql('postgres', q{SELECT cortex_hook.redeliver(d.id) FROM cortex_hook.delivery d
	JOIN cortex_hook.webhook w ON w.id = d.webhook_id WHERE w.name IN ('tls', 'selfsigned')});
ok($node->poll_query_until('postgres', q{SELECT bool_and(d.status = 'delivered') FROM cortex_hook.delivery d
	JOIN cortex_hook.webhook w ON w.id = d.webhook_id WHERE w.name IN ('tls', 'selfsigned')}),
	'named in cortex_hook.ca_file: both delivered over TLS');
is(scalar @{ mock_requests($tls) } . ' ' . scalar @{ mock_requests($self) }, '1 1', 'each TLS endpoint received its request');

$node->stop;
stop_mock($_) for ($mock, $other, $tls, $self);
done_testing();
