/*
 * template.h
 *		The cortex_hook template engine: JSON body templates and URL templates
 *		with {{ ... }} tags, compiled once and rendered many times.
 *
 * This file and template.c use only the C library and jansson, so the engine
 * can be unit-tested and fuzzed without a server.  Errors are returned, never
 * raised; the PostgreSQL layer turns them into ereport().
 */
#ifndef CORTEX_HOOK_TEMPLATE_H
#define CORTEX_HOOK_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

struct json_t;					/* jansson's; only tpl_jansson_context() needs it */

typedef enum TplMode
{
	TPL_JSON,					/* a JSON document with tags inside strings */
	TPL_URL						/* a URL; tags are percent-encoded */
} TplMode;

typedef struct TplError
{
	int			line;			/* 1-based; 0 when not about a position */
	int			column;			/* 1-based, in characters */
	char		message[256];
} TplError;

/* A growable byte buffer, malloc'd; reuse it across renders to avoid mallocs. */
typedef struct TplBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		limit;			/* 0, or the most len may grow to */
	bool		oom;			/* an allocation failed or limit was reached;
								 * contents are partial */
	bool		over_limit;		/* it was limit */
} TplBuf;

typedef struct Template Template;

/*
 * A value of the context, as the renderer sees it.  The provider fills text
 * and len for strings (the string itself, not NUL-terminated) and numbers
 * (their JSON text), and keeps whatever it needs to find children in ref.
 */
typedef enum TplKind
{
	TPL_MISSING,
	TPL_NULL,
	TPL_FALSE,
	TPL_TRUE,
	TPL_NUMBER,
	TPL_STRING,
	TPL_OBJECT,
	TPL_ARRAY
} TplKind;

typedef struct TplNode
{
	TplKind		kind;
	const char *text;
	size_t		len;
	const void *ref;
	char		num[40];		/* room for a provider's number text */
} TplNode;

/*
 * The context a template is rendered against, through callbacks: so the
 * server can render straight from stored jsonb and tests from jansson.
 */
typedef struct TplContext
{
	void	   *arg;
	void		(*root) (void *arg, TplNode *out);
	/* a member (key, keylen) of an object, or element index >= 0 of an array */
	void		(*child) (void *arg, const TplNode *parent, const char *key,
						  size_t keylen, long index, TplNode *out);
	size_t		(*length) (void *arg, const TplNode *array);
	/* append compact JSON of an object or array */
	void		(*to_json) (void *arg, const TplNode *node, struct TplBuf *out);
} TplContext;

extern Template *tpl_compile(const char *src, size_t len, TplMode mode,
							 TplError *err);
extern void tpl_free(Template *tpl);

/*
 * Render against a context (normally the event object).  Appends to out.
 * Returns true on success; on failure err says why.
 */
extern bool tpl_render(const Template *tpl, const TplContext *ctx, TplBuf *out,
					   TplError *err);

/* A context over a jansson value. */
extern void tpl_jansson_context(TplContext *ctx, const struct json_t *root);

/* Buffer helpers, shared with the rest of the PostgreSQL-free code. */
extern void tpl_buf_reset(TplBuf *buf);
extern void tpl_buf_free(TplBuf *buf);
extern void tpl_buf_append(TplBuf *buf, const char *s, size_t n);
extern void tpl_buf_json_string(TplBuf *buf, const char *s, size_t n);
extern void tpl_buf_json_value(TplBuf *buf, const struct json_t *v);
extern void tpl_buf_scalar(TplBuf *buf, const TplNode *node);

/* Format a timestamp string or epoch seconds as YYYY-MM-DDTHH:MM:SS.ffffffZ. */
extern bool tpl_iso8601(const TplNode *v, char out[64]);

#endif
