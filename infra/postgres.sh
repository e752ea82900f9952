#!/usr/bin/env bash
# A private PostgreSQL server for tests and local clusters, in a folder of its own.
#   infra/postgres.sh start DIR [PORT]   init (once) and start; prints the connection URL
#   infra/postgres.sh stop DIR
#   infra/postgres.sh url DIR
# Installs Debian's postgresql package if no server binaries are found. Runs the server as the
# `postgres` user when invoked as root (initdb refuses root). Trust auth on loopback only.
set -euo pipefail
cmd=${1:?start|stop|url}
dir=$(realpath -m "${2:?data folder}")
port=${3:-55432}

find_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}
bin=$(find_bin || true)
if [ -z "$bin" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  bin=$(find_bin)
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/pgdata" -U postgres -A trust --no-sync -E UTF8 >/dev/null
      cat >> "$dir/pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 128MB
fsync = on
synchronous_commit = on
CONF
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
      as_pg "$bin/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 60 start >/dev/null
    fi
    p=$(grep -E '^port = ' "$dir/pgdata/postgresql.conf" | tail -1 | awk '{print $3}')
    as_pg "$bin/psql" -h 127.0.0.1 -p "$p" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='strata'" | grep -q 1 \
      || as_pg "$bin/createdb" -h 127.0.0.1 -p "$p" -U postgres strata
    echo "postgres://postgres@127.0.0.1:$p/strata"
    ;;
  stop)
    [ -f "$dir/pgdata/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null || true
    ;;
  url)
    p=$(grep -E '^port = ' "$dir/pgdata/postgresql.conf" | tail -1 | awk '{print $3}')
    echo "postgres://postgres@127.0.0.1:$p/strata"
    ;;
  *) echo "usage: $0 start|stop|url DIR [PORT]" >&2; exit 2 ;;
esac
