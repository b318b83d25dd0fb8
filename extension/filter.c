/*
 * filter.c
 *		Webhook filters (SPEC §4): compiled once per webhook, matched per event.
 *
 * Every key present must match (AND); within a key any listed value matches
 * (OR), by exact string comparison against every value found in the event at
 * that dimension.  "condition" is a SQL/JSON path predicate evaluated with
 * PostgreSQL's own jsonb_path_match(), in silent mode, against the whole
 * event.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/jsonpath.h"
#include "utils/memutils.h"

#include "cortex_hook.h"

typedef enum Dim
{
	DIM_INTEGRATIONS,
	DIM_INTEGRATION_TYPES,
	DIM_RESOURCE_TYPES,
	DIM_RESOURCES,
	DIM_PERMISSIONS,
	DIM_REQUESTERS,
	DIM_GRANTEES,
	DIM_ACCESS_FLOWS,
	DIM_BUNDLES,
	NUM_DIMS
} Dim;

static const char *const dim_names[NUM_DIMS] = {
	"integrations", "integration_types", "resource_types", "resources",
	"permissions", "requesters", "grantees", "access_flows", "bundles"
};

#define FILTER_KEYS_HINT "Filter keys are integrations, integration_types, resource_types, resources, permissions, requesters, grantees, access_flows, bundles and condition."

struct Filter
{
	int			nvalues[NUM_DIMS];	/* -1: key absent */
	char	  **values[NUM_DIMS];
	int		   *lengths[NUM_DIMS];
	JsonPath   *condition;
};

static Jsonb *empty_vars = NULL;

/* Parse and check a condition; errors name the filter and say what is allowed. */
static JsonPath *
compile_condition(const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	JsonPath   *jp = NULL;
	JsonPathItem item;

	PG_TRY();
	{
		jp = DatumGetJsonPathP(DirectFunctionCall1(jsonpath_in, CStringGetDatum(text)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid filters.condition: %s", edata->message),
				 errdetail("The condition was: %s", text),
				 errhint("Write a SQL/JSON path predicate over the event, such as \"$.data.access_duration_in_seconds > 3600\".")));
	}
	PG_END_TRY();

	jspInit(&item, jp);
	switch (item.type)
	{
		case jpiAnd:
		case jpiOr:
		case jpiNot:
		case jpiIsUnknown:
		case jpiEqual:
		case jpiNotEqual:
		case jpiLess:
		case jpiGreater:
		case jpiLessOrEqual:
		case jpiGreaterOrEqual:
		case jpiExists:
		case jpiStartsWith:
		case jpiLikeRegex:
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("filters.condition must be a predicate"),
					 errdetail("\"%s\" selects values but does not compare them.", text),
					 errhint("Write a comparison, such as \"$.data.access_duration_in_seconds > 3600\" or \"exists($.data.custom_fields.ticket)\".")));
	}
	return jp;
}

/*
 * Check a webhook's filters and compile them into cxt.  Raises an error for
 * anything that is not allowed, so it is also the validation at write time.
 */
Filter *
filter_compile(Jsonb *filters, MemoryContext cxt)
{
	Filter	   *f = MemoryContextAllocZero(cxt, sizeof(Filter));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	for (int d = 0; d < NUM_DIMS; d++)
		f->nvalues[d] = -1;

	if (!JB_ROOT_IS_OBJECT(filters) || JB_ROOT_IS_SCALAR(filters))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook filters must be a JSON object"),
				 errhint("Use an object such as {\"integrations\": [\"payments-prod-db\"]}, or {} for no filter.")));

	it = JsonbIteratorInit(&filters->root);
	tok = JsonbIteratorNext(&it, &v, false);	/* WJB_BEGIN_OBJECT */
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_END_OBJECT)
	{
		char	   *key;
		int			dim = -1;
		JsonbValue	val;

		Assert(tok == WJB_KEY);
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);

		if (strcmp(key, "condition") == 0)
		{
			char	   *text;

			if (val.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filters.condition must be a string"),
						 errhint("Write a SQL/JSON path predicate as a string, such as \"$.data.access_duration_in_seconds > 3600\".")));
			text = pnstrdup(val.val.string.val, val.val.string.len);
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				f->condition = compile_condition(text);
				MemoryContextSwitchTo(old);
			}
			continue;
		}
		for (int d = 0; d < NUM_DIMS; d++)
			if (strcmp(key, dim_names[d]) == 0)
				dim = d;
		if (dim < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown filter key \"%s\"", key),
					 errhint(FILTER_KEYS_HINT)));
		if (val.type != jbvBinary || !JsonContainerIsArray(val.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("filters.%s must be an array of strings", key),
					 errhint("List the values to match, such as {\"%s\": [\"a\", \"b\"]}.", key)));
		{
			JsonbIterator *ait = JsonbIteratorInit(val.val.binary.data);
			JsonbValue	elem;
			int			n = JsonContainerSize(val.val.binary.data);
			int			i = 0;

			if (n == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("filters.%s must not be empty", key),
						 errhint("List at least one value, or remove the key to match every event.")));
			f->values[dim] = MemoryContextAlloc(cxt, n * sizeof(char *));
			f->lengths[dim] = MemoryContextAlloc(cxt, n * sizeof(int));
			while ((tok = JsonbIteratorNext(&ait, &elem, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (elem.type != jbvString)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("filters.%s must be an array of strings", key),
							 errdetail("Element %d is not a string.", i + 1),
							 errhint("List the values to match as strings, such as {\"%s\": [\"a\", \"b\"]}.", key)));
				f->lengths[dim][i] = elem.val.string.len;
				f->values[dim][i] = MemoryContextAlloc(cxt, elem.val.string.len + 1);
				memcpy(f->values[dim][i], elem.val.string.val, elem.val.string.len);
				f->values[dim][i++][elem.val.string.len] = '\0';
			}
			f->nvalues[dim] = i;
		}
	}
	return f;
}

bool
filter_has_condition(const Filter *f)
{
	return f->condition != NULL;
}

/* The string at a dot path of keys below an object; false if there is none. */
static bool
string_at(JsonbContainer *c, const char *path, const char **s, int *len)
{
	JsonbValue	v;

	while (c != NULL && JsonContainerIsObject(c))
	{
		const char *dot = strchr(path, '.');
		int			n = dot ? (int) (dot - path) : (int) strlen(path);

		if (getKeyJsonValueFromContainer(c, path, n, &v) == NULL)
			return false;
		if (dot == NULL)
		{
			if (v.type != jbvString)
				return false;
			*s = v.val.string.val;
			*len = v.val.string.len;
			return true;
		}
		if (v.type != jbvBinary)
			return false;
		c = v.val.binary.data;
		path = dot + 1;
	}
	return false;
}

/* The strings found in one event at one dimension, collected once. */
typedef struct Found
{
	int			n;
	int			cap;
	const char **s;
	int		   *len;
} Found;

struct FilterEvent
{
	JsonbContainer *data;
	bool		collected[NUM_DIMS];
	Found		found[NUM_DIMS];
};

static void
collect_at(Found *f, JsonbContainer *c, const char *path)
{
	const char *s;
	int			len;

	if (!string_at(c, path, &s, &len))
		return;
	if (f->n == f->cap)
	{
		f->cap = f->cap ? f->cap * 2 : 4;
		f->s = f->s ? repalloc(f->s, f->cap * sizeof(char *)) : palloc(f->cap * sizeof(char *));
		f->len = f->len ? repalloc(f->len, f->cap * sizeof(int)) : palloc(f->cap * sizeof(int));
	}
	f->s[f->n] = s;
	f->len[f->n++] = len;
}

/* The object elements of the array at key in c, or NULL. */
static JsonbContainer *
array_at(JsonbContainer *c, const char *key)
{
	JsonbValue	v;

	if (c == NULL || !JsonContainerIsObject(c) ||
		getKeyJsonValueFromContainer(c, key, strlen(key), &v) == NULL ||
		v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
		return NULL;
	return v.val.binary.data;
}

static JsonbContainer *
object_elem(JsonbContainer *array, uint32 i)
{
	JsonbValue *v = getIthJsonbValueFromContainer(array, i);

	return v && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data) ?
		v->val.binary.data : NULL;
}

/* Every value of the event at this dimension (SPEC §4), across all groups and units. */
static void
collect(Found *f, int dim, JsonbContainer *data)
{
	JsonbContainer *groups;

	switch (dim)
	{
		case DIM_REQUESTERS:
			collect_at(f, data, "requester.email");
			collect_at(f, data, "requester.name");
			return;
		case DIM_GRANTEES:
			collect_at(f, data, "grantee.name");
			return;
		case DIM_ACCESS_FLOWS:
			collect_at(f, data, "access_flow.name");
			return;
		case DIM_BUNDLES:
			collect_at(f, data, "access_bundle.name");
			return;
		default:
			break;
	}
	if ((groups = array_at(data, "access_groups")) == NULL)
		return;
	for (uint32 g = 0; g < JsonContainerSize(groups); g++)
	{
		JsonbContainer *group = object_elem(groups, g);
		JsonbContainer *list;

		if (group == NULL)
			continue;
		if (dim == DIM_INTEGRATIONS)
			collect_at(f, group, "integration.name");
		if (dim == DIM_INTEGRATION_TYPES)
			collect_at(f, group, "integration.type");
		if (dim == DIM_RESOURCE_TYPES && (list = array_at(group, "resource_types")) != NULL)
			for (uint32 t = 0; t < JsonContainerSize(list); t++)
				collect_at(f, object_elem(list, t), "name");
		if ((list = array_at(group, "access_units")) == NULL)
			continue;
		for (uint32 u = 0; u < JsonContainerSize(list); u++)
		{
			JsonbContainer *unit = object_elem(list, u);

			if (dim == DIM_RESOURCES)
				collect_at(f, unit, "resource.name");
			if (dim == DIM_RESOURCE_TYPES)
				collect_at(f, unit, "resource.type.name");
			if (dim == DIM_PERMISSIONS)
				collect_at(f, unit, "permission.name");
		}
	}
}

/* An event to match filters against; dimensions are read on first use. */
FilterEvent *
filter_event(JsonbContainer *data)
{
	FilterEvent *fe = palloc0(sizeof(FilterEvent));

	fe->data = data;
	return fe;
}

/* Does any value of the event at this dimension appear in the filter? */
static bool
dim_matches(const Filter *f, int dim, FilterEvent *fe)
{
	Found	   *found = &fe->found[dim];

	if (!fe->collected[dim])
	{
		collect(found, dim, fe->data);
		fe->collected[dim] = true;
	}
	for (int i = 0; i < found->n; i++)
		for (int k = 0; k < f->nvalues[dim]; k++)
			if (f->lengths[dim][k] == found->len[i] &&
				memcmp(f->values[dim][k], found->s[i], found->len[i]) == 0)
				return true;
	return false;
}

/*
 * fe is the event (filter_event()); event_jsonb the whole event, needed only
 * when the filter has a condition.
 */
bool
filter_match(const Filter *f, FilterEvent *fe, Jsonb *event_jsonb)
{
	for (int d = 0; d < NUM_DIMS; d++)
		if (f->nvalues[d] >= 0 && !dim_matches(f, d, fe))
			return false;

	if (f->condition)
	{
		LOCAL_FCINFO(fcinfo, 4);
		Datum		result;

		if (empty_vars == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			empty_vars = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
			MemoryContextSwitchTo(old);
		}
		InitFunctionCallInfoData(*fcinfo, NULL, 4, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = JsonbPGetDatum(event_jsonb);
		fcinfo->args[0].isnull = false;
		fcinfo->args[1].value = PointerGetDatum(f->condition);
		fcinfo->args[1].isnull = false;
		fcinfo->args[2].value = JsonbPGetDatum(empty_vars);
		fcinfo->args[2].isnull = false;
		fcinfo->args[3].value = BoolGetDatum(true);	/* silent */
		fcinfo->args[3].isnull = false;
		result = jsonb_path_match(fcinfo);
		if (fcinfo->isnull || !DatumGetBool(result))
			return false;
	}
	return true;
}
