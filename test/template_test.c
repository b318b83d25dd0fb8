/*
 * template_test.c
 *		Unit tests of the template engine alone (no server): compile errors
 *		with positions, rendering of every helper, escaping and URL encoding.
 *
 * Build and run: make -C test template_test && test/template_test
 */
#include "../extension/template.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	passed;
static int	failed;

static const char *context_text =
"{\"event_type\":\"RequestCreated\",\"event_time\":\"2026-12-03T15:29:52.123456Z\","
"\"event_id\":42,\"data\":{\"id\":\"r1\",\"n\":3,\"r\":0.1,\"ok\":true,\"nil\":null,"
"\"empty\":\"\",\"requester\":{\"name\":\"Ann \\\"A\\\" <b>\",\"email\":\"ann@x.io\"},"
"\"tags\":[\"a\",\"b\",3,null],\"obj\":{\"k\":[1,{\"z\":false}]},"
"\"dots\":\"..\",\"slashy\":\"../a/b?c#d e%\",\"epoch\":1764775792,"
"\"when\":\"2026-12-03 16:29:52.5+01:00\",\"emoji\":\"\xf0\x9f\x98\x80\\u0001\"}}";

static json_t *ctx;

static void
check(const char *name, int ok, const char *got, const char *want)
{
	if (ok)
		passed++;
	else
	{
		failed++;
		printf("not ok - %s\n  got:  %s\n  want: %s\n", name, got ? got : "(null)",
			   want ? want : "(null)");
	}
}

/*
 * Render src against ctx, the output limited to limit bytes (0: no limit),
 * and compare with want.  want NULL expects a render error; with a limit, it
 * must be "stopped at the limit": over_limit set, nothing written past it.
 */
static void
render_limited(const char *name, TplMode mode, const char *src, size_t limit,
			   const char *want)
{
	TplError	err;
	Template   *t = tpl_compile(src, strlen(src), mode, &err);
	TplBuf		out = {0};
	TplContext	c;
	int			ok;

	if (!t)
	{
		check(name, 0, err.message, want);
		return;
	}
	tpl_jansson_context(&c, ctx);
	out.limit = limit;
	ok = tpl_render(t, &c, &out, &err);
	if (!want)
		check(name, !ok && (limit == 0 || (out.over_limit && out.len <= limit &&
										   strstr(err.message, "more than") != NULL)),
			  ok ? out.data : err.message, limit ? "(stopped at the limit)" : "(render error)");
	else
		check(name, ok && strcmp(out.data ? out.data : "", want) == 0,
			  ok ? (out.data ? out.data : "") : err.message, want);
	if (ok && mode == TPL_JSON)
	{
		json_error_t jerr;
		json_t	   *parsed = json_loadb(out.data, out.len, JSON_DECODE_ANY, &jerr);

		check(name, parsed != NULL, jerr.text, "valid JSON");
		json_decref(parsed);
	}
	tpl_buf_free(&out);
	tpl_free(t);
}

static void
render_is(const char *name, TplMode mode, const char *src, const char *want)
{
	render_limited(name, mode, src, 0, want);
}

/* Expect a compile error containing msg at line:col. */
static void
error_is(const char *name, TplMode mode, const char *src, const char *msg,
		 int line, int col)
{
	TplError	err;
	Template   *t = tpl_compile(src, strlen(src), mode, &err);
	char		got[400];
	char		want[400];

	snprintf(got, sizeof(got), "%d:%d %s", err.line, err.column, t ? "(compiled)" : err.message);
	snprintf(want, sizeof(want), "%d:%d ...%s...", line, col, msg);
	check(name, t == NULL && strstr(err.message, msg) != NULL &&
		  err.line == line && err.column == col, got, want);
	tpl_free(t);
}

int
main(void)
{
	json_error_t jerr;

	ctx = json_loads(context_text, 0, &jerr);
	if (!ctx)
	{
		printf("bad context: %s\n", jerr.text);
		return 2;
	}

	/* structure and literals */
	render_is("compact output", TPL_JSON, " { \"a\" : [ 1 , 2.50, -0e+3, true, false, null ], \"b\" : { } } ",
			  "{\"a\":[1,2.50,-0e+3,true,false,null],\"b\":{}}");
	render_is("escapes kept canonical", TPL_JSON, "\"a\\u00e9\\n\\/\\ud83d\\ude00\"",
			  "\"a\xc3\xa9\\n/\xf0\x9f\x98\x80\"");

	/* paths */
	render_is("string path", TPL_JSON, "\"{{data.id}}\"", "\"r1\"");
	render_is("event fields", TPL_JSON, "\"{{event_type}} {{event_id}} {{event_time}}\"",
			  "\"RequestCreated 42 2026-12-03T15:29:52.123456Z\"");
	render_is("number and bool", TPL_JSON, "\"{{data.n}}/{{data.r}}/{{data.ok}}\"", "\"3/0.1/true\"");
	render_is("object as compact text", TPL_JSON, "\"{{data.obj}}\"",
			  "\"{\\\"k\\\":[1,{\\\"z\\\":false}]}\"");
	render_is("missing and null are empty", TPL_JSON, "\"[{{data.nope}}|{{data.nil}}|{{nope.deeper}}]\"", "\"[||]\"");
	render_is("array index", TPL_JSON, "\"{{data.tags.1}}{{data.obj.k.1.z}}\"", "\"bfalse\"");
	render_is("index out of range", TPL_JSON, "\"<{{data.tags.9}}>\"", "\"<>\"");
	render_is("spaces inside tag", TPL_JSON, "\"{{  data.id  }}\"", "\"r1\"");
	render_is("tag in key", TPL_JSON, "{\"k_{{data.id}}\":1}", "{\"k_r1\":1}");

	/* typed json */
	render_is("json object", TPL_JSON, "{\"c\":\"{{json data.obj}}\"}", "{\"c\":{\"k\":[1,{\"z\":false}]}}");
	render_is("json array", TPL_JSON, "\"{{json data.tags}}\"", "[\"a\",\"b\",3,null]");
	render_is("json number", TPL_JSON, "\"{{json data.n}}\"", "3");
	render_is("json real", TPL_JSON, "\"{{json data.r}}\"", "0.1");
	render_is("json bool", TPL_JSON, "\"{{json data.ok}}\"", "true");
	render_is("json null", TPL_JSON, "\"{{json data.nil}}\"", "null");
	render_is("json missing", TPL_JSON, "\"{{json data.nope}}\"", "null");
	render_is("json string keeps type", TPL_JSON, "\"{{json data.id}}\"", "\"r1\"");
	render_is("json inside longer string", TPL_JSON, "\"x{{json data.tags}}\"",
			  "\"x[\\\"a\\\",\\\"b\\\",3,null]\"");
	render_is("json key stays a string", TPL_JSON, "{\"{{json data.n}}\":1}", "{\"3\":1}");

	/* helpers */
	render_is("upper", TPL_JSON, "\"{{upper data.requester.email}}\"", "\"ANN@X.IO\"");
	render_is("lower", TPL_JSON, "\"{{lower event_type}}\"", "\"requestcreated\"");
	render_is("iso8601 from offset", TPL_JSON, "\"{{iso8601 data.when}}\"", "\"2026-12-03T15:29:52.500000Z\"");
	render_is("iso8601 from epoch", TPL_JSON, "\"{{iso8601 data.epoch}}\"", "\"2025-12-03T15:29:52.000000Z\"");
	render_is("iso8601 passes other text", TPL_JSON, "\"{{iso8601 data.id}}\"", "\"r1\"");
	render_is("default on missing", TPL_JSON, "\"{{default data.nope 'none'}}\"", "\"none\"");
	render_is("default on empty", TPL_JSON, "\"{{default data.empty \\\"n/a\\\"}}\"", "\"n/a\"");
	render_is("default on present", TPL_JSON, "\"{{default data.id 'none'}}\"", "\"r1\"");
	render_is("join default sep", TPL_JSON, "\"{{join data.tags}}\"", "\"a, b, 3, \"");
	render_is("join sep", TPL_JSON, "\"{{join data.tags '|'}}\"", "\"a|b|3|\"");

	/* injection: data is text, never structure, never re-rendered */
	render_is("quotes and html escaped", TPL_JSON, "{\"t\":\"{{data.requester.name}}\"}",
			  "{\"t\":\"Ann \\\"A\\\" <b>\"}");
	render_is("emoji and control chars", TPL_JSON, "\"{{data.emoji}}\"",
			  "\"\xf0\x9f\x98\x80\\u0001\"");

	/* URL mode */
	render_is("url segment encoded", TPL_URL, "http://h/a/{{data.slashy}}/b",
			  "http://h/a/..%2Fa%2Fb%3Fc%23d%20e%25/b");
	render_is("url dot segment", TPL_URL, "http://h/a/{{data.dots}}/b", "http://h/a/%2E%2E/b");
	render_is("url dots inside segment kept", TPL_URL, "http://h/a/x{{data.dots}}/b", "http://h/a/x../b");
	render_is("url empty segment is an error", TPL_URL, "http://h/a/{{data.nope}}/b", NULL);
	render_is("url query", TPL_URL, "http://h/a?x={{data.requester.email}}", "http://h/a?x=ann%40x.io");

	/* an output limit: exact fit renders, one byte more stops */
	render_limited("limit: exact fit", TPL_JSON, "\"{{data.id}}\"", 4, "\"r1\"");
	render_limited("limit: one byte over", TPL_JSON, "\"{{data.id}}\"", 3, NULL);
	render_limited("limit: literal over", TPL_JSON, "{\"long literal\": 1}", 10, NULL);
	render_limited("limit: escaped string", TPL_JSON, "\"{{data.requester.name}}\"", 14, NULL);
	render_limited("limit: escaped string fits", TPL_JSON, "\"{{data.requester.name}}\"", 15,
				   "\"Ann \\\"A\\\" <b>\"");
	render_limited("limit: json helper", TPL_JSON, "\"{{json data.obj}}\"", 20, NULL);
	render_limited("limit: object text", TPL_JSON, "\"{{data.obj}}\"", 20, NULL);
	render_limited("limit: typed value", TPL_JSON, "\"{{json data}}\"", 100, NULL);
	render_limited("limit: url, byte by byte", TPL_URL, "http://x/{{data.slashy}}", 20, NULL);
	render_limited("limit: url fits", TPL_URL, "http://x/{{data.id}}", 11, "http://x/r1");

	/* compile errors, with line and column */
	error_is("not json", TPL_JSON, "{\n  \"a\": 1,\n  \"b\" 2\n}", "expected \":\"", 3, 7);
	error_is("trailing comma", TPL_JSON, "[1,]", "expected a JSON value", 1, 4);
	error_is("unclosed tag", TPL_JSON, "{\"a\": \"x {{data.id\"}", "unclosed tag", 1, 10);
	error_is("unknown helper", TPL_JSON, "\n\"{{shout data.id}}\"", "unknown helper \"shout\"", 2, 4);
	error_is("helper without path", TPL_JSON, "\"{{upper}}\"", "needs a path", 1, 4);
	error_is("default without text", TPL_JSON, "\"{{default data.x}}\"", "needs a text", 1, 4);
	error_is("bad path", TPL_JSON, "\"{{data..x}}\"", "empty segment", 1, 4);
	error_is("tag position after escapes", TPL_JSON, "\"\\n\\u00e9{{x y}}\"", "unknown helper", 1, 12);
	error_is("unterminated string", TPL_JSON, "{\"a\": \"b", "unterminated string", 1, 7);
	error_is("raw newline in string", TPL_JSON, "\"a\nb\"", "control character", 1, 3);
	error_is("trailing text", TPL_JSON, "{} x", "expected the end", 1, 4);
	error_is("empty template", TPL_JSON, "", "unexpected end", 1, 1);
	error_is("lone surrogate", TPL_JSON, "\"\\udc00\"", "surrogate", 1, 2);
	error_is("tag in host", TPL_URL, "http://{{data.id}}.x/", "only in the path", 1, 8);
	error_is("url unclosed tag", TPL_URL, "http://x/{{data.id", "unclosed tag", 1, 10);

	json_decref(ctx);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
