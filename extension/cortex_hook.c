/*
 * cortex_hook.c
 *		Module entry point: settings, shared memory, the worker's wake-up at
 *		commit, and small helpers used by several files.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include <limits.h>
#include <signal.h>

#include "cortex_hook.h"
#include "http.h"
#include "worker.h"

PG_MODULE_MAGIC;

char	   *cortex_hook_database_name = NULL;
char	   *cortex_hook_allowed_hosts = NULL;
int			cortex_hook_max_in_flight = 32;
int			cortex_hook_poll_interval = 1000;
int			cortex_hook_log_retention = 7 * 24 * 3600;
int			cortex_hook_response_body_limit = 64 * 1024;
int			cortex_hook_max_body_size = 2 * 1024 * 1024;
char	   *cortex_hook_ca_file = NULL;

const char *const cortex_hook_event_types[NUM_EVENT_TYPES] = {
	"RequestCreated", "RequestApproved", "RequestRejected",
	"RequestGranted", "RequestExpired", "RequestFailed"
};

/* Shared state: where to find the worker's latch. */
typedef struct CortexHookShared
{
	slock_t		mutex;
	Latch	   *worker_latch;
	pid_t		worker_pid;
	Latch	   *launcher_latch;
	bool		database_gone;	/* DROP DATABASE of the worker's database */
} CortexHookShared;

static CortexHookShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_pending = false;

void		_PG_init(void);

static bool
check_allowed_hosts(char **newval, void **extra, GucSource source)
{
	char		errbuf[256];
	HostList   *list = hostlist_parse(*newval, errbuf, sizeof(errbuf));

	if (list == NULL)
	{
		GUC_check_errdetail("%s", errbuf);
		GUC_check_errhint("List host names, \"*\", \"*.domain\", IP addresses or CIDR ranges, separated by commas.");
		return false;
	}
	hostlist_free(list);
	return true;
}

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(CortexHookShared)));
}

static void
shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("cortex_hook", sizeof(CortexHookShared), &found);
	if (!found)
	{
		SpinLockInit(&shared->mutex);
		shared->worker_latch = NULL;
		shared->worker_pid = 0;
		shared->launcher_latch = NULL;
		shared->database_gone = false;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Wake the worker when a transaction that queued deliveries commits; a
 * rolled-back transaction queued nothing and wakes nothing.
 */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending && shared != NULL)
			{
				Latch	   *latch;

				SpinLockAcquire(&shared->mutex);
				latch = shared->worker_latch;
				SpinLockRelease(&shared->mutex);
				if (latch)
					SetLatch(latch);
			}
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			break;
		default:
			break;
	}
}

void
cortex_hook_wake_at_commit(void)
{
	wake_pending = true;
}

/*
 * The worker's process is known from start to exit (the launcher must not
 * start a second one); its latch is published only while it delivers, so
 * that commits do not wake a worker that has nothing to do.
 */
void
cortex_hook_worker_attach(void)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->worker_pid = MyProcPid;
	SpinLockRelease(&shared->mutex);
}

void
cortex_hook_worker_set_wakeable(bool wakeable)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	if (shared->worker_pid == MyProcPid)
		shared->worker_latch = wakeable ? MyLatch : NULL;
	SpinLockRelease(&shared->mutex);
}

void
cortex_hook_worker_detach(void)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	if (shared->worker_pid == MyProcPid)
	{
		shared->worker_latch = NULL;
		shared->worker_pid = 0;
	}
	SpinLockRelease(&shared->mutex);
}

bool
cortex_hook_worker_running(void)
{
	bool		running;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	running = shared->worker_pid != 0;
	SpinLockRelease(&shared->mutex);
	return running;
}

void
cortex_hook_launcher_attach(void)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->launcher_latch = MyLatch;
	SpinLockRelease(&shared->mutex);
}

/*
 * DROP DATABASE of the worker's database is starting (gone = true: make the
 * worker leave, keep the launcher from starting it) or is over, or a database
 * of that name was created (false: the launcher looks again).
 */
void
cortex_hook_worker_database_gone(bool gone)
{
	pid_t		pid;
	Latch	   *launcher;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->database_gone = gone;
	pid = shared->worker_pid;
	launcher = shared->launcher_latch;
	SpinLockRelease(&shared->mutex);
	if (gone && pid != 0)
		kill(pid, SIGTERM);
	if (launcher)
		SetLatch(launcher);
}

bool
cortex_hook_worker_database_is_gone(void)
{
	bool		gone;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	gone = shared->database_gone;
	SpinLockRelease(&shared->mutex);
	return gone;
}

PG_FUNCTION_INFO_V1(cortex_hook_wake_worker);

/* SQL: wake the worker at commit (used by redeliver()). */
Datum
cortex_hook_wake_worker(PG_FUNCTION_ARGS)
{
	cortex_hook_wake_at_commit();
	PG_RETURN_VOID();
}

void
_PG_init(void)
{
	DefineCustomStringVariable("cortex_hook.database_name",
							   "Database in which the cortex_hook worker delivers.",
							   NULL, &cortex_hook_database_name, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("cortex_hook.allowed_hosts",
							   "Hosts that webhooks may send to.",
							   "Host names, \"*\", \"*.domain\", IP addresses or CIDR ranges, comma-separated.",
							   &cortex_hook_allowed_hosts,
							   "api.getcortexapp.com,api.eu.cortex.io",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_allowed_hosts, NULL, NULL);
	DefineCustomIntVariable("cortex_hook.max_in_flight",
							"Largest number of HTTP requests in flight per worker or deliver() call.",
							NULL, &cortex_hook_max_in_flight, 32, 1, 1024,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("cortex_hook.poll_interval",
							"How often the worker looks for due retries.",
							NULL, &cortex_hook_poll_interval, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("cortex_hook.log_retention",
							"How long delivered and failed deliveries and invocations are kept.",
							NULL, &cortex_hook_log_retention, 7 * 24 * 3600, 60, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("cortex_hook.response_body_limit",
							"How much of each response body is kept in the invocation log.",
							NULL, &cortex_hook_response_body_limit, 64 * 1024, 0, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("cortex_hook.max_body_size",
							"Largest rendered body that is sent.",
							NULL, &cortex_hook_max_body_size, 2 * 1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomStringVariable("cortex_hook.ca_file",
							   "Extra CA bundle trusted for https, besides the system CAs.",
							   NULL, &cortex_hook_ca_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	MarkGUCPrefixReserved("cortex_hook");

	RegisterXactCallback(xact_callback, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;

	cortex_hook_worker_register();
}

/* ---------------------------------------------------------------------
 * Helpers shared by several files
 * --------------------------------------------------------------------- */

int
cortex_hook_event_type_index(const char *label)
{
	for (int i = 0; i < NUM_EVENT_TYPES; i++)
		if (strcmp(label, cortex_hook_event_types[i]) == 0)
			return i;
	return -1;
}

/* "2026-12-03T15:29:52.123456Z" */
char *
cortex_hook_format_time(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	/* no time zone pointer: timestamp2tm() then gives UTC, not local time */
	if (TIMESTAMP_NOT_FINITE(t) ||
		timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup(TIMESTAMP_IS_NOBEGIN(t) ? "-infinity" : "infinity");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

static void
push_key(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* The event as jsonb, for filter conditions: {event_type, event_time, event_id, data}. */
Jsonb *
cortex_hook_build_event(const char *event_type, TimestampTz event_time,
						bool has_id, int64 event_id, Jsonb *data)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_key(&state, "event_type");
	v.type = jbvString;
	v.val.string.val = (char *) event_type;
	v.val.string.len = strlen(event_type);
	pushJsonbValue(&state, WJB_VALUE, &v);
	push_key(&state, "event_time");
	v.val.string.val = cortex_hook_format_time(event_time);
	v.val.string.len = strlen(v.val.string.val);
	pushJsonbValue(&state, WJB_VALUE, &v);
	push_key(&state, "event_id");
	if (has_id)
	{
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(event_id);
	}
	else
		v.type = jbvNull;
	pushJsonbValue(&state, WJB_VALUE, &v);
	push_key(&state, "data");
	v.type = jbvBinary;
	v.val.binary.data = &data->root;
	v.val.binary.len = VARSIZE(data) - VARHDRSZ;
	pushJsonbValue(&state, WJB_VALUE, &v);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* SPEC §7: which header values never leave the webhook row. */
bool
cortex_hook_header_is_secret(const char *name)
{
	static const char *const exact[] = {
		"authorization", "proxy-authorization", "cookie", "x-api-key"
	};
	static const char *const parts[] = {
		"token", "secret", "key", "password", "auth"
	};
	char		lower[256];
	size_t		n = strlen(name);

	if (n >= sizeof(lower))
		return true;
	for (size_t i = 0; i <= n; i++)
		lower[i] = pg_ascii_tolower((unsigned char) name[i]);
	for (int i = 0; i < lengthof(exact); i++)
		if (strcmp(lower, exact[i]) == 0)
			return true;
	for (int i = 0; i < lengthof(parts); i++)
		if (strstr(lower, parts[i]) != NULL)
			return true;
	return false;
}
