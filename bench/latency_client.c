/*
 * latency_client.c
 *		Inserts N access-request events, one per transaction, SPACING_MS
 *		apart, and prints "n sent_at acked_at" (Unix seconds) for each: when
 *		the INSERT was sent and when its commit was acknowledged.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[1]);
	int			n = atoi(argv[2]);
	int			spacing_ms = atoi(argv[3]);
	const char *sql = "INSERT INTO cortex_hook.access_request_event (event_type, data) "
		"SELECT 'RequestCreated', cortex_hook.mock_event()->'data' || jsonb_build_object('n', $1::int)";

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	for (int i = 1; i <= n; i++)
	{
		char		num[16];
		const char *params[1] = {num};
		double		sent,
					acked;
		PGresult   *res;

		snprintf(num, sizeof(num), "%d", i);
		sent = now();
		res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
		acked = now();
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "%s", PQerrorMessage(conn));
			return 1;
		}
		PQclear(res);
		printf("%d %.6f %.6f\n", i, sent, acked);
		usleep(spacing_ms * 1000);
	}
	PQfinish(conn);
	return 0;
}
