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
 * The worker is started by the "cortex_hook launcher", a static background
 * worker connected to no database: it starts the worker as a dynamic
 * background worker once cortex_hook.database_name exists, starts it again
 * when it exits, and otherwise waits quietly (one LOG line) -- no crash loop
 * when the database does not exist.  DROP DATABASE waits for backends
 * connected to the database, so a ProcessUtility hook asks the worker to leave
 * first and keeps the launcher from starting it again until the drop is over.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
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
PGDLLEXPORT void cortex_hook_launcher_main(Datum arg);

static void
fill_worker(BackgroundWorker *w, const char *function, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(w->bgw_library_name, BGW_MAXLEN, "cortex_hook");
	snprintf(w->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(w->bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(w->bgw_type, BGW_MAXLEN, "%s", name);
}

/* From _PG_init, when preloaded: the launcher and the DROP DATABASE hook. */
void
cortex_hook_worker_register(void)
{
	BackgroundWorker launcher;

	fill_worker(&launcher, "cortex_hook_launcher_main", "cortex_hook launcher");
	launcher.bgw_restart_time = 1;
	RegisterBackgroundWorker(&launcher);

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
	volatile bool dropping = IsA(stmt, DropdbStmt) &&
		strcmp(((DropdbStmt *) stmt)->dbname, cortex_hook_database_name) == 0;

	if (dropping)
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
	PG_FINALLY();
	{
		/* dropped or not, the launcher decides again from pg_database */
		if (dropping)
			cortex_hook_worker_database_gone(false);
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

static void
detach_at_exit(int code, Datum arg)
{
	cortex_hook_worker_detach();
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

/* One turn of the loop, in one transaction: record results, claim more. */
typedef struct CycleArgs
{
	Sender	   *sender;
	int			claim_max;
	int			claimed;
	int			recorded;
	bool		extension_gone;
} CycleArgs;

static int
do_cycle(void *arg)
{
	CycleArgs  *a = arg;

	if (!OidIsValid(get_extension_oid("cortex_hook", true)))
	{
		a->extension_gone = true;
		return 0;
	}
	a->recorded = sender_record_all(a->sender);
	if (a->claim_max > 0)
		a->claimed = sender_claim(a->sender, a->claim_max);
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

/* After a failed turn: record finished attempts one by one, or drop them. */
static void
record_one_by_one(Sender *s)
{
	while (sender_done_count(s) > 0)
	{
		if (in_transaction(do_record_first, s, "recording a result", NULL))
			sender_forget_done(s, 1);
		else
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
	bool		prune_backlog = false;
	bool		claim_now = true;
	int			recovered = 0;

	cortex_hook_worker_set_wakeable(true);

	if (in_transaction(do_recover_all, NULL, "recovering leases", &recovered) && recovered > 0)
		ereport(LOG,
				(errmsg("cortex_hook worker: %d deliveries that were in flight before a restart are pending again",
						recovered)));

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		until_poll;
		int			done = sender_done_count(s);
		int			rc;
		CycleArgs	a = {s, 0, 0, 0, false};

		CHECK_FOR_INTERRUPTS();
		reload_if_asked();

		if (TimestampDifferenceExceeds(last_claim, now, cortex_hook_poll_interval))
			claim_now = true;
		if (claim_now)
			a.claim_max = sender_free_slots(s);
		if (done > 0 || a.claim_max > 0)
		{
			if (in_transaction(do_cycle, &a, "recording results and claiming deliveries", NULL))
				sender_forget_done(s, a.recorded);
			else
			{
				record_one_by_one(s);
				a.claimed = 0;
			}
			if (a.extension_gone)
				break;
			if (a.claim_max > 0)
			{
				last_claim = now;
				/* a full claim means more may be due right away */
				claim_now = a.claimed == a.claim_max;
			}
			if (done > 0)
				pgstat_report_stat(false);
		}

		until_poll = cortex_hook_poll_interval -
			(long) ((GetCurrentTimestamp() - last_claim) / 1000);
		if ((claim_now && sender_free_slots(s) > 0) || prune_backlog)
			until_poll = 0;
		rc = sender_wait(s, Max(until_poll, 0), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			claim_now = true;

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
		/* one batch a turn while there is a backlog, else once a minute */
		if (prune_backlog || TimestampDifferenceExceeds(last_prune, now, PRUNE_EVERY_MS))
		{
			int			n = 0;

			if (!in_transaction(do_prune, NULL, "pruning old rows", &n))
				n = 0;
			prune_backlog = n >= PRUNE_BATCH;
			last_prune = now;
			pgstat_report_stat(false);
		}
	}
	cortex_hook_worker_set_wakeable(false);
	sender_destroy(s);
}

void
cortex_hook_worker_main(Datum arg)
{
	bool		logged_missing = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(cortex_hook_database_name, NULL, 0);
	pgstat_report_appname("cortex_hook worker");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "cortex_hook worker", PGC_USERSET, PGC_S_OVERRIDE);
	cortex_hook_worker_attach();
	before_shmem_exit(detach_at_exit, (Datum) 0);

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

/*
 * Does cortex_hook.database_name exist?  Without a database only shared
 * catalogs can be read, and only by heap scan (as the autovacuum launcher
 * reads pg_database): opening an index would need pg_class.
 */
static bool
database_exists(void)
{
	bool		exists = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!exists && (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		exists = strcmp(NameStr(db->datname), cortex_hook_database_name) == 0 &&
			db->datconnlimit != DATCONNLIMIT_INVALID_DB;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return exists;
}

/*
 * The launcher: connected to no database (it reads only the shared catalog
 * pg_database), it keeps one worker running in cortex_hook.database_name.
 */
void
cortex_hook_launcher_main(Datum arg)
{
	BackgroundWorkerHandle *handle = NULL;
	TimestampTz last_exit = 0;
	bool		logged_missing = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("cortex_hook launcher");
	cortex_hook_launcher_attach();

	for (;;)
	{
		pid_t		pid;
		bool		running;

		CHECK_FOR_INTERRUPTS();
		reload_if_asked();

		running = cortex_hook_worker_running() ||
			(handle != NULL && GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED);
		if (!running)
		{
			if (handle)
			{
				pfree(handle);
				handle = NULL;
				last_exit = GetCurrentTimestamp();
			}
			if (cortex_hook_worker_database_is_gone())
				;				/* DROP DATABASE in progress: stay away */
			else if (!database_exists())
			{
				if (!logged_missing)
					ereport(LOG,
							(errmsg("cortex_hook launcher: database \"%s\" does not exist; waiting for it to be created",
									cortex_hook_database_name),
							 errhint("Create it, or set cortex_hook.database_name to a database with the extension.")));
				logged_missing = true;
			}
			else if (TimestampDifferenceExceeds(last_exit, GetCurrentTimestamp(), 1000))
			{
				BackgroundWorker worker;

				logged_missing = false;
				fill_worker(&worker, "cortex_hook_worker_main", "cortex_hook worker");
				worker.bgw_restart_time = BGW_NEVER_RESTART;
				worker.bgw_notify_pid = MyProcPid;
				if (!RegisterDynamicBackgroundWorker(&worker, &handle))
				{
					ereport(WARNING,
							(errmsg("cortex_hook launcher: could not start the worker"),
							 errhint("Raise max_worker_processes.")));
					handle = NULL;
					last_exit = GetCurrentTimestamp();
				}
			}
		}
		nap(Min(cortex_hook_poll_interval, 1000));
	}
}
