/*
 * validate.c
 *		The BEFORE INSERT OR UPDATE trigger on cortex_hook.webhook: every rule
 *		of SPEC §2.2, each with its own error, field name and hint.  Also the
 *		statement trigger that tells every backend's webhook cache to reload.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "cortex_hook.h"
#include "template.h"

#define NAME_HINT "Use 1 to 64 letters, digits, spaces, \"-\" or \"_\", starting with a letter or digit."
#define TEMPLATE_HINT "A body template is JSON with {{path}} tags inside strings, such as {\"title\": \"{{data.requester.name}}\"}; helpers are json, upper, lower, iso8601, default and join."

static void
check_name(const char *name)
{
	int			len = pg_mbstrlen(name);

	if (len < 1 || len > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook name must be 1 to 64 characters long"),
				 errdetail("The name has %d characters.", len),
				 errhint(NAME_HINT)));
	if (!isalnum((unsigned char) name[0]) || IS_HIGHBIT_SET(name[0]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook name must start with a letter or digit"),
				 errdetail("The name is \"%s\".", name),
				 errhint(NAME_HINT)));
	for (const char *c = name; *c; c++)
		if (IS_HIGHBIT_SET(*c) ||
			!(isalnum((unsigned char) *c) || *c == ' ' || *c == '-' || *c == '_'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook name contains \"%.*s\", which is not allowed",
							pg_mblen(c), c),
					 errdetail("The name is \"%s\".", name),
					 errhint(NAME_HINT)));
}

static void
check_name_unique(const char *name, bool has_id, int64 id)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];
	char		nulls[2] = {' ', has_id ? ' ' : 'n'};

	values[0] = CStringGetTextDatum(name);
	values[1] = Int64GetDatum(id);
	SPI_connect();
	if (SPI_execute_with_args("SELECT name, id FROM cortex_hook.webhook "
							  "WHERE pg_catalog.lower(name) OPERATOR(pg_catalog.=) pg_catalog.lower($1) "
							  "AND id IS DISTINCT FROM $2 LIMIT 1",
							  2, types, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check webhook names");
	if (SPI_processed > 0)
	{
		char	   *other = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("webhook name \"%s\" is already used by webhook \"%s\"", name, other),
				 errhint("Webhook names are unique regardless of case; choose another name.")));
	}
	SPI_finish();
}

/* Method, upper-cased; returns the canonical spelling. */
static const char *
check_method(const char *method)
{
	static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET"};

	for (int i = 0; i < lengthof(methods); i++)
		if (pg_strcasecmp(method, methods[i]) == 0)
			return methods[i];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("webhook method \"%s\" is not supported", method),
			 errhint("Use POST, PUT, PATCH, DELETE or GET.")));
	return NULL;				/* not reached */
}

/* The parts of an absolute http(s) URL, each with its own error. */
static void
check_url_shape(const char *url)
{
	const char *p;
	const char *auth;
	const char *auth_end;

	for (p = url; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook url must not contain spaces or control characters"),
					 errdetail("Found one at character %d.", (int) (p - url) + 1),
					 errhint("Percent-encode them, as %%20 for a space.")));
	if (pg_strncasecmp(url, "http://", 7) == 0)
		auth = url + 7;
	else if (pg_strncasecmp(url, "https://", 8) == 0)
		auth = url + 8;
	else
	{
		const char *colon = strstr(url, "://");

		if (colon)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook url scheme \"%.*s\" is not supported",
							(int) (colon - url), url),
					 errhint("Use an http:// or https:// URL, such as https://api.getcortexapp.com/api/v1/catalog/{{entity}}/custom-events.")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook url \"%s\" is not an absolute URL", url),
				 errhint("Use an http:// or https:// URL, such as https://api.getcortexapp.com/api/v1/catalog/my-entity/custom-events.")));
	}
	auth_end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', auth_end - auth))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook url must not contain a user name or password"),
				 errhint("Send credentials in headers, such as {\"Authorization\": \"Bearer ...\"}.")));
	if (auth_end == auth || *auth == ':')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook url \"%s\" has no host", url),
				 errhint("Use an http:// or https:// URL with a host name, such as https://api.getcortexapp.com/.")));
	{
		const char *host_end = auth_end;
		const char *colon;

		if (*auth == '[')
		{
			const char *close = memchr(auth, ']', auth_end - auth);

			if (!close)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("webhook url has an unterminated IPv6 address"),
						 errhint("Write IPv6 hosts in brackets, as http://[::1]:8080/.")));
			colon = close + 1 < auth_end && close[1] == ':' ? close + 1 : NULL;
		}
		else
			colon = memchr(auth, ':', auth_end - auth);
		if (colon)
		{
			long		port = 0;

			host_end = colon;
			for (p = colon + 1; p < auth_end; p++)
			{
				if (!isdigit((unsigned char) *p) || port > 65535)
					break;
				port = port * 10 + (*p - '0');
			}
			if (p != auth_end || port < 1 || port > 65535)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("webhook url has an invalid port \"%.*s\"",
								(int) (auth_end - colon - 1), colon + 1),
						 errhint("A port is a number from 1 to 65535.")));
		}
		if (*auth != '[')
			for (p = auth; p < host_end; p++)
				if (!isalnum((unsigned char) *p) && *p != '-' && *p != '.' && *p != '_')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("webhook url host \"%.*s\" is not a valid host name",
									(int) (host_end - auth), auth),
							 errhint("Use a DNS name or an IP address; tags are allowed only in the path and query.")));
	}
}

/*
 * An absolute http(s) URL with a host; tags only in path and query.  The
 * tags are checked first, then the URL's shape with each tag masked.
 */
static void
check_url(const char *url)
{
	TplError	err;
	Template   *t = tpl_compile(url, strlen(url), TPL_URL, &err);
	StringInfoData masked;

	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook url: %s", err.message),
				 errhint("Fix column %d. Tags such as {{data.id}} may appear in the path and query.",
						 err.column)));
	tpl_free(t);

	initStringInfo(&masked);
	for (const char *p = url; *p;)
	{
		const char *close;

		if (p[0] == '{' && p[1] == '{' && (close = strstr(p, "}}")) != NULL)
		{
			appendStringInfoChar(&masked, 'x');
			p = close + 2;
		}
		else
			appendStringInfoChar(&masked, *p++);
	}
	check_url_shape(masked.data);
}

static bool
is_token_char(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void
check_headers(Jsonb *headers)
{
	static const char *const reserved[] = {
		"content-length", "transfer-encoding", "host", "connection", "expect",
		"idempotency-key", "webhook-id", "webhook-timestamp", "webhook-signature"
	};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook headers must be a JSON object"),
				 errhint("Map header names to string values, such as {\"Authorization\": \"Bearer <api key>\"}.")));
	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		JsonbValue	val;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		JsonbIteratorNext(&it, &val, true);
		if (*name == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook header name must not be empty"),
					 errhint("Header names are tokens such as \"Authorization\" or \"X-Team\".")));
		for (const char *c = name; *c; c++)
			if (!is_token_char((unsigned char) *c))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("webhook header name \"%s\" contains \"%c\", which is not allowed", name, *c),
						 errhint("Header names use letters, digits and !#$%%&'*+-.^_`|~ only (no spaces or colons).")));
		for (int i = 0; i < lengthof(reserved); i++)
			if (pg_strcasecmp(name, reserved[i]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("webhook header \"%s\" is set by cortex_hook", name),
						 errhint("Remove it from headers; cortex_hook sends Content-Length, Host, Idempotency-Key and the signature headers itself.")));
		if (val.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook header \"%s\" must have a string value", name),
					 errhint("Write the value in quotes, such as {\"%s\": \"value\"}.", name)));
		for (int i = 0; i < val.val.string.len; i++)
		{
			char		c = val.val.string.val[i];

			if (c == '\r' || c == '\n' || c == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("webhook header \"%s\" value contains a line break", name),
						 errhint("Header values are one line: remove CR and LF characters.")));
		}
	}
}

static void
check_triggers(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook triggers must be a one-dimensional array"),
				 errhint("List event types, such as ARRAY['RequestCreated', 'RequestGranted']::cortex_hook.event_type[].")));
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook triggers must not be empty"),
				 errhint("List at least one of RequestCreated, RequestApproved, RequestRejected, RequestGranted, RequestExpired, RequestFailed.")));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook triggers must not contain NULL"),
					 errhint("List event types only.")));
		for (int j = 0; j < i; j++)
			if (elems[j] == elems[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("webhook triggers list \"%s\" more than once",
								DatumGetCString(DirectFunctionCall1(enum_out, elems[i]))),
						 errhint("List each event type once.")));
	}
}

static void
check_range(const char *field, int value, int min, int max)
{
	if (value < min || value > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook %s %d is out of range", field, value),
				 errhint("Use a value from %d to %d.", min, max)));
}

static void
check_secret(const char *secret)
{
	const char *b64;
	int			len;
	int			declen;
	char	   *buf;

	if (strncmp(secret, "whsec_", 6) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook signing_secret must start with \"whsec_\""),
				 errhint("Use a Standard Webhooks secret: \"whsec_\" followed by 24 to 64 random bytes in base64, such as 'whsec_' || encode(gen_random_bytes(32), 'base64').")));
	b64 = secret + 6;
	len = strlen(b64);
	buf = palloc(pg_b64_dec_len(len) + 1);
	declen = pg_b64_decode(b64, len, buf, pg_b64_dec_len(len));
	if (declen < 24 || declen > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook signing_secret must hold 24 to 64 bytes of base64 after \"whsec_\""),
				 errhint("Use \"whsec_\" followed by 24 to 64 random bytes in base64, such as 'whsec_' || encode(gen_random_bytes(32), 'base64').")));
	pfree(buf);
}

static void
check_body_template(const char *tpl)
{
	TplError	err;
	Template   *t = tpl_compile(tpl, strlen(tpl), TPL_JSON, &err);

	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook body_template: %s", err.message),
				 errdetail("The problem is at line %d, column %d.", err.line, err.column),
				 errhint("Fix line %d, column %d. " TEMPLATE_HINT, err.line, err.column)));
	tpl_free(t);
}

static Datum
getattr(HeapTuple tup, TupleDesc desc, const char *col, bool *isnull)
{
	int			attnum = SPI_fnumber(desc, col);

	if (attnum <= 0)
		elog(ERROR, "cortex_hook.webhook has no column \"%s\"", col);
	return SPI_getbinval(tup, desc, attnum, isnull);
}

static void
require(bool isnull, const char *col, const char *hint)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("webhook %s must not be null", col),
				 errhint("%s", hint)));
}

PG_FUNCTION_INFO_V1(cortex_hook_webhook_validate);

Datum
cortex_hook_webhook_validate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;
	Datum		d;
	char	   *name;
	const char *method;
	bool		is_update;
	int			ncols;
	int		   *cols;
	Datum	   *vals;
	bool	   *nulls;
	int			nrepl = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "webhook_validate() must be a BEFORE ROW trigger");
	is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	tup = is_update ? td->tg_newtuple : td->tg_trigtuple;
	desc = td->tg_relation->rd_att;

	d = getattr(tup, desc, "name", &isnull);
	require(isnull, "name", NAME_HINT);
	name = TextDatumGetCString(d);
	check_name(name);

	d = getattr(tup, desc, "method", &isnull);
	require(isnull, "method", "Use POST, PUT, PATCH, DELETE or GET.");
	method = check_method(TextDatumGetCString(d));

	d = getattr(tup, desc, "url", &isnull);
	require(isnull, "url", "Give the URL to send to, such as https://api.getcortexapp.com/api/v1/catalog/my-entity/custom-events.");
	check_url(TextDatumGetCString(d));

	d = getattr(tup, desc, "body_template", &isnull);
	require(isnull, "body_template", TEMPLATE_HINT);
	check_body_template(TextDatumGetCString(d));

	d = getattr(tup, desc, "headers", &isnull);
	require(isnull, "headers", "Use {} for no extra headers.");
	check_headers(DatumGetJsonbP(d));

	d = getattr(tup, desc, "triggers", &isnull);
	require(isnull, "triggers", "List at least one event type, such as ARRAY['RequestCreated']::cortex_hook.event_type[].");
	check_triggers(DatumGetArrayTypeP(d));

	d = getattr(tup, desc, "filters", &isnull);
	require(isnull, "filters", "Use {} for no filter.");
	(void) filter_compile(DatumGetJsonbP(d), CurrentMemoryContext);

	d = getattr(tup, desc, "timeout_ms", &isnull);
	require(isnull, "timeout_ms", "Use a value from 100 to 300000.");
	check_range("timeout_ms", DatumGetInt32(d), 100, 300000);

	d = getattr(tup, desc, "max_attempts", &isnull);
	require(isnull, "max_attempts", "Use a value from 1 to 100.");
	check_range("max_attempts", DatumGetInt32(d), 1, 100);

	d = getattr(tup, desc, "rate_limit_per_minute", &isnull);
	if (!isnull)
		check_range("rate_limit_per_minute", DatumGetInt32(d), 1, 1000000);

	d = getattr(tup, desc, "signing_secret", &isnull);
	if (!isnull)
		check_secret(TextDatumGetCString(d));

	d = getattr(tup, desc, "active", &isnull);
	require(isnull, "active", "Use true or false.");

	/* all rules hold; now the checks that need a query */
	d = getattr(tup, desc, "id", &isnull);
	check_name_unique(name, !isnull, isnull ? 0 : DatumGetInt64(d));

	/* canonical method, timestamps maintained here */
	ncols = 3;
	cols = palloc(ncols * sizeof(int));
	vals = palloc(ncols * sizeof(Datum));
	nulls = palloc0(ncols * sizeof(bool));

	cols[nrepl] = SPI_fnumber(desc, "method");
	vals[nrepl++] = CStringGetTextDatum(method);

	cols[nrepl] = SPI_fnumber(desc, "updated_at");
	vals[nrepl++] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (is_update)
	{
		cols[nrepl] = SPI_fnumber(desc, "created_at");
		vals[nrepl] = getattr(td->tg_trigtuple, desc, "created_at", &nulls[nrepl]);
		nrepl++;
	}
	return PointerGetDatum(heap_modify_tuple_by_cols(tup, desc, nrepl, cols, vals, nulls));
}

PG_FUNCTION_INFO_V1(cortex_hook_webhook_changed);

/* Statement trigger: every backend reloads its webhook cache after commit. */
Datum
cortex_hook_webhook_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "webhook_changed() must be a trigger");
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}
