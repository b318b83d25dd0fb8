#!/usr/bin/env bash
# The template engine alone: median time to render the Cortex guide's body
# template against a mock event (built with -O2, no sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages
gcc -std=gnu11 -O2 -o bench/render_bench bench/render_bench.c extension/template.c \
	$(pkg-config --cflags --libs jansson)
bench/render_bench bench/mock_event.json "${N:-200000}" "${RUNS:-7}"
