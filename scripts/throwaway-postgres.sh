#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on loopback for tests and benchmarks; prints its URL.
#   eval "$(scripts/throwaway-postgres.sh start [PORT])"   → exports DATABASE_URL, PG_THROWAWAY_DIR
#   scripts/throwaway-postgres.sh stop "$PG_THROWAWAY_DIR"
# Installs Debian's postgresql when the machine has none. The server refuses to run as
# root, so as root it runs as the postgres user, with its data under /tmp.
set -euo pipefail

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

case "${1:-}" in
  start)
    port="${2:-55432}"
    if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
      echo "installing postgresql…" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
    fi
    bin="$(pg_bin)"
    dir="$(mktemp -d /tmp/sentryagent-pg.XXXXXX)"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_postgres "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    # Loopback only, a private socket directory; for tests durability is off, and
    # PG_DURABLE=1 (the benchmark) keeps PostgreSQL's durable defaults.
    options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400"
    [ "${PG_DURABLE:-0}" = 1 ] || options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start -o "$options" >/dev/null
    echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres PG_THROWAWAY_DIR=$dir"
    ;;
  stop)
    dir="${2:?data dir}"
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start [PORT] | stop DIR" >&2
    exit 2
    ;;
esac
