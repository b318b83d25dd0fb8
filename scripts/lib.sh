# Shared by scripts/test, scripts/demo and bench/*: packages, build, servers.
# shellcheck shell=bash

PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-contrib libcurl4-openssl-dev libjansson-dev
pkg-config make gcc clang libclang-rt-dev libipc-run-perl python3 curl openssl"

# Install the Debian packages that are missing (needs root on a fresh machine).
ensure_packages() {
	local missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# pg_config of PostgreSQL 15, whatever else is installed.
export PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PGBIN="$("$PG_CONFIG" --bindir)"
export PATH="$PGBIN:$PATH"

build_and_install() {
	make -s PG_CONFIG="$PG_CONFIG" WERROR=1 >/dev/null
	if [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
		make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	else
		sudo make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	fi
}

# A free TCP port on loopback.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the mock Cortex server in the background; sets MOCK_PORT and MOCK_PID.
start_mock() {
	local dir portfile token=${1:-}
	dir=$(mktemp -d)
	portfile="$dir/port"
	shift || true
	python3 test/mock_cortex.py --port 0 --port-file "$portfile" ${token:+--token "$token"} "$@" >"$dir/log" 2>&1 &
	MOCK_PID=$!
	for _ in $(seq 100); do
		[ -s "$portfile" ] && break
		sleep 0.05
	done
	MOCK_PORT=$(cat "$portfile")
	export MOCK_PORT MOCK_PID
}
