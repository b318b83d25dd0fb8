# cortex_hook: PGXS build.  `make && make install`; tests: scripts/test.

MODULE_big = cortex_hook
OBJS = \
	extension/context.o \
	extension/cortex_hook.o \
	extension/delivery.o \
	extension/dispatch.o \
	extension/filter.o \
	extension/http.o \
	extension/template.o \
	extension/validate.o \
	extension/worker.o

EXTENSION = cortex_hook
DATA = $(wildcard extension/cortex_hook--*.sql)
PGFILEDESC = "cortex_hook - Cortex custom events from access-request rows"

REGRESS = setup validation templates filters functions dispatch delivery privileges
REGRESS_OPTS = --inputdir=test --outputdir=test --temp-instance=test/tmp_check \
	--temp-config=test/cortex_hook.conf

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config

PG_CPPFLAGS += -std=gnu11 $(shell pkg-config --cflags libcurl jansson)
SHLIB_LINK += $(shell pkg-config --libs libcurl jansson)
ifdef WERROR
PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Werror
endif

EXTRA_CLEAN = test/tmp_check test/results test/regression.diffs test/regression.out \
	test/template_test test/fuzz_template test/asan_preload.so

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The template engine's unit tests and fuzz target build without the server.
test/template_test: test/template_test.c extension/template.c extension/template.h
	$(CC) -std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
		-o $@ test/template_test.c extension/template.c $(shell pkg-config --cflags --libs jansson)

test/fuzz_template: test/fuzz_template.c extension/template.c extension/template.h
	clang -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined \
		-o $@ test/fuzz_template.c extension/template.c $(shell pkg-config --cflags --libs jansson)

# Preloaded after the ASan runtime into the server in the sanitizer pass.
test/asan_preload.so: test/asan_preload.c
	$(CC) -shared -fPIC -O1 -Wall -Wextra -Wno-unused-parameter -Werror -o $@ $<
