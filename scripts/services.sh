#!/usr/bin/env bash
# Private development services for this checkout, kept under .dev/:
#   PostgreSQL 15 + PostGIS (run as the non-root `postgres` user), Redis, and moto's S3 server;
#   and, when it runs both PostgreSQL and S3, WAL archiving and backups with pgBackRest into
#   that S3 (docs/RUNBOOK.md).
#
#   scripts/services.sh up      start what is not running yet (a second call reuses it) and
#                               write .dev/env, the variables that point at them
#   scripts/services.sh down    stop what `up` started
#   scripts/services.sh status  say what runs where
#   scripts/services.sh clean   stop, then delete their data (.dev/, and a cluster kept
#                               outside the checkout for a private home: see PostgreSQL below)
#
# A service is started only when its variable (DATABASE_URL, REDIS_URL, S3_ENDPOINT_URL) is
# unset in the environment and in .env.local: a set variable means "use that one instead".
# Ports: HUSTLE_PG_PORT, HUSTLE_REDIS_PORT, HUSTLE_S3_PORT and HUSTLE_S3_TLS_PORT (S3 over
# TLS, for pgBackRest) choose them; otherwise a default is used when free and a free port is
# picked when not. The chosen port is kept in .dev/ so that the next `up` finds the same
# service again.
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
# Backups need a repository: the local S3 when this script runs it (else archiving stays off).
want_backups() { want_pg && want_s3; }

STANZA=hustle
BACKUP_BUCKET=hustle-backups

# env_line NAME VALUE: a line for .dev/env that keeps NAME when it is set already.
env_line() { printf 'export %s="${%s:-%s}"\n' "$1" "$1" "$2"; }

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
    command -v pgbackrest >/dev/null || missing+=(pgbackrest)
  fi
  if want_redis; then
    command -v redis-server >/dev/null || missing+=(redis-server)
  fi
  if want_s3; then
    command -v stunnel4 >/dev/null || missing+=(stunnel4)
    command -v openssl >/dev/null || missing+=(openssl)
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
# PostgreSQL runs as the `postgres` user, so every path it is given (data folder, log file,
# socket folder, configuration) must be one that user can reach, and it must run from a
# working directory it can enter. A checkout under a private home (mode 700, as /root is), or
# under any folder `postgres` cannot traverse, cannot give it that: its cluster then lives in
# /var/lib/hustle-dev/<key> instead, .dev/pg is a symlink there for people, and PostgreSQL
# only ever sees the real path. The socket folder (for tools that need a socket, such as
# pgBackRest) is always short and under /run, since a socket's path is limited to 107 bytes.
KEY=$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)
PG_HOME=""  # set by pg_locate or pg_prepare_dir
PG_SOCKET_DIR="/run/hustle-dev/$KEY"

# as_postgres CMD ...: run CMD as the postgres user, from a folder it can enter.
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# pg_locate: this checkout's cluster home, if it has one (sets PG_HOME; else returns 1).
pg_locate() {
  if [[ -L "$DEV/pg" ]]; then
    PG_HOME=$(readlink -f "$DEV/pg")
  elif [[ -d "$DEV/pg" ]]; then
    PG_HOME="$DEV/pg"
  else
    return 1
  fi
}

pg_prepare_dir() {
  if [[ -L "$DEV/pg" ]]; then
    pg_locate
    mkdir -p "$PG_HOME"
    chown postgres:postgres "$PG_HOME"
  else
    mkdir -p "$DEV/pg"
    chown postgres:postgres "$DEV/pg"
    if as_postgres test -w "$DEV/pg" -a -x "$DEV/pg"; then
      PG_HOME="$DEV/pg"
    else
      PG_HOME="/var/lib/hustle-dev/$KEY"
      rmdir "$DEV/pg" 2>/dev/null ||
        die "$DEV/pg is not empty, and the postgres user cannot reach it: move it away and retry"
      mkdir -p "$PG_HOME"
      chmod 755 /var/lib/hustle-dev
      chown postgres:postgres "$PG_HOME"
      ln -s "$PG_HOME" "$DEV/pg"
      say "the postgres user cannot reach $DEV: the cluster lives in $PG_HOME (.dev/pg links there)"
    fi
  fi
  # archive_command names a path under PG_HOME in shell double quotes, in a quoted setting
  [[ "$PG_HOME" != *[\'\"\$\`\\]* ]] ||
    die "the cluster's path may not contain ', \", \$, \` or \\: $PG_HOME"
  mkdir -p "$PG_SOCKET_DIR"
  chown postgres:postgres "$PG_SOCKET_DIR"
  chmod 700 "$PG_SOCKET_DIR"
}

pg_data() { echo "$PG_HOME/data"; }

pg_running() {
  [[ -n "$PG_HOME" ]] || pg_locate || return 1
  [[ -f "$(pg_data)/postmaster.pid" ]] &&
    as_postgres "$PGBIN/pg_ctl" -D "$(pg_data)" status >/dev/null 2>&1
}

# This development cluster's settings: written before each start into a file that
# postgresql.conf includes, so that no path has to pass through a shell command line.
pg_write_conf() {
  local port=$1 conf
  conf="$(pg_data)/hustle-dev.conf"
  cat >"$conf" <<EOF
# Written by scripts/services.sh before each start: change the script, not this file.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 300
# A disposable development cluster: durability is traded for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
EOF
  if want_backups; then
    cat >>"$conf" <<EOF
# WAL archiving through pgBackRest to the local S3; a forced segment switch at least every
# 60 s bounds what a restore can lose (RPO). See docs/RUNBOOK.md.
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config="$(br_conf)" --stanza=$STANZA archive-push "%p"'
archive_timeout = 60
EOF
  else
    echo "archive_mode = off  # no local S3 here: no repository for pgBackRest" >>"$conf"
  fi
  chown postgres:postgres "$conf"
  grep -qxF "include_if_exists = 'hustle-dev.conf'" "$(pg_data)/postgresql.conf" ||
    echo "include_if_exists = 'hustle-dev.conf'" >>"$(pg_data)/postgresql.conf"
}

pg_up() {
  local port
  pg_prepare_dir
  if [[ ! -f "$(pg_data)/PG_VERSION" ]]; then
    say "creating a PostgreSQL cluster in $(pg_data)"
    as_postgres "$PGBIN/initdb" -D "$(pg_data)" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
      --no-sync >/dev/null # a development cluster (it runs with fsync off too)
  fi
  port=$(pick_port pg 55432 "${HUSTLE_PG_PORT:-}")
  if pg_running && ! pg_current_setup "$port"; then
    # started by an older version of this script (another socket folder, no archiving)
    say "restarting PostgreSQL: it runs with the settings of an older set-up"
    pg_down
  fi
  if ! pg_running; then
    port_busy "$port" && die "port $port (PostgreSQL) is taken by another program; set HUSTLE_PG_PORT"
    pg_write_conf "$port"
    local recovering=0 # asked before the start: a short recovery can be over when pg_ctl returns
    [[ -f "$(pg_data)/recovery.signal" ]] && recovering=1
    as_postgres "$PGBIN/pg_ctl" -D "$(pg_data)" -l "$PG_HOME/postgres.log" -w -t 60 start >/dev/null ||
      die "PostgreSQL did not start: see $PG_HOME/postgres.log"
    say "PostgreSQL started on 127.0.0.1:$port"
    ((recovering)) && pg_wait_recovered
  fi
  echo "$port" >"$DEV/pg.port"
  local url="postgresql://postgres@127.0.0.1:$port"
  if ! psql "$url/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    psql "$url/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null
  fi
  echo "export DATABASE_URL=\${DATABASE_URL:-$url/$PG_DB}" >>"$DEV/env.tmp"
}

# Whether the running cluster has this script's settings (its socket folder says so).
pg_current_setup() {
  local found
  found=$(psql "postgresql://postgres@127.0.0.1:$1/postgres" -Atqc "SHOW unix_socket_directories" 2>/dev/null) ||
    return 0 # cannot ask: leave it alone
  [[ "$found" == "$PG_SOCKET_DIR" ]]
}

# After `python -m server restore` (in place) the cluster replays WAL up to its target when
# it starts, then promotes and deletes recovery.signal: wait for that before using it.
pg_wait_recovered() {
  local i
  say "PostgreSQL is recovering to a restore's target: waiting until it is done"
  for ((i = 0; i < 36000; i++)); do
    [[ -f "$(pg_data)/recovery.signal" ]] || { say "recovery done"; return 0; }
    pg_running || die "PostgreSQL stopped while recovering: see $PG_HOME/postgres.log"
    sleep 0.1
  done
  die "PostgreSQL did not finish recovering within an hour: see $PG_HOME/postgres.log"
}

pg_down() {
  if pg_running; then
    # A fast stop waits for the archiver to store the WAL segments still pending; when it
    # cannot (S3 gone), stop at once: PostgreSQL recovers from its own WAL at the next start.
    if ! as_postgres "$PGBIN/pg_ctl" -D "$(pg_data)" -m fast -w -t 30 stop >/dev/null 2>&1; then
      say "PostgreSQL did not stop within 30 s (WAL archiving stuck?): stopping it immediately"
      as_postgres "$PGBIN/pg_ctl" -D "$(pg_data)" -m immediate -w stop >/dev/null
    fi
    say "PostgreSQL stopped"
  fi
}

# --- Backups (pgBackRest) -----------------------------------------------------------------
# pgBackRest runs as postgres too (archive_command): its configuration, log, lock and spool
# folders live beside the cluster, under PG_HOME. Its repository is the local S3 through the
# TLS endpoint (pgBackRest speaks only HTTPS to S3), bucket hustle-backups, path /pgbackrest.
br_dir() { echo "$PG_HOME/pgbackrest"; }
br_conf() { echo "$(br_dir)/pgbackrest.conf"; }

# The stanza, created when the repository has none yet (a new cluster, or a moto that was
# restarted). Asking first matters: stanza-create needs the archive lock, which pgBackRest's
# asynchronous archiver holds while it pushes WAL.
br_stanza() {
  local code out i
  code=$(as_postgres pgbackrest --config="$(br_conf)" --stanza=$STANZA --output=json info 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["status"]["code"])' 2>/dev/null) ||
    code=unknown
  case "$code" in
    0 | 2 | 6) return 0 ;; # ok, no backup yet, a backup running
  esac
  for ((i = 0; i < 30; i++)); do
    out=$(as_postgres pgbackrest --config="$(br_conf)" --stanza=$STANZA \
      --log-level-console=error stanza-create 2>&1) && return 0
    [[ "$out" == *"[050]"* ]] || break # anything but "lock held": no use waiting
    sleep 1
  done
  die "pgBackRest could not create its stanza (WAL archiving would fail): $out
(a cluster created anew while S3 kept an older one's backups? 'scripts/services.sh down',
then 'up' again starts S3 empty)"
}

backup_up() {
  local dir pg_port tls_port out
  dir=$(br_dir)
  pg_port=$(cat "$DEV/pg.port")
  tls_port=$(cat "$DEV/s3tls.port")
  mkdir -p "$dir/log" "$dir/lock" "$dir/spool"
  cp "$DEV/s3/tls/cert.pem" "$dir/s3-ca.pem"
  cat >"$(br_conf)" <<EOF
# Written by scripts/services.sh at each start: change the script, not this file.
[global]
repo1-type=s3
repo1-s3-endpoint=localhost
repo1-storage-port=$tls_port
repo1-storage-ca-file=$dir/s3-ca.pem
repo1-s3-uri-style=path
repo1-s3-bucket=$BACKUP_BUCKET
repo1-s3-region=us-east-1
repo1-s3-key=dev
repo1-s3-key-secret=dev
repo1-path=/pgbackrest
# small files travel in bundles: one S3 request per bundle, not per file
repo1-bundle=y
# keep every backup (and the WAL) needed to restore to any time in the last 7 days
repo1-retention-full-type=time
repo1-retention-full=7
compress-type=lz4
process-max=2
start-fast=y
# WAL moves in the background, several segments at a time: a restore's replay prefetches
# them instead of fetching each one when PostgreSQL asks for it
archive-async=y
archive-get-queue-max=1GiB
log-path=$dir/log
lock-path=$dir/lock
spool-path=$dir/spool
log-level-file=info

[$STANZA]
pg1-path=$PG_HOME/data
pg1-port=$pg_port
pg1-socket-path=$PG_SOCKET_DIR
pg1-user=postgres
EOF
  chown -R postgres:postgres "$dir"
  chmod 700 "$dir"
  chmod 600 "$(br_conf)"
  # moto keeps its objects in memory: after a restart the bucket (and the stanza) are new.
  # (moto takes an unsigned request; "already yours" is fine.)
  python3 - "http://127.0.0.1:$(cat "$DEV/s3.port")/$BACKUP_BUCKET" <<'EOF'
import sys
import urllib.error
import urllib.request

try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="PUT"), timeout=30)
except urllib.error.HTTPError as exc:
    if exc.code != 409:
        raise SystemExit(f"services: could not create the backup bucket: {exc}") from None
EOF
  br_stanza
  {
    env_line PGBACKREST_CONFIG "$(br_conf)"
    env_line PGBACKREST_STANZA "$STANZA"
  } >>"$DEV/env.tmp"
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

# pgBackRest speaks only HTTPS to S3. moto can serve TLS itself, but its web server ends every
# response with "Connection: close" and drops the TLS session without a close_notify, which
# pgBackRest rejects ("unexpected eof while reading") for body-less replies such as PUT's.
# stunnel in front of moto's plain port closes TLS sessions properly; both ports reach the
# same moto, so the app and pgBackRest share one S3. Certificate: self-signed, for localhost.
s3_tls_up() {
  local port tls="$DEV/s3/tls"
  port=$(pick_port s3tls 55443 "${HUSTLE_S3_TLS_PORT:-}")
  if [[ ! -f "$tls/cert.pem" ]]; then
    mkdir -p "$tls"
    chmod 700 "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
    cat "$tls/key.pem" "$tls/cert.pem" >"$tls/stunnel.pem"
    chmod 600 "$tls/key.pem" "$tls/stunnel.pem"
  fi
  if ! pid_alive "$DEV/s3/stunnel.pid"; then
    port_busy "$port" && die "port $port (S3 over TLS) is taken by another program; set HUSTLE_S3_TLS_PORT"
    cat >"$DEV/s3/stunnel.conf" <<EOF
foreground = no
pid = $DEV/s3/stunnel.pid
output = $DEV/s3/stunnel.log
[s3]
accept = 127.0.0.1:$port
connect = 127.0.0.1:$(cat "$DEV/s3.port")
cert = $tls/stunnel.pem
EOF
    stunnel4 "$DEV/s3/stunnel.conf" || die "stunnel did not start: see .dev/s3/stunnel.log"
    wait_for_port "$port" "stunnel (S3 over TLS)"
    say "S3 over TLS (stunnel) on 127.0.0.1:$port"
  fi
  echo "$port" >"$DEV/s3tls.port"
}

s3_down() {
  if pid_alive "$DEV/s3/stunnel.pid"; then
    kill "$(cat "$DEV/s3/stunnel.pid")"
    say "S3 over TLS (stunnel) stopped"
  fi
  rm -f "$DEV/s3/stunnel.pid"
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
    want_s3 && s3_up && s3_tls_up
    want_backups && backup_up
    mv "$DEV/env.tmp" "$DEV/env"
    ;;
  down)
    pg_down # first: its archiver sends the last WAL segments to S3 as it stops
    redis_down
    s3_down
    rm -f "$DEV/env"
    ;;
  clean)
    "$0" down
    if [[ -L "$DEV/pg" ]] && pg_locate && [[ "$PG_HOME" == /var/lib/hustle-dev/?* ]]; then
      rm -rf "$PG_HOME"
    fi
    rm -rf "$PG_SOCKET_DIR" "$DEV"
    ;;
  status)
    status_line pg "$(pg_running && echo true || echo false)"
    status_line redis "$(pid_alive "$DEV/redis/redis.pid" && echo true || echo false)"
    status_line s3 "$(pid_alive "$DEV/s3/moto.pid" && echo true || echo false)"
    status_line s3tls "$(pid_alive "$DEV/s3/stunnel.pid" && echo true || echo false)"
    ;;
  *)
    die "usage: $0 up|down|status|clean"
    ;;
esac
