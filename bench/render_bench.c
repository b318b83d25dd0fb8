/*
 * render_bench.c
 *		The template engine alone: the Cortex guide's body template rendered
 *		against a mock event (jansson context), N renders per run, several
 *		runs; prints the median time per render.
 */
#include "../extension/template.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *guide =
"{\n"
"  \"customData\": \"{{json data}}\",\n"
"  \"description\": \"New {{event_type}} request made by {{data.requester.name}}\",\n"
"  \"timestamp\": \"{{event_time}}\",\n"
"  \"title\": \"New {{event_type}} request made by {{data.requester.name}}\",\n"
"  \"type\": \"{{event_type}}\"\n"
"}";

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int
cmp(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	const char *event_file = argc > 1 ? argv[1] : "bench/mock_event.json";
	int			n = argc > 2 ? atoi(argv[2]) : 200000;
	int			runs = argc > 3 ? atoi(argv[3]) : 7;
	json_error_t jerr;
	json_t	   *event = json_load_file(event_file, 0, &jerr);
	TplError	err;
	Template   *t = tpl_compile(guide, strlen(guide), TPL_JSON, &err);
	TplContext	ctx;
	TplBuf		out = {0};
	double		per[64];
	double		c0;
	int			compiles = 20000;

	if (!event || !t)
	{
		fprintf(stderr, "setup failed: %s %s\n", event ? "" : jerr.text, t ? "" : err.message);
		return 1;
	}
	tpl_jansson_context(&ctx, event);
	for (int r = 0; r < runs && r < 64; r++)
	{
		double		t0 = now_ns();

		for (int i = 0; i < n; i++)
		{
			tpl_buf_reset(&out);
			tpl_render(t, &ctx, &out, &err);
		}
		per[r] = (now_ns() - t0) / n;
	}
	qsort(per, runs, sizeof(double), cmp);
	printf("render: %.0f ns median per render (%d runs of %d; min %.0f, max %.0f); body %zu bytes\n",
		   per[runs / 2], runs, n, per[0], per[runs - 1], out.len);

	c0 = now_ns();
	for (int i = 0; i < compiles; i++)
		tpl_free(tpl_compile(guide, strlen(guide), TPL_JSON, &err));
	printf("compile: %.0f ns per compile of the guide template\n", (now_ns() - c0) / compiles);
	tpl_buf_free(&out);
	tpl_free(t);
	json_decref(event);
	return 0;
}
