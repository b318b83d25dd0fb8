# Helpers for cortex_hook's TAP tests: a preloaded node and the mock Cortex server.
package CortexHookTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

our @EXPORT = qw(new_node start_mock stop_mock mock_get mock_post mock_requests
  wait_until json_decode cortex_setup_sql);

my $testdir = dirname(__FILE__);
my $json = JSON::PP->new->canonical;

sub json_decode { return $json->decode($_[0]); }

# A node with cortex_hook preloaded; extra settings appended.
sub new_node
{
	my ($name, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cortex_hook'
cortex_hook.allowed_hosts = '127.0.0.1'
cortex_hook.poll_interval = '200ms'
max_worker_processes = 16
log_min_messages = log
} . ($extra // ''));
	return $node;
}

# SQL that creates the extension and the webhook of the Cortex guide, pointed
# at the mock (entity from data.entity, RequestCreated, no rate limit).
sub cortex_setup_sql
{
	my ($mock) = @_;
	my $base = "http://127.0.0.1:$mock->{port}/api/v1/catalog";
	return qq{
CREATE EXTENSION cortex_hook;
INSERT INTO cortex_hook.webhook (name, url, headers, triggers, rate_limit_per_minute)
VALUES ('Cortex', '$base/{{data.entity}}/custom-events', '{"Authorization": "Bearer test-token"}',
        '{RequestCreated}', NULL);
};
}

# Start the mock on a port (0: any free one); returns { port, pid, tls }.
sub start_mock
{
	my ($port, @extra) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $portfile = "$dir/port";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/log");
		open(STDERR, '>&', \*STDOUT);
		exec('python3', "$testdir/../mock_cortex.py", '--port', $port // 0,
			'--port-file', $portfile, @extra);
		die "exec: $!";
	}
	for (1 .. 200)
	{
		last if -s $portfile;
		usleep(50_000);
	}
	my $p = PostgreSQL::Test::Utils::slurp_file($portfile);
	return { port => $p, pid => $pid, tls => scalar grep { $_ eq '--tls-cert' } @extra };
}

sub stop_mock
{
	my ($mock) = @_;
	kill 'TERM', $mock->{pid};
	waitpid($mock->{pid}, 0);
}

sub mock_get
{
	my ($mock, $path) = @_;
	# HTTP::Tiny needs IO::Socket::SSL for https; curl is at hand
	if ($mock->{tls})
	{
		my $out = `curl -sfk https://127.0.0.1:$mock->{port}$path`;
		die "mock GET $path: curl exit $?" if $?;
		return $json->decode($out);
	}
	my $r = HTTP::Tiny->new->get("http://127.0.0.1:$mock->{port}$path");
	die "mock GET $path: $r->{status}" unless $r->{success};
	return $json->decode($r->{content});
}

sub mock_post
{
	my ($mock, $path, $body) = @_;
	my $r = HTTP::Tiny->new->post("http://127.0.0.1:$mock->{port}$path",
		{ content => $json->encode($body // {}) });
	die "mock POST $path: $r->{status}" unless $r->{success};
	return $json->decode($r->{content});
}

# Requests the mock received for an entity.
sub mock_requests
{
	my ($mock, $entity) = @_;
	return mock_get($mock, "/_mock/requests" . (defined $entity ? "?entity=$entity" : ''));
}

# Poll a Perl condition until true or timeout (seconds); returns the result.
sub wait_until
{
	my ($timeout, $cond) = @_;
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		my $v = $cond->();
		return $v if $v;
		usleep(50_000);
	}
	return $cond->();
}

1;
