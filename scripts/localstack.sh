#!/usr/bin/env bash
# The servers of `make run`: a PostgreSQL 15 cluster and a Redis server under var/, on 127.0.0.1
# without passwords (local development only). Their data stays between runs; `make clean` removes it.
#
#   scripts/localstack.sh start    # initdb on the first run, start both (already running: kept)
#   scripts/localstack.sh stop     # stop both (not running: nothing to do)
#
# The ports match the defaults in loyalty_site/settings/base.py (DATABASE_URL, CELERY_BROKER_URL,
# CACHE_URL). A server left over by a run that was killed is found by its port and kept; a stale
# pid file (the process is gone) is removed, so it never blocks the next start. As root,
# PostgreSQL runs as `postgres` (it refuses to run as root), as in scripts/testdb.py.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PORT=${LOYALTY_LOCAL_PG_PORT:-54329}
REDIS_PORT=${LOYALTY_LOCAL_REDIS_PORT:-63799}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
VAR=${LOYALTY_LOCAL_VAR_DIR:-$(pwd)/var}
PG_DIR=$VAR/postgres
PG_DATA=$PG_DIR/data
REDIS_DIR=$VAR/redis

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_running() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
redis_running() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

# A lock file whose process is gone (or a zombie nobody reaped, as in a container without an init)
# would make PostgreSQL refuse to start ("lock file … already exists"): postmaster.pid in the data
# directory and the socket's lock file. Remove them only when their PID is not a live postgres.
stale_lock() {
  local pid state
  [ -f "$1" ] || return 1
  pid=$(head -1 "$1")
  state=$(awk '{sub(/.*\) /, ""); print $1}' "/proc/$pid/stat" 2>/dev/null || true)
  [ -z "$state" ] || [ "$state" = Z ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]
}

clear_stale_pg_pid() {
  local lock
  for lock in "$PG_DATA/postmaster.pid" "$PG_DIR/.s.PGSQL.$PG_PORT.lock"; do
    if stale_lock "$lock"; then
      rm -f "$lock"
      echo "Removed the stale lock file ${lock#"$VAR"/} of a PostgreSQL that was killed"
    fi
  done
}

start_postgres() {
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    echo "Creating the local PostgreSQL cluster in var/postgres"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if pg_running; then
    echo "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    clear_stale_pg_pid
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
    echo "PostgreSQL started on 127.0.0.1:$PG_PORT (log: var/postgres/server.log)"
  fi
  if [ -z "$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'loyalty'")" ]; then
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres loyalty
  fi
}

start_redis() {
  mkdir -p "$REDIS_DIR"
  if redis_running; then
    echo "Redis already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  rm -f "$REDIS_DIR/redis.pid"  # left by a server that was killed: nothing answers on the port
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --appendonly yes --save "" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --protected-mode yes
  for _ in $(seq 100); do redis_running && break; sleep 0.1; done
  redis_running || { echo "Redis did not start, see var/redis/redis.log" >&2; exit 1; }
  echo "Redis started on 127.0.0.1:$REDIS_PORT (log: var/redis/redis.log)"
}

stop_postgres() {
  [ -d "$PG_DATA" ] || return 0
  clear_stale_pg_pid
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null && echo "PostgreSQL stopped"
  fi
}

stop_redis() {
  if redis_running; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
    echo "Redis stopped"
  fi
  rm -f "$REDIS_DIR/redis.pid"
}

case "${1:-}" in
  start) start_postgres; start_redis ;;
  stop) stop_postgres; stop_redis ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
