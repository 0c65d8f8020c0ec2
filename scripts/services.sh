#!/usr/bin/env bash
# Private development services for this checkout, kept under .dev/:
#   PostgreSQL 15 + PostGIS (run as the non-root `postgres` user), Redis, and moto's S3 server.
#
#   scripts/services.sh up      start what is not running yet (a second call reuses it) and
#                               write .dev/env, the variables that point at them
#   scripts/services.sh down    stop what `up` started
#   scripts/services.sh status  say what runs where
#
# A service is started only when its variable (DATABASE_URL, REDIS_URL, S3_ENDPOINT_URL) is
# unset in the environment and in .env.local: a set variable means "use that one instead".
# Ports: HUSTLE_PG_PORT, HUSTLE_REDIS_PORT, HUSTLE_S3_PORT choose them; otherwise a default is
# used when free and a free port is picked when not. The chosen port is kept in .dev/ so that
# the next `up` finds the same service again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV="$ROOT/.dev"
VENV_BIN="$ROOT/.venv/bin"
PGBIN=/usr/lib/postgresql/15/bin
PG_DB=hustle

say() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

# Values from .env.local count as set (the server reads that file too).
if [[ -f "$ROOT/.env.local" ]]; then
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.env.local"
  set +a
fi

want_pg() { [[ -z "${DATABASE_URL:-}" ]]; }
want_redis() { [[ -z "${REDIS_URL:-}" ]]; }
want_s3() { [[ -z "${S3_ENDPOINT_URL:-}" ]]; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pick_port NAME DEFAULT OVERRIDE -> a port for NAME, remembered in .dev/NAME.port
pick_port() {
  local name=$1 default=$2 override=$3 file="$DEV/$1.port"
  if [[ -n "$override" ]]; then echo "$override"; return; fi
  if [[ -f "$file" ]]; then cat "$file"; return; fi
  if port_busy "$default"; then free_port; else echo "$default"; fi
}

wait_for_port() {
  local port=$1 what=$2 i
  for ((i = 0; i < 150; i++)); do
    port_busy "$port" && return 0
    sleep 0.2
  done
  die "$what did not open port $port within 30 s (see its log under .dev/)"
}

ensure_packages() {
  local missing=()
  if want_pg; then
    [[ -x "$PGBIN/postgres" ]] || missing+=(postgresql-15)
    [[ -f /usr/share/postgresql/15/extension/postgis.control ]] || missing+=(postgresql-15-postgis-3)
  fi
  if want_redis; then
    command -v redis-server >/dev/null || missing+=(redis-server)
  fi
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 || ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
    cat >&2 <<EOF
services: cannot install the services this project needs on this machine (needs root on Debian).
Install them yourself, then run the command again:
    sudo apt-get install -y ${missing[*]}
or point the project at services you already run, in the environment or in .env.local:
    DATABASE_URL=postgresql://USER@HOST:PORT/DB   (PostgreSQL 15+ with PostGIS 3)
    REDIS_URL=redis://HOST:PORT/0
EOF
    exit 1
  fi
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- PostgreSQL ---------------------------------------------------------------------------
pg_data() { echo "$DEV/pg/data"; }

pg_prepare_dir() {
  mkdir -p "$DEV/pg"
  chown postgres:postgres "$DEV/pg"
  # The postgres user must be able to reach the data folder; a checkout under a private
  # home (mode 700) cannot give it that, so the data then lives under /var/lib and .dev/pg
  # points there.
  if ! runuser -u postgres -- test -w "$DEV/pg"; then
    local alt
    alt="/var/lib/hustle-dev/$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
    mkdir -p "$alt"
    chown postgres:postgres "$alt"
    rmdir "$DEV/pg" 2>/dev/null || true
    ln -sfn "$alt" "$DEV/pg"
  fi
}

pg_running() { [[ -f "$(pg_data)/postmaster.pid" ]] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(pg_data)" status >/dev/null 2>&1; }

pg_up() {
  local port
  pg_prepare_dir
  if [[ ! -f "$(pg_data)/PG_VERSION" ]]; then
    say "creating a PostgreSQL cluster in .dev/pg"
    runuser -u postgres -- "$PGBIN/initdb" -D "$(pg_data)" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  port=$(pick_port pg 55432 "${HUSTLE_PG_PORT:-}")
  if ! pg_running; then
    port_busy "$port" && die "port $port (PostgreSQL) is taken by another program; set HUSTLE_PG_PORT"
    # A disposable development cluster: durability is traded for speed (fsync off).
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(pg_data)" -l "$(pg_data)/../postgres.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
          -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
          -c shared_buffers=256MB -c work_mem=16MB -c maintenance_work_mem=256MB \
          -c max_wal_size=4GB -c checkpoint_timeout=30min" start >/dev/null
    say "PostgreSQL started on 127.0.0.1:$port"
  fi
  echo "$port" >"$DEV/pg.port"
  local url="postgresql://postgres@127.0.0.1:$port"
  if ! psql "$url/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    psql "$url/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null
  fi
  echo "export DATABASE_URL=\${DATABASE_URL:-$url/$PG_DB}" >>"$DEV/env.tmp"
}

pg_down() {
  if [[ -e "$DEV/pg" ]] && pg_running; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(pg_data)" -m fast -w stop >/dev/null
    say "PostgreSQL stopped"
  fi
}

# --- Redis --------------------------------------------------------------------------------
pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

redis_up() {
  local port
  mkdir -p "$DEV/redis"
  port=$(pick_port redis 56379 "${HUSTLE_REDIS_PORT:-}")
  if ! pid_alive "$DEV/redis/redis.pid"; then
    port_busy "$port" && die "port $port (Redis) is taken by another program; set HUSTLE_REDIS_PORT"
    # The append-only file keeps queued jobs across a restart (fsync once a second; the outbox
    # sends again whatever a crash loses, docs/RUNBOOK.md).
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$DEV/redis" \
      --pidfile "$DEV/redis/redis.pid" --logfile "$DEV/redis/redis.log" \
      --save '' --appendonly yes --appendfsync everysec >/dev/null
    wait_for_port "$port" Redis
    say "Redis started on 127.0.0.1:$port"
  fi
  echo "$port" >"$DEV/redis.port"
  echo "export REDIS_URL=\${REDIS_URL:-redis://127.0.0.1:$port/0}" >>"$DEV/env.tmp"
}

redis_down() {
  if pid_alive "$DEV/redis/redis.pid"; then
    local pid
    pid=$(cat "$DEV/redis/redis.pid")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    say "Redis stopped"
  fi
}

# --- S3 (moto's server) -------------------------------------------------------------------
s3_up() {
  local port
  mkdir -p "$DEV/s3"
  [[ -x "$VENV_BIN/moto_server" ]] || die "moto_server is missing: run 'make venv' first"
  port=$(pick_port s3 55000 "${HUSTLE_S3_PORT:-}")
  if ! pid_alive "$DEV/s3/moto.pid"; then
    port_busy "$port" && die "port $port (S3) is taken by another program; set HUSTLE_S3_PORT"
    nohup "$VENV_BIN/moto_server" -H 127.0.0.1 -p "$port" >"$DEV/s3/moto.log" 2>&1 &
    echo $! >"$DEV/s3/moto.pid"
    wait_for_port "$port" "moto's S3 server"
    say "S3 (moto) started on 127.0.0.1:$port"
  fi
  echo "$port" >"$DEV/s3.port"
  {
    echo "export S3_ENDPOINT_URL=\${S3_ENDPOINT_URL:-http://127.0.0.1:$port}"
    # moto accepts any credentials; real S3 takes them from the usual AWS chain instead.
    echo "export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-dev}"
    echo "export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-dev}"
  } >>"$DEV/env.tmp"
}

s3_down() {
  if pid_alive "$DEV/s3/moto.pid"; then
    kill "$(cat "$DEV/s3/moto.pid")"
    say "S3 (moto) stopped"
  fi
  rm -f "$DEV/s3/moto.pid"
}

status_line() {
  local name=$1 alive=$2 port_file="$DEV/$1.port"
  if $alive; then
    echo "$name: running on 127.0.0.1:$(cat "$port_file" 2>/dev/null || echo '?')"
  else
    echo "$name: stopped"
  fi
}

cmd=${1:-up}
case "$cmd" in
  up)
    mkdir -p "$DEV"
    ensure_packages
    : >"$DEV/env.tmp"
    want_pg && pg_up
    want_redis && redis_up
    want_s3 && s3_up
    mv "$DEV/env.tmp" "$DEV/env"
    ;;
  down)
    s3_down
    redis_down
    pg_down
    rm -f "$DEV/env"
    ;;
  status)
    status_line pg "$(pg_running && echo true || echo false)"
    status_line redis "$(pid_alive "$DEV/redis/redis.pid" && echo true || echo false)"
    status_line s3 "$(pid_alive "$DEV/s3/moto.pid" && echo true || echo false)"
    ;;
  *)
    die "usage: $0 up|down|status"
    ;;
esac
