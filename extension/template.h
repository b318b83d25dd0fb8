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
#include <jansson.h>

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
	bool		oom;			/* an allocation failed; contents are partial */
} TplBuf;

typedef struct Template Template;

extern Template *tpl_compile(const char *src, size_t len, TplMode mode,
							 TplError *err);
extern void tpl_free(Template *tpl);
extern int	tpl_tag_count(const Template *tpl);

/*
 * Render against a context (any JSON value; normally the event object).
 * Appends to out.  Returns true on success; on failure err says why.
 */
extern bool tpl_render(const Template *tpl, const json_t *ctx, TplBuf *out,
					   TplError *err);

/* Buffer helpers, shared with the rest of the PostgreSQL-free code. */
extern void tpl_buf_reset(TplBuf *buf);
extern void tpl_buf_free(TplBuf *buf);
extern void tpl_buf_append(TplBuf *buf, const char *s, size_t n);
extern void tpl_buf_json_string(TplBuf *buf, const char *s, size_t n);
extern void tpl_buf_json_value(TplBuf *buf, const json_t *v);

/* jansson's json_object(), for code where PostgreSQL hides its declaration. */
extern json_t *tpl_json_object_new(void);

/* Look up a dot path ("data.access_groups.0.integration.name"). */
extern const json_t *tpl_lookup(const json_t *ctx, const char *path);

/* Format a timestamp string or epoch seconds as YYYY-MM-DDTHH:MM:SS.ffffffZ. */
extern bool tpl_iso8601(const json_t *v, char out[64]);

#endif
