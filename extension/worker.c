/*
 * worker.c
 *		The "cortex_hook worker" background worker.
 *
 * The skeleton is PostgreSQL's worker_spi: a latch loop with short
 * transactions.  The loop keeps up to cortex_hook.max_in_flight requests in
 * flight at all times; it claims more when woken at commit by a backend that
 * queued deliveries, when a poll interval has passed (due retries), or when
 * the last claim was full.  Finished requests are recorded at once, all in
 * one transaction; should that fail, each is retried in its own transaction
 * so that one bad result never causes the others to be sent again.
 *
 * DROP DATABASE waits for backends connected to the database, so a
 * ProcessUtility hook asks the worker to leave first and to stay away until
 * a database of that name is created again.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <signal.h>

#include "cortex_hook.h"
#include "delivery.h"
#include "worker.h"

#define LEASE_CHECK_MS		10000
#define PRUNE_EVERY_MS		60000
#define PRUNE_BATCH			1000

static ProcessUtility_hook_type prev_process_utility = NULL;

PGDLLEXPORT void cortex_hook_worker_main(Datum arg);

void
cortex_hook_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "cortex_hook");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "cortex_hook_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "cortex_hook worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "cortex_hook worker");
	RegisterBackgroundWorker(&worker);

	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = cortex_hook_process_utility;
}

/*
 * Let DROP DATABASE of the worker's database through: ask the worker to
 * leave and to wait (unconnected) until the database exists again.
 */
void
cortex_hook_process_utility(PlannedStmt *pstmt, const char *queryString,
							bool readOnlyTree, ProcessUtilityContext context,
							ParamListInfo params, QueryEnvironment *queryEnv,
							DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, DropdbStmt) &&
		strcmp(((DropdbStmt *) stmt)->dbname, cortex_hook_database_name) == 0)
		cortex_hook_worker_database_gone(true);

	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
								 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		/* the database is still there: let the worker come back */
		if (IsA(stmt, DropdbStmt) &&
			strcmp(((DropdbStmt *) stmt)->dbname, cortex_hook_database_name) == 0)
			cortex_hook_worker_database_gone(false);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (IsA(stmt, CreatedbStmt) &&
		strcmp(((CreatedbStmt *) stmt)->dbname, cortex_hook_database_name) == 0)
		cortex_hook_worker_database_gone(false);
}

static void
reload_if_asked(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

static bool
extension_present(void)
{
	bool		present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("cortex_hook", true));
	CommitTransactionCommand();
	return present;
}

/* Sleep on the latch until woken or timeout; handle reloads. */
static void
nap(long ms)
{
	int			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   ms, PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	reload_if_asked();
}

/* Run fn in its own transaction; on error, log it and return false. */
static bool
in_transaction(int (*fn) (void *), void *arg, const char *activity, int *result)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	PG_TRY();
	{
		int			r = fn(arg);

		if (result)
			*result = r;
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

typedef struct ClaimArgs
{
	Sender	   *sender;
	int			max;
	bool		extension_gone;
} ClaimArgs;

static int
do_claim(void *arg)
{
	ClaimArgs  *a = arg;

	if (!OidIsValid(get_extension_oid("cortex_hook", true)))
	{
		a->extension_gone = true;
		return 0;
	}
	return sender_claim(a->sender, a->max);
}

static int
do_record_all(void *arg)
{
	sender_record_all((Sender *) arg);
	return 0;
}

static int
do_record_first(void *arg)
{
	sender_record_first((Sender *) arg);
	return 0;
}

static int
do_recover_all(void *arg)
{
	return sender_recover_leases(true);
}

static int
do_recover_expired(void *arg)
{
	return sender_recover_leases(false);
}

static int
do_prune(void *arg)
{
	return sender_prune(PRUNE_BATCH);
}

/* Record finished attempts: all together, or one by one after an error. */
static void
record_results(Sender *s)
{
	if (sender_done_count(s) == 0)
		return;
	if (in_transaction(do_record_all, s, "recording results", NULL))
		return;
	while (sender_done_count(s) > 0)
	{
		if (!in_transaction(do_record_first, s, "recording a result", NULL))
			sender_drop_first(s);
	}
}

/* Deliver until the extension disappears (returns) or the worker is stopped. */
static void
deliver_loop(void)
{
	Sender	   *s = sender_create(TopMemoryContext);
	TimestampTz last_claim = 0;
	TimestampTz last_lease_check = GetCurrentTimestamp();
	TimestampTz last_prune = 0;
	bool		claim_now = true;
	int			recovered = 0;

	if (in_transaction(do_recover_all, NULL, "recovering leases", &recovered) && recovered > 0)
		ereport(LOG,
				(errmsg("cortex_hook worker: %d deliveries that were in flight before a restart are pending again",
						recovered)));

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		until_poll;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		reload_if_asked();

		if (TimestampDifferenceExceeds(last_claim, now, cortex_hook_poll_interval))
			claim_now = true;
		if (claim_now && sender_free_slots(s) > 0)
		{
			ClaimArgs	a = {s, sender_free_slots(s), false};
			int			got = 0;

			if (!in_transaction(do_claim, &a, "claiming deliveries", &got))
				got = 0;
			if (a.extension_gone)
				break;
			last_claim = now;
			/* a full claim means more may be due right away */
			claim_now = got == a.max;
		}

		until_poll = cortex_hook_poll_interval -
			(long) ((GetCurrentTimestamp() - last_claim) / 1000);
		if (claim_now && sender_free_slots(s) > 0)
			until_poll = 0;
		rc = sender_wait(s, Max(until_poll, 0), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			claim_now = true;

		if (sender_done_count(s) > 0)
		{
			record_results(s);
			pgstat_report_stat(false);
		}

		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_lease_check, now, LEASE_CHECK_MS))
		{
			int			n = 0;

			last_lease_check = now;
			if (in_transaction(do_recover_expired, NULL, "recovering expired leases", &n) && n > 0)
			{
				ereport(LOG, (errmsg("cortex_hook worker: %d deliveries whose lease expired are pending again", n)));
				claim_now = true;
			}
		}
		if (TimestampDifferenceExceeds(last_prune, now, PRUNE_EVERY_MS))
		{
			int			n = PRUNE_BATCH;

			/* a few batches at a time, so deliveries never wait long */
			for (int i = 0; i < 10 && n >= PRUNE_BATCH; i++)
				if (!in_transaction(do_prune, NULL, "pruning old rows", &n))
					break;
			last_prune = now;
			pgstat_report_stat(false);
		}
	}
	sender_destroy(s);
}

void
cortex_hook_worker_main(Datum arg)
{
	bool		logged_missing = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* the database was dropped: wait, unconnected, until it is back */
	while (cortex_hook_worker_database_is_gone())
	{
		cortex_hook_worker_attach();
		if (!logged_missing)
			ereport(LOG,
					(errmsg("cortex_hook worker: database \"%s\" was dropped; waiting for it to be created again",
							cortex_hook_database_name)));
		logged_missing = true;
		nap(cortex_hook_poll_interval);
	}

	BackgroundWorkerInitializeConnection(cortex_hook_database_name, NULL, 0);
	pgstat_report_appname("cortex_hook worker");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "cortex_hook worker", PGC_USERSET, PGC_S_OVERRIDE);
	cortex_hook_worker_attach();
	before_shmem_exit((pg_on_exit_callback) cortex_hook_worker_detach, (Datum) 0);

	for (;;)
	{
		if (extension_present())
		{
			ereport(LOG,
					(errmsg("cortex_hook worker started in database \"%s\"", cortex_hook_database_name)));
			logged_missing = false;
			deliver_loop();
		}
		if (!logged_missing)
			ereport(LOG,
					(errmsg("cortex_hook worker: extension cortex_hook is not installed in database \"%s\"; checking every cortex_hook.poll_interval",
							cortex_hook_database_name),
					 errhint("Run CREATE EXTENSION cortex_hook in that database.")));
		logged_missing = true;
		pgstat_report_activity(STATE_IDLE, NULL);
		nap(cortex_hook_poll_interval);
	}
}
