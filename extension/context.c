/*
 * context.c
 *		The template context over jsonb: templates render straight from the
 *		stored event, with no conversion to another JSON representation.
 *
 * Two kinds of root: a real jsonb event ({"event_type", "event_time",
 * "event_id", "data"}, as preview() and render_template() get it), or the
 * event of a source row, whose first-level fields come from the row's
 * columns and whose "data" is the row's jsonb.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "context.h"

/* The parent node of the synthetic first level of a row's event. */
static const char row_root_marker;

static void
node_from_value(const JsonbValue *v, TplNode *out)
{
	memset(out, 0, sizeof(*out));
	if (v == NULL)
	{
		out->kind = TPL_MISSING;
		return;
	}
	switch (v->type)
	{
		case jbvNull:
			out->kind = TPL_NULL;
			break;
		case jbvBool:
			out->kind = v->val.boolean ? TPL_TRUE : TPL_FALSE;
			break;
		case jbvString:
			out->kind = TPL_STRING;
			out->text = v->val.string.val;
			out->len = v->val.string.len;
			break;
		case jbvNumeric:
			out->kind = TPL_NUMBER;
			out->text = DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(v->val.numeric)));
			out->len = strlen(out->text);
			break;
		case jbvBinary:
			out->kind = JsonContainerIsArray(v->val.binary.data) ? TPL_ARRAY : TPL_OBJECT;
			out->ref = v->val.binary.data;
			break;
		default:
			out->kind = TPL_MISSING;
			break;
	}
}

/* The root value of a jsonb document (scalars are unwrapped). */
static void
node_from_jsonb(Jsonb *jb, TplNode *out)
{
	if (jb == NULL)
		node_from_value(NULL, out);
	else if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;

		JsonbExtractScalar(&jb->root, &v);
		node_from_value(&v, out);
	}
	else
	{
		memset(out, 0, sizeof(*out));
		out->kind = JB_ROOT_IS_ARRAY(jb) ? TPL_ARRAY : TPL_OBJECT;
		out->ref = &jb->root;
	}
}

static void
string_node(const char *s, TplNode *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = TPL_STRING;
	out->text = s;
	out->len = strlen(s);
}

static void
ctx_root(void *arg, TplNode *out)
{
	EventContext *ec = arg;

	if (ec->row)
	{
		memset(out, 0, sizeof(*out));
		out->kind = TPL_OBJECT;
		out->ref = &row_root_marker;
	}
	else
		node_from_jsonb(ec->event, out);
}

static void
ctx_child(void *arg, const TplNode *parent, const char *key, size_t keylen,
		  long index, TplNode *out)
{
	EventContext *ec = arg;
	JsonbContainer *c = (JsonbContainer *) parent->ref;

	if (parent->ref == &row_root_marker)
	{
		memset(out, 0, sizeof(*out));
		out->kind = TPL_MISSING;
		if (key == NULL)
			return;
		if (keylen == 10 && memcmp(key, "event_type", 10) == 0)
			string_node(ec->event_type, out);
		else if (keylen == 10 && memcmp(key, "event_time", 10) == 0)
			string_node(ec->event_time, out);
		else if (keylen == 8 && memcmp(key, "event_id", 8) == 0)
		{
			if (ec->has_id)
			{
				out->kind = TPL_NUMBER;
				out->len = snprintf(out->num, sizeof(out->num), INT64_FORMAT, ec->event_id);
				out->text = out->num;
			}
			else
				out->kind = TPL_NULL;
		}
		else if (keylen == 4 && memcmp(key, "data", 4) == 0)
			node_from_jsonb(ec->data, out);
		return;
	}
	if (index >= 0 && JsonContainerIsArray(c))
		node_from_value(getIthJsonbValueFromContainer(c, (uint32) index), out);
	else if (key != NULL && JsonContainerIsObject(c))
	{
		JsonbValue	v;

		node_from_value(getKeyJsonValueFromContainer(c, key, (int) keylen, &v), out);
	}
	else
		node_from_value(NULL, out);
}

static size_t
ctx_length(void *arg, const TplNode *array)
{
	return JsonContainerSize((JsonbContainer *) array->ref);
}

static void
append_scalar(const JsonbValue *v, TplBuf *out)
{
	TplNode		n;

	node_from_value(v, &n);
	tpl_buf_scalar(out, &n);
}

/* Compact JSON of a jsonb container (jsonb's own output has spaces). */
static void
jsonb_compact(JsonbContainer *c, TplBuf *out)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		comma = false;

	/* stop early once out is full (limit reached) */
	while (!out->oom && (tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_BEGIN_ARRAY:
				if (comma)
					tpl_buf_append(out, ",", 1);
				tpl_buf_append(out, tok == WJB_BEGIN_OBJECT ? "{" : "[", 1);
				comma = false;
				break;
			case WJB_END_OBJECT:
			case WJB_END_ARRAY:
				tpl_buf_append(out, tok == WJB_END_OBJECT ? "}" : "]", 1);
				comma = true;
				break;
			case WJB_KEY:
				if (comma)
					tpl_buf_append(out, ",", 1);
				tpl_buf_json_string(out, v.val.string.val, v.val.string.len);
				tpl_buf_append(out, ":", 1);
				comma = false;
				break;
			case WJB_ELEM:
				if (comma)
					tpl_buf_append(out, ",", 1);
				/* FALLTHROUGH */
			case WJB_VALUE:
				append_scalar(&v, out);
				comma = true;
				break;
			default:
				break;
		}
	}
}

static void
ctx_to_json(void *arg, const TplNode *node, TplBuf *out)
{
	jsonb_compact((JsonbContainer *) node->ref, out);
}

static void
init_ops(EventContext *ec, TplContext *ctx)
{
	ctx->arg = ec;
	ctx->root = ctx_root;
	ctx->child = ctx_child;
	ctx->length = ctx_length;
	ctx->to_json = ctx_to_json;
}

/* The event of a source row: first-level fields from columns, data as is. */
void
event_context_for_row(EventContext *ec, TplContext *ctx, const char *event_type,
					  const char *event_time, bool has_id, int64 event_id, Jsonb *data)
{
	memset(ec, 0, sizeof(*ec));
	ec->row = true;
	ec->event_type = event_type;
	ec->event_time = event_time;
	ec->has_id = has_id;
	ec->event_id = event_id;
	ec->data = data;
	init_ops(ec, ctx);
}

/* A whole event given as jsonb. */
void
event_context_for_jsonb(EventContext *ec, TplContext *ctx, Jsonb *event)
{
	memset(ec, 0, sizeof(*ec));
	ec->event = event;
	init_ops(ec, ctx);
}
