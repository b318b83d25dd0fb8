/*
 * fuzz_template.c
 *		libFuzzer target for the template engine: compile arbitrary template
 *		bytes, render them against an arbitrary (or a default) context, and
 *		check the promise of SPEC §3: a JSON render is always valid JSON.
 *
 * Input: first byte picks the mode (even: JSON body, odd: URL); then the
 * template, a NUL byte, and the context as JSON text.
 *
 * Build and run: make test/fuzz_template && test/fuzz_template test/fuzz_seeds
 */
#include "../extension/template.h"

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *default_context =
"{\"event_type\":\"RequestCreated\",\"event_time\":\"2026-12-03T15:29:52Z\",\"event_id\":7,"
"\"data\":{\"id\":\"r\\\"1\",\"n\":[1,2.5,{\"x\":null}],\"s\":\"{{data.id}}\\u0000\\n\","
"\"requester\":{\"name\":\"\xf0\x9f\x98\x80\"},\"t\":1764775792}}";

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Limit oracle: with its output limited to exactly the length it rendered,
 * a template renders the same bytes; limited to half of it, it stops with
 * over_limit set and never writes past the limit.
 */
static void
check_limits(const Template *t, const TplContext *c, const TplBuf *full)
{
	TplBuf		out = {0};
	TplError	err;

	out.limit = full->len ? full->len : 1;
	if (!tpl_render(t, c, &out, &err) || out.len != full->len ||
		memcmp(out.data, full->data, full->len) != 0)
	{
		fprintf(stderr, "render limited to its own length differs: %s\n", err.message);
		abort();
	}
	tpl_buf_free(&out);
	if (full->len < 2)
		return;
	out.limit = full->len / 2;
	if (tpl_render(t, c, &out, &err) || !out.over_limit || out.len > out.limit)
	{
		fprintf(stderr, "render limited to half its length did not stop\n");
		abort();
	}
	tpl_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	TplMode		mode;
	const char *src;
	size_t		srclen;
	const uint8_t *nul;
	json_t	   *ctx = NULL;
	json_error_t jerr;
	TplError	err;
	Template   *t;

	if (size < 1)
		return 0;
	mode = (data[0] & 1) ? TPL_URL : TPL_JSON;
	src = (const char *) data + 1;
	srclen = size - 1;
	nul = memchr(src, '\0', srclen);
	if (nul)
	{
		const char *c = (const char *) nul + 1;

		ctx = json_loadb(c, size - (c - (const char *) data), JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		srclen = (const char *) nul - src;
	}
	if (ctx == NULL)
		ctx = json_loads(default_context, JSON_ALLOW_NUL, &jerr);

	t = tpl_compile(src, srclen, mode, &err);
	if (t)
	{
		TplBuf		out = {0};
		TplContext	c;
		bool		ok;

		tpl_jansson_context(&c, ctx);
		ok = tpl_render(t, &c, &out, &err);
		if (ok)
			check_limits(t, &c, &out);
		if (ok && mode == TPL_JSON)
		{
			json_t	   *parsed = json_loadb(out.data, out.len,
											JSON_DECODE_ANY | JSON_ALLOW_NUL |
											JSON_DECODE_INT_AS_REAL, &jerr);

			/*
			 * Valid JSON that jansson cannot hold: huge numbers, and "\u0000"
			 * in an object key.
			 */
			if (parsed == NULL && strstr(jerr.text, "number overflow") == NULL &&
				strstr(jerr.text, "NUL byte in object key") == NULL)
			{
				fprintf(stderr, "rendered invalid JSON: %s\n%.*s\n", jerr.text,
						(int) out.len, out.data);
				abort();
			}
			json_decref(parsed);
		}
		tpl_buf_free(&out);
		tpl_free(t);
	}
	else if (err.message[0] == '\0')
		abort();				/* every failure must say why */
	json_decref(ctx);
	return 0;
}
