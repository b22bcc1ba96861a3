#!/usr/bin/env bash
# Starts a throwaway PgBouncer in transaction pooling mode on loopback, in front of the
# PostgreSQL that DATABASE_URL names (scripts/throwaway-postgres.sh); prints its URL.
#   eval "$(scripts/throwaway-pgbouncer.sh start [PORT])"   → exports IDP_TEST_POOLER_URL, PGBOUNCER_THROWAWAY_DIR
#   scripts/throwaway-pgbouncer.sh stop "$PGBOUNCER_THROWAWAY_DIR"
# Every database name is passed through to that PostgreSQL (a `*` entry), so the test
# databases created there directly are reachable through the pooler under the same name.
# Installs Debian's pgbouncer when missing; as root it runs as the postgres user.
set -euo pipefail

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    port="${2:-6432}"
    upstream="${DATABASE_URL:?DATABASE_URL must name the PostgreSQL to pool}"
    if ! command -v pgbouncer >/dev/null; then
      echo "installing pgbouncer…" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq pgbouncer >&2
    fi
    host="$(node -e 'const u = new URL(process.argv[1]); console.log(u.hostname)' "$upstream")"
    upstream_port="$(node -e 'const u = new URL(process.argv[1]); console.log(u.port || 5432)' "$upstream")"
    user="$(node -e 'const u = new URL(process.argv[1]); console.log(decodeURIComponent(u.username) || "postgres")' "$upstream")"
    dir="$(mktemp -d /tmp/sentryagent-pgbouncer.XXXXXX)"
    echo "\"$user\" \"\"" > "$dir/userlist.txt"
    # node-pg sends no startup parameter PgBouncer does not track; `options` and
    # extra_float_digits are what other drivers send. Queries of the tests are short:
    # a statement that waits longer than query_wait_timeout for a connection fails.
    cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$upstream_port user=$user

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
ignore_startup_parameters = extra_float_digits,options
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    as_postgres pgbouncer -d "$dir/pgbouncer.ini" >/dev/null
    for _ in $(seq 50); do
      [ -s "$dir/pgbouncer.pid" ] && break
      sleep 0.1
    done
    echo "export IDP_TEST_POOLER_URL=postgres://$user@127.0.0.1:$port PGBOUNCER_THROWAWAY_DIR=$dir"
    ;;
  stop)
    dir="${2:?pgbouncer dir}"
    if [ -s "$dir/pgbouncer.pid" ]; then kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true; fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start [PORT] | stop DIR" >&2
    exit 2
    ;;
esac
