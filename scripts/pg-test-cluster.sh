#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the test suite (no Docker).
#
#   eval "$(scripts/pg-test-cluster.sh start DIR)"   # prints export FERRY_TEST_PG_URL=…
#   scripts/pg-test-cluster.sh stop DIR
#
# The cluster lives in DIR (created), listens on 127.0.0.1 on a free port,
# trusts local connections (it holds nothing but test data) and is owned by
# the `postgres` system user, because initdb refuses to run as root. Tests
# create one database per test server and drop it afterwards.
set -euo pipefail
cmd=${1:?usage: pg-test-cluster.sh start|stop DIR}
dir=${2:?usage: pg-test-cluster.sh start|stop DIR}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_postgres "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # Sized for many short-lived test databases and several server nodes at once;
  # fsync stays on (the default): the tests kill servers, not PostgreSQL.
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
shared_buffers = 128MB
EOF
  as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "export FERRY_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
  echo "export FERRY_TEST_PG_BIN=$bindir"
  echo "export FERRY_TEST_PG_DATA=$dir/data"
  ;;
stop)
  [ -d "$dir/data" ] && as_postgres "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  ;;
*)
  echo "usage: pg-test-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
