/*
 * delivery.c
 *		Claim due deliveries, send them with the HTTP client, record each
 *		attempt.  One core for the background worker (which commits between
 *		steps and holds no transaction during HTTP) and for deliver() /
 *		test_webhook() (which run in the caller's transaction).  preview()
 *		lives here too because it builds the same request.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/hmac.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <math.h>
#include <time.h>

#include "context.h"
#include "cortex_hook.h"
#include "delivery.h"
#include "dispatch.h"
#include "http.h"

#define MAX_RETRY_DELAY_S	3600
#define LEASE_MARGIN_MS		60000

/* One HTTP attempt in progress or waiting to be recorded. */
typedef struct Job
{
	MemoryContext cxt;
	int64		delivery_id;	/* 0 for a test */
	int64		webhook_id;
	int			attempt;		/* number of this attempt, from 1 */
	int			budget_start;
	int			max_attempts;
	char	   *method;
	char	   *url;
	text	   *body;
	Jsonb	   *log_headers;	/* request headers as logged: secrets redacted */
	TimestampTz started_at;
	HttpRequest *req;
} Job;

/* Token bucket per webhook (SPEC §5.3). */
typedef struct Bucket
{
	int64		webhook_id;		/* hash key */
	int			rate;			/* per minute */
	double		tokens;
	TimestampTz refilled_at;
	TimestampTz next_slot;		/* last time handed to a waiting delivery */
} Bucket;

struct Sender
{
	MemoryContext cxt;
	HttpClient *client;
	HostList   *hosts;
	char	   *hosts_spec;		/* what hosts was parsed from */
	char	   *ca_file;
	Job		  **done;			/* finished, to be recorded */
	int			ndone;
	int			done_cap;
	int			in_flight;
	int64		started;		/* attempts made or refused, in total */
	HTAB	   *buckets;
};

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr update_plan = NULL;	/* one delivery */
static SPIPlanPtr record_plan = NULL;	/* a batch of deliveries */
static SPIPlanPtr invocation_plan = NULL;

/* ---------------------------------------------------------------------
 * Small helpers
 * --------------------------------------------------------------------- */

static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	return plan;
}

/* Text safe to store: invalid UTF-8 and NUL bytes become U+FFFD. */
static text *
safe_text(const char *s, size_t len)
{
	StringInfoData buf;
	size_t		i = 0;

	if (s == NULL)
		return cstring_to_text("");
	if (memchr(s, '\0', len) == NULL && pg_verify_mbstr(PG_UTF8, s, len, true))
		return cstring_to_text_with_len(s, len);
	initStringInfo(&buf);
	while (i < len)
	{
		int			l = pg_utf_mblen((const unsigned char *) s + i);

		if (s[i] != '\0' && i + l <= len &&
			pg_utf8_islegal((const unsigned char *) s + i, l))
		{
			appendBinaryStringInfo(&buf, s + i, l);
			i += l;
		}
		else
		{
			appendStringInfoString(&buf, "\xEF\xBF\xBD");
			i++;
		}
	}
	return cstring_to_text_with_len(buf.data, buf.len);
}

static void
push_string_pair(JsonbParseState **state, const char *key, const char *value, size_t vlen)
{
	JsonbValue	v;
	text	   *t = safe_text(value, vlen);

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &v);
	v.val.string.val = VARDATA_ANY(t);
	v.val.string.len = VARSIZE_ANY_EXHDR(t);
	pushJsonbValue(state, WJB_VALUE, &v);
}

static const char *
redacted(const char *name, const char *value)
{
	if (pg_strcasecmp(name, "Idempotency-Key") == 0 || !cortex_hook_header_is_secret(name))
		return value;
	if (pg_strncasecmp(value, "Bearer ", 7) == 0)
		return "Bearer [redacted]";
	return "[redacted]";
}

/* HMAC-SHA256 signature of "<id>.<timestamp>.<body>" (Standard Webhooks). */
static char *
sign(const char *secret, const char *msg_id, long ts, const char *body, size_t body_len)
{
	const char *b64 = secret + strlen("whsec_");
	int			keylen = pg_b64_dec_len(strlen(b64));
	char	   *key = palloc(keylen);
	uint8		mac[32];
	char	   *prefix = psprintf("%s.%ld.", msg_id, ts);
	pg_hmac_ctx *ctx;
	char	   *out;
	int			n;

	keylen = pg_b64_decode(b64, strlen(b64), key, keylen);
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL || keylen < 0 ||
		pg_hmac_init(ctx, (uint8 *) key, keylen) < 0 ||
		pg_hmac_update(ctx, (uint8 *) prefix, strlen(prefix)) < 0 ||
		pg_hmac_update(ctx, (uint8 *) body, body_len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		pg_hmac_free(ctx);
		elog(ERROR, "could not compute the webhook signature");
	}
	pg_hmac_free(ctx);
	out = palloc(pg_b64_enc_len(sizeof(mac)) + 4);
	strcpy(out, "v1,");
	n = pg_b64_encode((char *) mac, sizeof(mac), out + 3, pg_b64_enc_len(sizeof(mac)));
	out[3 + n] = '\0';
	return out;
}

/*
 * The request headers of SPEC §5.1 and §5.4.  Adds them to req when given;
 * always returns them as logged (redacted) jsonb.
 */
static Jsonb *
build_headers(HttpRequest *req, Jsonb *user_headers, const char *secret,
			  const char *msg_id, const char *body, size_t body_len)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	bool		has_ct = false,
				has_ua = false;
	JsonbValue *res;

#define ADD(name, value) do { \
		if (req && !http_request_add_header(req, (name), (value))) \
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"))); \
		push_string_pair(&state, (name), redacted((name), (value)), strlen(redacted((name), (value)))); \
	} while (0)

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (user_headers)
	{
		it = JsonbIteratorInit(&user_headers->root);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *name;
			char	   *value;

			if (tok != WJB_KEY)
				continue;
			JsonbIteratorNext(&it, &v, true);
			if (v.type != jbvString)
				continue;
			name = pnstrdup(k.val.string.val, k.val.string.len);
			value = pnstrdup(v.val.string.val, v.val.string.len);
			has_ct |= pg_strcasecmp(name, "Content-Type") == 0;
			has_ua |= pg_strcasecmp(name, "User-Agent") == 0;
			ADD(name, value);
		}
	}
	if (!has_ct)
		ADD("Content-Type", "application/json");
	if (!has_ua)
		ADD("User-Agent", CORTEX_HOOK_USER_AGENT);
	ADD("Idempotency-Key", msg_id);
	if (secret && req == NULL)
	{
		/* a preview: the real values exist only at send time */
		ADD("webhook-id", msg_id);
		ADD("webhook-timestamp", "<unix time when sent>");
		ADD("webhook-signature", "v1,<HMAC-SHA256 computed when sent>");
	}
	else if (secret)
	{
		long		ts = (long) time(NULL);
		char		tsbuf[32];

		snprintf(tsbuf, sizeof(tsbuf), "%ld", ts);
		ADD("webhook-id", msg_id);
		ADD("webhook-timestamp", tsbuf);
		ADD("webhook-signature", sign(secret, msg_id, ts, body, body_len));
	}
#undef ADD
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

static Jsonb *
response_headers_jsonb(const HttpRequest *req)
{
	JsonbParseState *state = NULL;
	const char *h = req->headers;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < req->nheaders; i++)
	{
		const char *val = h + strlen(h) + 1;
		text	   *name = safe_text(h, strlen(h));

		push_string_pair(&state, text_to_cstring(name), val, strlen(val));
		h = val + strlen(val) + 1;
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* ---------------------------------------------------------------------
 * Sender
 * --------------------------------------------------------------------- */

/* Frees the malloc'd HTTP state when the sender's context goes away. */
static void
sender_reset_cb(void *arg)
{
	Sender	   *s = arg;

	for (int i = 0; i < s->ndone; i++)
		http_request_free(s->done[i]->req);
	s->ndone = 0;
	http_client_free(s->client);
	s->client = NULL;
	hostlist_free(s->hosts);
	s->hosts = NULL;
}

Sender *
sender_create(MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "cortex_hook sender",
											  ALLOCSET_DEFAULT_SIZES);
	Sender	   *s = MemoryContextAllocZero(cxt, sizeof(Sender));
	MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	HASHCTL		ctl;
	char		err[256];

	s->cxt = cxt;
	cb->func = sender_reset_cb;
	cb->arg = s;
	MemoryContextRegisterResetCallback(cxt, cb);

	s->client = http_client_new(err, sizeof(err));
	if (s->client == NULL)
		ereport(ERROR, (errmsg("cortex_hook: %s", err)));
	s->done_cap = 64;
	s->done = MemoryContextAlloc(cxt, s->done_cap * sizeof(Job *));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(Bucket);
	ctl.hcxt = cxt;
	s->buckets = hash_create("cortex_hook rate limits", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return s;
}

void
sender_destroy(Sender *s)
{
	MemoryContextDelete(s->cxt);
}

/* Re-read cortex_hook.allowed_hosts and ca_file when they changed. */
static void
sender_refresh_policy(Sender *s)
{
	const char *spec = cortex_hook_allowed_hosts ? cortex_hook_allowed_hosts : "";
	const char *ca = cortex_hook_ca_file ? cortex_hook_ca_file : "";

	if (s->hosts_spec == NULL || strcmp(s->hosts_spec, spec) != 0 ||
		s->ca_file == NULL || strcmp(s->ca_file, ca) != 0)
	{
		char		err[256];
		HostList   *hosts = hostlist_parse(spec, err, sizeof(err));

		if (hosts == NULL)		/* the GUC check hook makes this unlikely */
			ereport(ERROR, (errmsg("invalid cortex_hook.allowed_hosts: %s", err)));
		hostlist_free(s->hosts);
		s->hosts = hosts;
		if (s->hosts_spec)
			pfree(s->hosts_spec);
		if (s->ca_file)
			pfree(s->ca_file);
		s->hosts_spec = MemoryContextStrdup(s->cxt, spec);
		s->ca_file = MemoryContextStrdup(s->cxt, ca);
		http_client_set_policy(s->client, s->hosts, s->ca_file);
	}
}

int
sender_free_slots(Sender *s)
{
	return Max(0, cortex_hook_max_in_flight - s->in_flight);
}

int
sender_in_flight(Sender *s)
{
	return s->in_flight;
}

int
sender_done_count(Sender *s)
{
	return s->ndone;
}

static void
push_done(Sender *s, Job *job)
{
	if (s->ndone == s->done_cap)
	{
		s->done_cap *= 2;
		s->done = repalloc(s->done, s->done_cap * sizeof(Job *));
	}
	s->done[s->ndone++] = job;
}

/*
 * Take a token for this webhook, or give the delivery its own future slot:
 * waiting deliveries get slots one token-interval apart, so a burst beyond
 * the limit is spread out evenly.  rate <= 0 means no limit.
 */
static double
bucket_wait_s(Sender *s, int64 webhook_id, int rate, TimestampTz now)
{
	Bucket	   *b;
	bool		found;
	double		per_s = rate / 60.0;

	if (rate <= 0)
		return 0;
	b = hash_search(s->buckets, &webhook_id, HASH_ENTER, &found);
	if (!found || b->rate != rate)
	{
		b->rate = rate;
		b->tokens = rate;
		b->refilled_at = now;
		b->next_slot = now;
	}
	b->tokens = Min((double) rate,
					b->tokens + (now - b->refilled_at) / 1000000.0 * per_s);
	b->refilled_at = now;
	if (b->tokens >= 1.0)
	{
		b->tokens -= 1.0;
		return 0;
	}
	b->next_slot = Max(now + (TimestampTz) ((1.0 - b->tokens) / per_s * USECS_PER_SEC),
					   b->next_slot + (TimestampTz) (USECS_PER_SEC / per_s));
	return (b->next_slot - now) / (double) USECS_PER_SEC;
}

/* Update a delivery's state. */
static void
update_delivery(int64 id, const char *status, int attempts, TimestampTz next_at,
				TimestampTz delivered_at, const char *error)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', delivered_at ? ' ' : 'n', error ? ' ' : 'n'};

	if (update_plan == NULL)
	{
		Oid			types[6] = {INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID};

		update_plan = prepare_kept("UPDATE cortex_hook.delivery SET status = $2::cortex_hook.delivery_status, attempts = $3, "
								   "next_attempt_at = $4, delivered_at = $5, last_error = $6, "
								   "lease_until = NULL WHERE id = $1", 6, types);
	}
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(status);
	values[2] = Int32GetDatum(attempts);
	values[3] = TimestampTzGetDatum(next_at);
	values[4] = TimestampTzGetDatum(delivered_at);
	values[5] = error ? PointerGetDatum(safe_text(error, strlen(error))) : (Datum) 0;
	if (SPI_execute_plan(update_plan, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update delivery " INT64_FORMAT, id);
}

/* Make a job: its request with headers, signed if the webhook has a secret. */
static Job *
make_job(MemoryContext parent, int64 delivery_id, int64 webhook_id, const char *method,
		 const char *url, text *body, Jsonb *headers, const char *secret,
		 int timeout_ms, const char *msg_id)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "cortex_hook job",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	/* the Job itself lives in the parent: the sender's callback reads it */
	Job		   *job = MemoryContextAllocZero(parent, sizeof(Job));

	job->cxt = cxt;
	job->delivery_id = delivery_id;
	job->webhook_id = webhook_id;
	job->method = pstrdup(method);
	job->url = pstrdup(url);
	job->body = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(body));
	job->req = http_request_new(method, url, VARDATA_ANY(job->body),
								VARSIZE_ANY_EXHDR(job->body));
	if (job->req == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	job->req->timeout_ms = timeout_ms;
	job->req->response_limit = cortex_hook_response_body_limit;
	job->req->user = (long) (intptr_t) job;
	job->log_headers = build_headers(job->req, headers, secret, msg_id,
									 VARDATA_ANY(job->body), VARSIZE_ANY_EXHDR(job->body));
	MemoryContextSwitchTo(old);
	return job;
}

static void
free_job(Job *job)
{
	http_request_free(job->req);
	MemoryContextDelete(job->cxt);
	pfree(job);
}

/* Start a job, or finish it at once when it may not be sent. */
static void
start_job(Sender *s, Job *job)
{
	s->started++;
	job->started_at = GetCurrentTimestamp();
	if (VARSIZE_ANY_EXHDR(job->body) > (Size) cortex_hook_max_body_size)
	{
		job->req->outcome = HTTP_POLICY_ERROR;
		snprintf(job->req->error, sizeof(job->req->error),
				 "body is %zu bytes, more than cortex_hook.max_body_size (%d bytes); not sent",
				 (size_t) VARSIZE_ANY_EXHDR(job->body), cortex_hook_max_body_size);
		push_done(s, job);
		return;
	}
	if (http_start(s->client, job->req))
		s->in_flight++;
	else
		push_done(s, job);
}

int
sender_claim(Sender *s, int max)
{
	Datum		values[2];
	TimestampTz now = GetCurrentTimestamp();
	SPITupleTable *tt;
	uint64		n;
	int			claimed = 0;

	if (max <= 0)
		return 0;
	sender_refresh_policy(s);
	SPI_connect();
	if (claim_plan == NULL)
	{
		Oid			types[2] = {INT4OID, TIMESTAMPTZOID};

		claim_plan = prepare_kept(
								  "WITH due AS ("
								  " SELECT id, webhook_id FROM cortex_hook.delivery"
								  " WHERE status = 'pending' AND next_attempt_at <= $2"
								  " ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
								  " UPDATE cortex_hook.delivery d SET status = 'delivering',"
								  " lease_until = $2 + pg_catalog.make_interval(secs =>"
								  "   (coalesce(w.timeout_ms, 0) + " CppAsString2(LEASE_MARGIN_MS) ") / 1000.0)"
								  " FROM due LEFT JOIN cortex_hook.webhook w ON w.id = due.webhook_id"
								  " WHERE d.id = due.id"
								  " RETURNING d.id, d.webhook_id, d.url, d.body, d.attempts, d.budget_start,"
								  " w.id IS NULL, w.method, w.headers, w.signing_secret, w.timeout_ms,"
								  " w.max_attempts, w.rate_limit_per_minute",
								  2, types);
	}
	values[0] = Int32GetDatum(max);
	values[1] = TimestampTzGetDatum(now);
	if (SPI_execute_plan(claim_plan, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim deliveries");
	n = SPI_processed;
	tt = SPI_tuptable;			/* statements below replace SPI_tuptable */

	/* jobs outlive SPI: take what we need from each row, then act */
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int64		webhook_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		int			attempts = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		int			budget_start = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		bool		orphan = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		Datum		d;
		int			rate;
		double		wait_s;
		char	   *secret;
		char		msg_id[32];
		Job		   *job;

		claimed++;
		if (orphan)
		{
			update_delivery(id, "failed", attempts, now, 0, "webhook was deleted");
			continue;
		}
		d = SPI_getbinval(tup, desc, 13, &isnull);
		rate = isnull ? 0 : DatumGetInt32(d);
		wait_s = bucket_wait_s(s, webhook_id, rate, now);
		if (wait_s > 0)
		{
			/* over the rate limit: back to pending, not an attempt */
			update_delivery(id, "pending", attempts,
							now + (TimestampTz) (wait_s * USECS_PER_SEC), 0, NULL);
			continue;
		}
		d = SPI_getbinval(tup, desc, 10, &isnull);
		secret = isnull ? NULL : TextDatumGetCString(d);
		snprintf(msg_id, sizeof(msg_id), INT64_FORMAT, id);
		job = make_job(s->cxt, id, webhook_id,
					   TextDatumGetCString(SPI_getbinval(tup, desc, 8, &isnull)),
					   TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull)),
					   DatumGetTextPP(SPI_getbinval(tup, desc, 4, &isnull)),
					   DatumGetJsonbP(SPI_getbinval(tup, desc, 9, &isnull)),
					   secret,
					   DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull)),
					   msg_id);
		job->attempt = attempts + 1;
		job->budget_start = budget_start;
		job->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 12, &isnull));
		start_job(s, job);
	}
	SPI_finish();
	return claimed;
}

/* Wait for the latch, HTTP progress or the timeout; collect finished requests. */
int
sender_wait(Sender *s, long timeout_ms, uint32 wait_event)
{
	long		http_ms = http_timeout_ms(s->client);
	HttpRequest *req;
	int			rc;

	if (http_ms >= 0 && (timeout_ms < 0 || http_ms < timeout_ms))
		timeout_ms = http_ms;
	if (s->ndone > 0)
		timeout_ms = 0;
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH |
						   (timeout_ms >= 0 ? WL_TIMEOUT : 0),
						   http_fd(s->client), timeout_ms, wait_event);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	http_run(s->client);
	while ((req = http_next_done(s->client)) != NULL)
	{
		s->in_flight--;
		push_done(s, (Job *) (intptr_t) req->user);
	}
	return rc;
}

/* What becomes of a delivery after one attempt (SPEC §5.2). */
typedef struct Outcome
{
	bool		success;
	const char *status;			/* delivered, pending or failed */
	TimestampTz next_at;
	TimestampTz delivered_at;	/* 0: none */
	char	   *error;			/* for the delivery; NULL: none */
} Outcome;

static void
decide(Job *job, TimestampTz now, Outcome *o)
{
	HttpRequest *req = job->req;
	bool		retry;

	memset(o, 0, sizeof(*o));
	o->next_at = now;
	if (req->outcome == HTTP_RESPONSE)
	{
		int			st = req->status;

		o->success = st >= 200 && st < 300;
		retry = st == 408 || st == 425 || st == 429 || st >= 500;
		if (!o->success)
		{
			text	   *snippet = safe_text(req->body, Min(req->body_len, 200));

			o->error = psprintf("HTTP %d%s%s", st, req->body_len ? ": " : "",
								text_to_cstring(snippet));
		}
	}
	else
	{
		retry = req->outcome == HTTP_TRANSPORT_ERROR;
		o->error = pstrdup(req->error);
	}
	if (req->body_truncated && req->error[0] == '\0')
		snprintf(req->error, sizeof(req->error),
				 "response body truncated at cortex_hook.response_body_limit (%zu bytes)",
				 req->response_limit);

	if (o->success)
	{
		o->status = "delivered";
		o->delivered_at = now;
	}
	else if (retry && job->attempt - job->budget_start < job->max_attempts)
	{
		int			n = job->attempt - job->budget_start;
		double		delay = Min((double) MAX_RETRY_DELAY_S, 5.0 * pow(2.0, Min(n - 1, 30)));
		long		retry_after = -1;

		delay *= 0.8 + 0.4 * pg_prng_double(&pg_global_prng_state);
		if (req->status == 429 || req->status == 503)
			retry_after = http_retry_after_seconds(http_request_header(req, "Retry-After"),
												   (long) time(NULL));
		if (retry_after >= 0)
			delay = Min(retry_after, MAX_RETRY_DELAY_S);
		o->status = "pending";
		o->next_at = now + (TimestampTz) (delay * USECS_PER_SEC);
	}
	else
	{
		o->status = "failed";
		if (retry)
			o->error = psprintf("%s (gave up after %d attempts)", o->error,
								job->attempt - job->budget_start);
	}
}

/* A one-dimensional array of n Datums. */
static Datum
make_array(Datum *values, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

#define INV_COLS 15

/*
 * Record n finished jobs: one INSERT of all invocations and one UPDATE of
 * all deliveries, each over arrays (one round trip per batch, not per row).
 * Returns the first invocation row when asked (test_webhook()).
 */
static HeapTuple
record_jobs(Job **jobs, int n, bool is_test, TupleDesc *desc)
{
	static const Oid inv_types[INV_COLS] = {INT8OID, INT8OID, INT4OID, BOOLOID, TIMESTAMPTZOID,
		FLOAT8OID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, INT4OID, JSONBOID, TEXTOID, TEXTOID, BOOLOID};
	static const Oid upd_types[6] = {INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID};
	Datum	   *iv[INV_COLS];
	bool	   *in[INV_COLS];
	Datum	   *uv[6];
	bool	   *un[6];
	Datum		args[INV_COLS];
	Oid			arrtypes[INV_COLS];
	int			nupd = 0;
	TimestampTz now = GetCurrentTimestamp();
	HeapTuple	first = NULL;

	for (int c = 0; c < INV_COLS; c++)
	{
		iv[c] = palloc(n * sizeof(Datum));
		in[c] = palloc0(n * sizeof(bool));
	}
	for (int c = 0; c < 6; c++)
	{
		uv[c] = palloc(n * sizeof(Datum));
		un[c] = palloc0(n * sizeof(bool));
	}
	for (int i = 0; i < n; i++)
	{
		Job		   *job = jobs[i];
		HttpRequest *req = job->req;
		Outcome		o;

		decide(job, now, &o);
		iv[0][i] = Int64GetDatum(job->delivery_id);
		in[0][i] = job->delivery_id == 0;
		iv[1][i] = Int64GetDatum(job->webhook_id);
		iv[2][i] = Int32GetDatum(job->attempt);
		iv[3][i] = BoolGetDatum(is_test);
		iv[4][i] = TimestampTzGetDatum(job->started_at);
		iv[5][i] = Float8GetDatum(req->duration_ms);
		iv[6][i] = CStringGetTextDatum(job->method);
		iv[7][i] = CStringGetTextDatum(job->url);
		iv[8][i] = JsonbPGetDatum(job->log_headers);
		iv[9][i] = PointerGetDatum(job->body);
		in[9][i] = strcmp(job->method, "GET") == 0;
		iv[10][i] = Int32GetDatum(req->status);
		in[10][i] = req->status == 0;
		if (req->outcome == HTTP_POLICY_ERROR && req->status == 0)
			in[11][i] = in[12][i] = true;
		else
		{
			iv[11][i] = JsonbPGetDatum(response_headers_jsonb(req));
			iv[12][i] = PointerGetDatum(safe_text(req->body, req->body_len));
		}
		in[13][i] = req->error[0] == '\0';
		if (!in[13][i])
			iv[13][i] = PointerGetDatum(safe_text(req->error, strlen(req->error)));
		iv[14][i] = BoolGetDatum(o.success);

		if (job->delivery_id == 0)
			continue;
		uv[0][nupd] = Int64GetDatum(job->delivery_id);
		uv[1][nupd] = CStringGetTextDatum(o.status);
		uv[2][nupd] = Int32GetDatum(job->attempt);
		uv[3][nupd] = TimestampTzGetDatum(o.next_at);
		uv[4][nupd] = TimestampTzGetDatum(o.delivered_at);
		un[4][nupd] = o.delivered_at == 0;
		un[5][nupd] = o.error == NULL;
		if (o.error)
			uv[5][nupd] = PointerGetDatum(safe_text(o.error, strlen(o.error)));
		nupd++;
	}

	if (invocation_plan == NULL)
	{
		for (int c = 0; c < INV_COLS; c++)
			arrtypes[c] = get_array_type(inv_types[c]);
		invocation_plan = prepare_kept("INSERT INTO cortex_hook.invocation (delivery_id, webhook_id, "
									   "attempt, is_test, started_at, duration_ms, request_method, "
									   "request_url, request_headers, request_body, response_status, "
									   "response_headers, response_body, error, success) "
									   "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
									   "$11, $12, $13, $14, $15) RETURNING *", INV_COLS, arrtypes);
	}
	for (int c = 0; c < INV_COLS; c++)
		args[c] = make_array(iv[c], in[c], n, inv_types[c]);
	if (SPI_execute_plan(invocation_plan, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record invocations");
	if (desc)
	{
		*desc = SPI_tuptable->tupdesc;
		first = SPI_tuptable->vals[0];
	}

	if (nupd > 0)
	{
		if (record_plan == NULL)
		{
			for (int c = 0; c < 6; c++)
				arrtypes[c] = get_array_type(upd_types[c]);
			record_plan = prepare_kept("UPDATE cortex_hook.delivery d SET status = u.status::cortex_hook.delivery_status, "
									   "attempts = u.attempts, next_attempt_at = u.next_at, "
									   "delivered_at = u.delivered_at, last_error = u.error, lease_until = NULL "
									   "FROM unnest($1, $2, $3, $4, $5, $6) "
									   "AS u(id, status, attempts, next_at, delivered_at, error) "
									   "WHERE d.id = u.id", 6, arrtypes);
		}
		for (int c = 0; c < 6; c++)
			args[c] = make_array(uv[c], un[c], nupd, upd_types[c]);
		if (SPI_execute_plan(record_plan, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record deliveries");
	}
	return first;
}

/*
 * Record every collected result; returns how many, for sender_forget_done()
 * once the caller has committed (results may be added meanwhile).
 */
int
sender_record_all(Sender *s)
{
	int			n = s->ndone;

	if (n == 0)
		return 0;
	SPI_connect();
	record_jobs(s->done, n, false, NULL);
	SPI_finish();
	return n;
}

/* Forget the first n collected results. */
void
sender_forget_done(Sender *s, int n)
{
	for (int i = 0; i < n; i++)
		free_job(s->done[i]);
	memmove(s->done, s->done + n, (s->ndone - n) * sizeof(Job *));
	s->ndone -= n;
}

/* Record the first collected result alone (after a batch failed). */
void
sender_record_first(Sender *s)
{
	SPI_connect();
	record_jobs(s->done, 1, false, NULL);
	SPI_finish();
}

void
sender_drop_first(Sender *s)
{
	ereport(WARNING,
			(errmsg("cortex_hook: could not record attempt %d of delivery " INT64_FORMAT "; it will be sent again when its lease expires",
					s->done[0]->attempt, s->done[0]->delivery_id)));
	sender_forget_done(s, 1);
}

/* Return expired (or, at worker start, all) leases to pending. */
int
sender_recover_leases(bool all)
{
	Datum		values[1] = {TimestampTzGetDatum(all ? DT_NOEND : GetCurrentTimestamp())};
	Oid			types[1] = {TIMESTAMPTZOID};
	int			n;

	SPI_connect();
	if (SPI_execute_with_args("WITH expired AS ("
							  " SELECT id FROM cortex_hook.delivery"
							  " WHERE status = 'delivering' AND lease_until < $1"
							  " FOR UPDATE SKIP LOCKED)"
							  " UPDATE cortex_hook.delivery d SET status = 'pending', lease_until = NULL"
							  " FROM expired WHERE d.id = expired.id",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not recover leases");
	n = (int) SPI_processed;
	SPI_finish();
	return n;
}

/* Delete one batch of old deliveries and invocations; returns rows deleted. */
int
sender_prune(int batch)
{
	Datum		values[2];
	Oid			types[2] = {TIMESTAMPTZOID, INT4OID};
	int			n;

	values[0] = TimestampTzGetDatum(GetCurrentTimestamp() -
									(TimestampTz) cortex_hook_log_retention * USECS_PER_SEC);
	values[1] = Int32GetDatum(batch);
	SPI_connect();
	if (SPI_execute_with_args("DELETE FROM cortex_hook.delivery WHERE id IN ("
							  " SELECT id FROM cortex_hook.delivery"
							  " WHERE status IN ('delivered', 'failed') AND created_at < $1"
							  " ORDER BY id LIMIT $2)",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not prune deliveries");
	n = (int) SPI_processed;
	if (SPI_execute_with_args("DELETE FROM cortex_hook.invocation WHERE id IN ("
							  " SELECT id FROM cortex_hook.invocation"
							  " WHERE started_at < $1 ORDER BY started_at LIMIT $2)",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not prune invocations");
	n += (int) SPI_processed;
	SPI_finish();
	return n;
}

/* ---------------------------------------------------------------------
 * SQL functions: deliver(), test_webhook(), preview()
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(cortex_hook_deliver);

/*
 * Deliver due deliveries in this session, in the caller's transaction: for
 * databases without the background worker.
 */
Datum
cortex_hook_deliver(PG_FUNCTION_ARGS)
{
	int			max = PG_GETARG_INT32(0);
	Sender	   *s;
	int			claimed = 0;
	bool		more = true;

	if (max < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_deliveries must be at least 1"),
				 errhint("Pass how many deliveries to attempt at most, such as 1000.")));
	/* freed with the transaction if anything below fails */
	s = sender_create(CurTransactionContext);
	while (more || sender_in_flight(s) > 0 || sender_done_count(s) > 0)
	{
		if (more && claimed < max && sender_free_slots(s) > 0)
		{
			int			want = Min(sender_free_slots(s), max - claimed);
			int			got = sender_claim(s, want);

			claimed += got;
			more = got == want && claimed < max;
		}
		else if (claimed >= max)
			more = false;
		if (sender_in_flight(s) > 0)
			sender_wait(s, 1000, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
		if (sender_done_count(s) > 0)
			sender_forget_done(s, sender_record_all(s));
	}
	claimed = (int) s->started;
	sender_destroy(s);
	PG_RETURN_INT32(claimed);
}

typedef struct WebhookRow
{
	int64		id;
	char	   *method;
	char	   *url;
	char	   *body_template;
	Jsonb	   *headers;
	char	   *secret;
	int			timeout_ms;
	Datum		triggers;
} WebhookRow;

/* The webhook named by a function's first argument; connects to SPI. */
static void
read_webhook(FunctionCallInfo fcinfo, WebhookRow *w)
{
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;
	Datum		d;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("webhook_name must not be null")));
	SPI_connect();
	tup = cortex_hook_webhook_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)), &desc);

	w->id = DatumGetInt64(SPI_getbinval(tup, desc, SPI_fnumber(desc, "id"), &isnull));
	w->method = SPI_getvalue(tup, desc, SPI_fnumber(desc, "method"));
	w->url = SPI_getvalue(tup, desc, SPI_fnumber(desc, "url"));
	w->body_template = SPI_getvalue(tup, desc, SPI_fnumber(desc, "body_template"));
	w->headers = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, SPI_fnumber(desc, "headers"), &isnull));
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "signing_secret"), &isnull);
	w->secret = isnull ? NULL : TextDatumGetCString(d);
	w->timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, SPI_fnumber(desc, "timeout_ms"), &isnull));
	w->triggers = SPI_getbinval(tup, desc, SPI_fnumber(desc, "triggers"), &isnull);
}

/* mock_event() of the given type, or of the webhook's first trigger. */
static Jsonb *
mock_event(const char *event_type, Datum triggers)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;

	if (event_type == NULL)
	{
		ArrayType  *arr = DatumGetArrayTypeP(triggers);
		bool		first_null;
		Datum		first;

		first = array_get_element(PointerGetDatum(arr), 1, (int[]) {ARR_LBOUND(arr)[0]},
								  -1, sizeof(Oid), true, TYPALIGN_INT, &first_null);
		if (!first_null)
			event_type = DatumGetCString(DirectFunctionCall1(enum_out, first));
	}
	values[0] = CStringGetTextDatum(event_type ? event_type : "RequestCreated");
	if (SPI_execute_with_args("SELECT cortex_hook.mock_event($1::cortex_hook.event_type)",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not build a mock event");
	return DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Render a webhook against an event; errors are raised for the caller. */
static void
render_for(WebhookRow *w, Jsonb *event, char **url, text **body)
{
	EventContext ec;
	TplContext	ctx;
	const char *error;

	event_context_for_jsonb(&ec, &ctx, event);
	error = cortex_hook_render_webhook(w->url, w->body_template, &ctx, url, body);
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not render webhook: %s", error)));
}

PG_FUNCTION_INFO_V1(cortex_hook_preview);

Datum
cortex_hook_preview(PG_FUNCTION_ARGS)
{
	Jsonb	   *event;
	WebhookRow	w;
	char	   *url;
	text	   *body;
	Jsonb	   *headers;
	JsonbParseState *state = NULL;
	JsonbValue	v;
	Jsonb	   *body_json;
	MemoryContext fcxt = CurrentMemoryContext;
	Jsonb	   *result;

	read_webhook(fcinfo, &w);
	event = PG_ARGISNULL(1) ? mock_event(NULL, w.triggers) : PG_GETARG_JSONB_P(1);
	render_for(&w, event, &url, &body);
	headers = build_headers(NULL, w.headers, w.secret, "<delivery id>",
							VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	body_json = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text_to_cstring(body))));

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_string_pair(&state, "method", w.method, strlen(w.method));
	push_string_pair(&state, "url", url, strlen(url));
	v.type = jbvString;
	v.val.string.val = "headers";
	v.val.string.len = 7;
	pushJsonbValue(&state, WJB_KEY, &v);
	v.type = jbvBinary;
	v.val.binary.data = &headers->root;
	v.val.binary.len = VARSIZE(headers) - VARHDRSZ;
	pushJsonbValue(&state, WJB_VALUE, &v);
	v.type = jbvString;
	v.val.string.val = "body";
	v.val.string.len = 4;
	pushJsonbValue(&state, WJB_KEY, &v);
	if (JB_ROOT_IS_SCALAR(body_json))
	{
		JsonbValue	scalar;

		JsonbExtractScalar(&body_json->root, &scalar);
		pushJsonbValue(&state, WJB_VALUE, &scalar);
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &body_json->root;
		v.val.binary.len = VARSIZE(body_json) - VARHDRSZ;
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	{
		MemoryContext old = MemoryContextSwitchTo(fcxt);

		result = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

PG_FUNCTION_INFO_V1(cortex_hook_test_webhook);

/* Send the mock event now, log it as a test, return the invocation. */
Datum
cortex_hook_test_webhook(PG_FUNCTION_ARGS)
{
	WebhookRow	w;
	Jsonb	   *event;
	char	   *url;
	text	   *body;
	Sender	   *s;
	Job		   *job;
	char		msg_id[48];
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		result;

	read_webhook(fcinfo, &w);
	event = mock_event(PG_ARGISNULL(1) ? NULL :
					   DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(1))),
					   w.triggers);
	render_for(&w, event, &url, &body);

	s = sender_create(CurTransactionContext);
	sender_refresh_policy(s);
	snprintf(msg_id, sizeof(msg_id), "test-" INT64_FORMAT, GetCurrentTimestamp());
	job = make_job(s->cxt, 0, w.id, w.method, url, body, w.headers, w.secret,
				   w.timeout_ms, msg_id);
	job->attempt = 1;
	start_job(s, job);
	while (sender_done_count(s) == 0)
	{
		sender_wait(s, 1000, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	tup = record_jobs(&job, 1, true, &desc);
	result = PointerGetDatum(SPI_returntuple(tup, desc));
	sender_forget_done(s, 1);
	sender_destroy(s);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
