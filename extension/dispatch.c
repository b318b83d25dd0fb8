/*
 * dispatch.c
 *		The AFTER INSERT/UPDATE trigger cortex_hook.dispatch(): for each active
 *		webhook whose triggers and filters match the new row, render URL and
 *		body and queue a delivery in the same transaction.
 *
 * Active webhooks are loaded and compiled once per backend and kept until
 * cortex_hook.webhook changes (its statement trigger sends a relcache
 * invalidation), so the per-row cost is the filter checks, the renders (which
 * read the row's jsonb directly, see context.c) and one INSERT per matching
 * webhook.
 *
 * Also here: render_template() and matches(), which share the event handling.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "cortex_hook.h"
#include "context.h"
#include "dispatch.h"
#include "template.h"

typedef struct Hook
{
	int64		id;
	uint32		triggers;		/* bit i: cortex_hook_event_types[i] */
	Template   *url;
	Template   *body;
	Filter	   *filter;
	bool		has_filter;
} Hook;

static MemoryContext cache_cxt = NULL;
static Hook *hooks = NULL;
static int	nhooks = 0;
static bool cache_valid = false;
static Oid	webhook_relid = InvalidOid;
static SPIPlanPtr insert_plan = NULL;

/*
 * Longest rendered URL.  Request lines longer than 8 kB are refused by most
 * HTTP servers; stopping here also keeps a huge event from costing a huge URL.
 */
#define MAX_URL_LENGTH 8192

/* Reused render buffers (malloc'd; they keep their capacity). */
static TplBuf url_buf;
static TplBuf body_buf;

static void
cache_inval_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == webhook_relid)
		cache_valid = false;
}

/* Compiled templates are malloc'd: free them when the cache is reset. */
static void
free_hooks_cb(void *arg)
{
	for (int i = 0; i < nhooks; i++)
	{
		tpl_free(hooks[i].url);
		tpl_free(hooks[i].body);
	}
	hooks = NULL;
	nhooks = 0;
}

/* A cortex_hook.event_type[] as a bit mask over cortex_hook_event_types. */
uint32
cortex_hook_trigger_mask(Datum triggers)
{
	ArrayType  *arr = DatumGetArrayTypeP(triggers);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	uint32		mask = 0;

	deconstruct_array(arr, ARR_ELEMTYPE(arr), sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		int			idx;

		if (nulls[i])
			continue;
		idx = cortex_hook_event_type_index(DatumGetCString(DirectFunctionCall1(enum_out, elems[i])));
		if (idx >= 0)
			mask |= 1u << idx;
	}
	return mask;
}

/* Load and compile the active webhooks.  Must be called inside SPI. */
static void
load_hooks(void)
{
	static bool callback_registered = false;
	MemoryContext old;
	MemoryContextCallback *cb;
	uint64		n;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(cache_inval_cb, (Datum) 0);
		callback_registered = true;
	}
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "cortex_hook webhooks",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_cxt);

	/* mark valid first: an invalidation arriving while loading wins */
	cache_valid = true;
	webhook_relid = get_relname_relid("webhook", get_namespace_oid("cortex_hook", false));

	if (SPI_execute("SELECT id, url, body_template, triggers, filters "
					"FROM cortex_hook.webhook WHERE active ORDER BY id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read cortex_hook.webhook");
	n = SPI_processed;

	old = MemoryContextSwitchTo(cache_cxt);
	cb = palloc(sizeof(MemoryContextCallback));
	cb->func = free_hooks_cb;
	cb->arg = NULL;
	MemoryContextRegisterResetCallback(cache_cxt, cb);
	hooks = palloc0(Max(n, 1) * sizeof(Hook));
	MemoryContextSwitchTo(old);

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Hook	   *h = &hooks[nhooks];
		char	   *url = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		char	   *body = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		Jsonb	   *filters = DatumGetJsonbP(SPI_getbinval(tup, desc, 5, &isnull));
		TplError	err;

		h->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		h->triggers = cortex_hook_trigger_mask(SPI_getbinval(tup, desc, 4, &isnull));
		h->url = tpl_compile(url, strlen(url), TPL_URL, &err);
		h->body = tpl_compile(body, strlen(body), TPL_JSON, &err);
		/* rows were validated on write; a failure here means out of memory */
		if (!h->url || !h->body)
		{
			tpl_free(h->url);
			tpl_free(h->body);
			elog(ERROR, "could not compile webhook %lld: %s", (long long) h->id, err.message);
		}
		nhooks++;
		h->filter = filter_compile(filters, cache_cxt);
		h->has_filter = !(JB_ROOT_COUNT(filters) == 0);
	}
}

/*
 * Render a webhook's URL and body.  Returns NULL on success, else the error.
 * Results are in url_buf / body_buf until the next call.
 */
static const char *
render_pair(const Template *url, const Template *body, const TplContext *ctx)
{
	static char message[300];
	TplError	err;

	tpl_buf_reset(&url_buf);
	tpl_buf_reset(&body_buf);
	/* rendering stops at the limits: a huge event costs no huge buffer */
	url_buf.limit = MAX_URL_LENGTH;
	body_buf.limit = cortex_hook_max_body_size;
	if (!tpl_render(url, ctx, &url_buf, &err))
	{
		if (url_buf.over_limit)
		{
			snprintf(message, sizeof(message),
					 "rendered url is more than %d bytes; not sent", MAX_URL_LENGTH);
			tpl_buf_reset(&url_buf);
		}
		else
			snprintf(message, sizeof(message), "url: %s", err.message);
		return message;
	}
	if (!tpl_render(body, ctx, &body_buf, &err))
	{
		if (body_buf.over_limit)
			snprintf(message, sizeof(message),
					 "rendered body is more than cortex_hook.max_body_size (%d bytes); not sent",
					 cortex_hook_max_body_size);
		else
			snprintf(message, sizeof(message), "body: %s", err.message);
		return message;
	}
	return NULL;
}

static void
queue_delivery(int64 webhook_id, bool has_id, int64 event_id,
			   const char *event_type, const char *error)
{
	Datum		values[7];
	char		nulls[7] = {' ', has_id ? ' ' : 'n', ' ', ' ', ' ', ' ', error ? ' ' : 'n'};

	if (insert_plan == NULL)
	{
		Oid			types[7] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare("INSERT INTO cortex_hook.delivery "
						   "(webhook_id, event_id, event_type, url, body, status, last_error) "
						   "VALUES ($1, $2, $3::cortex_hook.event_type, $4, $5, $6::cortex_hook.delivery_status, $7)",
						   7, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the delivery insert: %s",
				 SPI_result_code_string(SPI_result));
		insert_plan = plan;
	}
	values[0] = Int64GetDatum(webhook_id);
	values[1] = Int64GetDatum(event_id);
	values[2] = CStringGetTextDatum(event_type);
	if (error)
	{
		values[3] = CStringGetTextDatum(url_buf.len && !url_buf.oom ? url_buf.data : "");
		values[4] = CStringGetTextDatum("");
		values[5] = CStringGetTextDatum("failed");
		values[6] = CStringGetTextDatum(error);
	}
	else
	{
		values[3] = PointerGetDatum(cstring_to_text_with_len(url_buf.data, url_buf.len));
		values[4] = PointerGetDatum(cstring_to_text_with_len(body_buf.data, body_buf.len));
		values[5] = CStringGetTextDatum("pending");
	}
	if (SPI_execute_plan(insert_plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not queue a delivery");
	if (!error)
		cortex_hook_wake_at_commit();
}

/*
 * Compile and render a webhook's stored URL and body templates against ctx,
 * for preview() and test_webhook().  Returns NULL or the error.
 */
const char *
cortex_hook_render_webhook(const char *url_src, const char *body_src,
						   const TplContext *ctx, char **url, text **body)
{
	TplError	err;
	Template   *u = tpl_compile(url_src, strlen(url_src), TPL_URL, &err);
	Template   *b = tpl_compile(body_src, strlen(body_src), TPL_JSON, &err);
	const char *error;

	if (!u || !b)
		error = "webhook templates could not be compiled";
	else
		error = render_pair(u, b, ctx);
	tpl_free(u);
	tpl_free(b);
	if (error)
		return pstrdup(error);
	*url = pnstrdup(url_buf.data, url_buf.len);
	*body = cstring_to_text_with_len(body_buf.data, body_buf.len);
	return NULL;
}

/*
 * Queue deliveries for one event.  Called inside SPI.  When the event's data
 * could not be read (data_error), each webhook for its type gets a failed
 * delivery saying so: its filters cannot be evaluated, and the INSERT must
 * not fail.
 */
static void
dispatch_event(const char *event_type, TimestampTz event_time,
			   bool has_id, int64 event_id, Jsonb *data, const char *data_error)
{
	int			et = cortex_hook_event_type_index(event_type);
	EventContext ec;
	TplContext	ctx;
	bool		have_ctx = false;
	Jsonb	   *event_jsonb = NULL;
	FilterEvent *fe = NULL;

	if (et < 0)
		return;
	for (int i = 0; i < nhooks; i++)
	{
		Hook	   *h = &hooks[i];

		if (!(h->triggers & (1u << et)))
			continue;
		if (data_error)
		{
			tpl_buf_reset(&url_buf);
			queue_delivery(h->id, has_id, event_id, event_type, data_error);
			continue;
		}
		if (h->has_filter)
		{
			if (filter_has_condition(h->filter) && event_jsonb == NULL)
				event_jsonb = cortex_hook_build_event(event_type, event_time,
													  has_id, event_id, data);
			if (fe == NULL)
				fe = filter_event(&data->root);
			if (!filter_match(h->filter, fe, event_jsonb))
				continue;
		}
		if (!have_ctx)
		{
			event_context_for_row(&ec, &ctx, event_type, cortex_hook_format_time(event_time),
								  has_id, event_id, data);
			have_ctx = true;
		}
		queue_delivery(h->id, has_id, event_id, event_type, render_pair(h->url, h->body, &ctx));
	}
}

/* Column numbers of a source table, from the trigger's arguments. */
typedef struct SourceCols
{
	int			type_att;
	int			data_att;
	int			time_att;		/* 0: use now() */
	int			id_att;			/* 0: no id */
	Oid			type_out;
	bool		data_is_json;	/* json rather than jsonb */
	bool		time_is_plain;	/* timestamp without time zone */
} SourceCols;

static int
find_column(TupleDesc desc, const char *name, bool required, const char *role)
{
	int			att = SPI_fnumber(desc, name);

	if (att <= 0 && required)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("cortex_hook.dispatch(): column \"%s\" (the %s) does not exist", name, role),
				 errhint("Name the event-type, data and event-time columns as trigger arguments: EXECUTE FUNCTION cortex_hook.dispatch('event_type', 'data', 'event_time').")));
	return att > 0 ? att : 0;
}

static void
resolve_columns(TriggerData *td, TupleDesc desc, SourceCols *c)
{
	Trigger    *tg = td->tg_trigger;
	const char *type_col = tg->tgnargs > 0 ? tg->tgargs[0] : "event_type";
	const char *data_col = tg->tgnargs > 1 ? tg->tgargs[1] : "data";
	const char *time_col = tg->tgnargs > 2 ? tg->tgargs[2] : "event_time";
	bool		isvarlena;
	Oid			t;

	c->type_att = find_column(desc, type_col, true, "event type");
	c->data_att = find_column(desc, data_col, true, "event data");
	c->time_att = find_column(desc, time_col, tg->tgnargs > 2, "event time");
	c->id_att = find_column(desc, "id", false, "id");

	getTypeOutputInfo(SPI_gettypeid(desc, c->type_att), &c->type_out, &isvarlena);
	t = SPI_gettypeid(desc, c->data_att);
	if (t != JSONBOID && t != JSONOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cortex_hook.dispatch(): data column \"%s\" must be jsonb or json", data_col)));
	c->data_is_json = t == JSONOID;
	if (c->time_att)
	{
		t = SPI_gettypeid(desc, c->time_att);
		if (t != TIMESTAMPTZOID && t != TIMESTAMPOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cortex_hook.dispatch(): event time column \"%s\" must be timestamptz or timestamp", time_col)));
		c->time_is_plain = t == TIMESTAMPOID;
	}
	if (c->id_att)
	{
		t = SPI_gettypeid(desc, c->id_att);
		if (t != INT8OID && t != INT4OID && t != INT2OID)
			c->id_att = 0;
	}
}

/*
 * jsonb from a json column.  Text the json type accepts can still be refused
 * by jsonb (\u0000, numbers beyond numeric's range): convert in a
 * subtransaction and return NULL with *error set instead of failing.
 */
static Jsonb *
json_to_jsonb(Datum json, char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *src = TextDatumGetCString(json);
	Jsonb	   *volatile result = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(src)));
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		/* the detail is a sentence; it goes inside parentheses here */
		if (edata->detail && edata->detail[0] &&
			edata->detail[strlen(edata->detail) - 1] == '.')
			edata->detail[strlen(edata->detail) - 1] = '\0';
		*error = psprintf("event data is not valid jsonb (%s%s%s); not sent",
						  edata->message, edata->detail ? ": " : "",
						  edata->detail ? edata->detail : "");
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return result;
}

static void
dispatch_tuple(HeapTuple tup, TupleDesc desc, const SourceCols *c)
{
	bool		isnull;
	Datum		d;
	char	   *event_type;
	Jsonb	   *data;
	char	   *data_error = NULL;
	TimestampTz event_time = GetCurrentTransactionStartTimestamp();
	bool		has_id = false;
	int64		id = 0;

	d = SPI_getbinval(tup, desc, c->type_att, &isnull);
	if (isnull)
		return;
	event_type = OidOutputFunctionCall(c->type_out, d);
	if (cortex_hook_event_type_index(event_type) < 0)
		return;
	d = SPI_getbinval(tup, desc, c->data_att, &isnull);
	if (isnull)
		return;
	if (c->data_is_json)
		data = json_to_jsonb(d, &data_error);
	else
		data = DatumGetJsonbP(d);
	if (c->time_att)
	{
		d = SPI_getbinval(tup, desc, c->time_att, &isnull);
		if (!isnull)
			event_time = c->time_is_plain ?
				DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, d)) :
				DatumGetTimestampTz(d);
	}
	if (c->id_att)
	{
		d = SPI_getbinval(tup, desc, c->id_att, &isnull);
		if (!isnull)
		{
			Oid			t = SPI_gettypeid(desc, c->id_att);

			has_id = true;
			id = t == INT8OID ? DatumGetInt64(d) :
				t == INT4OID ? DatumGetInt32(d) : DatumGetInt16(d);
		}
	}
	dispatch_event(event_type, event_time, has_id, id, data, data_error);
}

PG_FUNCTION_INFO_V1(cortex_hook_dispatch);

Datum
cortex_hook_dispatch(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	SourceCols	cols;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cortex_hook.dispatch() must be an AFTER INSERT or UPDATE trigger"),
				 errhint("CREATE TRIGGER ... AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION cortex_hook.dispatch().")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* misuse is reported whether or not any webhook is active */
	desc = td->tg_relation->rd_att;
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) && td->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cortex_hook.dispatch() FOR EACH STATEMENT needs a transition table"),
				 errhint("Add REFERENCING NEW TABLE AS new_rows to the trigger, or use FOR EACH ROW.")));
	resolve_columns(td, desc, &cols);

	if (!cache_valid)
		load_hooks();
	if (nhooks == 0)
	{
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		dispatch_tuple(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple,
					   desc, &cols);
	else
	{
		Tuplestorestate *ts = td->tg_newtable;
		TupleTableSlot *slot;
		MemoryContext row_cxt;
		MemoryContext old;

		slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		row_cxt = AllocSetContextCreate(CurrentMemoryContext, "cortex_hook dispatch row",
										ALLOCSET_DEFAULT_SIZES);
		tuplestore_rescan(ts);
		while (tuplestore_gettupleslot(ts, true, false, slot))
		{
			bool		should_free;
			HeapTuple	tup;

			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(row_cxt);
			tup = ExecFetchSlotHeapTuple(slot, true, &should_free);
			dispatch_tuple(tup, desc, &cols);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		ExecDropSingleTupleTableSlot(slot);
		MemoryContextDelete(row_cxt);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * render_template(template, context) and matches(name, event)
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(cortex_hook_render_template);

Datum
cortex_hook_render_template(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *context = PG_GETARG_JSONB_P(1);
	TplError	err;
	Template   *t;
	EventContext ec;
	TplContext	ctx;
	TplBuf		out = {0};
	text	   *result;
	bool		ok;

	t = tpl_compile(src, strlen(src), TPL_JSON, &err);
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid template: %s", err.message),
				 errdetail("The problem is at line %d, column %d.", err.line, err.column),
				 errhint("Fix line %d, column %d. A template is JSON with {{path}} tags inside strings; helpers are json, upper, lower, iso8601, default and join.",
						 err.line, err.column)));
	event_context_for_jsonb(&ec, &ctx, context);
	out.limit = MaxAllocSize - VARHDRSZ - 1;	/* the most a text can hold */
	ok = tpl_render(t, &ctx, &out, &err);
	tpl_free(t);
	if (!ok)
	{
		bool		too_long = out.over_limit;

		tpl_buf_free(&out);
		ereport(ERROR,
				(errcode(too_long ? ERRCODE_PROGRAM_LIMIT_EXCEEDED : ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not render template: %s", err.message)));
	}
	result = cstring_to_text_with_len(out.data, out.len);
	tpl_buf_free(&out);
	PG_RETURN_TEXT_P(result);
}

/* Look up a webhook by name (any status); errors if there is none. */
HeapTuple
cortex_hook_webhook_by_name(const char *name, TupleDesc *desc)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	if (SPI_execute_with_args("SELECT * FROM cortex_hook.webhook "
							  "WHERE pg_catalog.lower(name) OPERATOR(pg_catalog.=) pg_catalog.lower($1)",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read cortex_hook.webhook");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("webhook \"%s\" does not exist", name),
				 errhint("List webhooks with SELECT name FROM cortex_hook.webhook.")));
	*desc = SPI_tuptable->tupdesc;
	return SPI_tuptable->vals[0];
}

PG_FUNCTION_INFO_V1(cortex_hook_matches);

Datum
cortex_hook_matches(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *event = PG_GETARG_JSONB_P(1);
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;
	uint32		mask;
	Filter	   *filter;
	JsonbValue	etv,
				datav;
	JsonbValue *et = NULL;
	JsonbValue *data = NULL;
	int			idx;
	bool		result = false;

	SPI_connect();
	tup = cortex_hook_webhook_by_name(name, &desc);
	mask = cortex_hook_trigger_mask(SPI_getbinval(tup, desc, SPI_fnumber(desc, "triggers"), &isnull));
	filter = filter_compile(DatumGetJsonbP(SPI_getbinval(tup, desc, SPI_fnumber(desc, "filters"), &isnull)),
							CurrentMemoryContext);
	et = getKeyJsonValueFromContainer(&event->root, "event_type", 10, &etv);
	data = getKeyJsonValueFromContainer(&event->root, "data", 4, &datav);
	idx = et && et->type == jbvString ?
		cortex_hook_event_type_index(pnstrdup(et->val.string.val, et->val.string.len)) : -1;
	if (idx >= 0 && (mask & (1u << idx)))
		result = filter_match(filter,
							  filter_event(data && data->type == jbvBinary ? data->val.binary.data : NULL),
							  event);
	SPI_finish();
	PG_RETURN_BOOL(result);
}
