#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for Conveyor's tests (fsync off: test data
# only). Uses the machine's PostgreSQL (Debian 12: 15), installing it when missing.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=postgres
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF'
usage: scripts/engines/postgres.sh {install|up|down|status|env}
  install  apt-get install PostgreSQL when it is missing (up does this too)
  up       initdb (once) and start on 127.0.0.1:PORT; create database conveyor_test
  down     stop the server (safe when not up); the data directory is kept
  status   exit 0 with a one-line summary when up, 1 otherwise
  env      print export lines: eval "$(scripts/engines/postgres.sh env)"
environment: CONVEYOR_PG_PORT (55432), CONVEYOR_PG_DIR (data + socket directory),
  CONVEYOR_PG_BIN (server binaries, default the newest /usr/lib/postgresql/*/bin),
  CONVEYOR_ENGINES_HOME (cache for logs, default ~/.cache/conveyor-engines),
  CONVEYOR_PG_TIMEOUT (seconds to wait for start/stop, 60)
EOF
}

PORT="${CONVEYOR_PG_PORT:-55432}"
TIMEOUT="${CONVEYOR_PG_TIMEOUT:-60}"
LOGDIR="$ENGINES_HOME/postgres"
LOG="$LOGDIR/postgres-$PORT.log"
TEST_DB=conveyor_test

find_bin() {
    if [ -n "${CONVEYOR_PG_BIN:-}" ]; then echo "$CONVEYOR_PG_BIN"; return; fi
    # Debian's layout: /usr/lib/postgresql/<major>/bin; prefer 15 (Debian 12), else newest.
    if [ -x /usr/lib/postgresql/15/bin/postgres ]; then echo /usr/lib/postgresql/15/bin; return; fi
    # Nothing there (not installed yet) is not an error: print nothing.
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true
}

cmd_install() {
    local bin
    bin="$(find_bin)"
    if [ -n "$bin" ] && [ -x "$bin/postgres" ]; then
        [ "${1:-}" = quiet ] || log "PostgreSQL already installed ($bin)"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and installing it needs root"
    log "apt-get install postgresql"
    # Keep the package from starting its default cluster on 5432: no service starts
    # while our policy-rc.d is in place (only if none exists; removed afterwards).
    POLICY_RC=/usr/sbin/policy-rc.d
    POLICY_OURS=0
    if [ ! -e "$POLICY_RC" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"; chmod 755 "$POLICY_RC"; POLICY_OURS=1
        trap 'if [ "$POLICY_OURS" = 1 ]; then rm -f "$POLICY_RC"; fi' EXIT
    fi
    apt_install_host postgresql
    if [ "$POLICY_OURS" = 1 ]; then rm -f "$POLICY_RC"; fi
    trap - EXIT
    bin="$(find_bin)"
    [ -n "$bin" ] && [ -x "$bin/postgres" ] || die "no PostgreSQL server binaries after install"
}

# initdb and the server refuse to run as root: as root, run them as 'postgres'.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Where the data directory (and the Unix socket) live. The cache dir under /root is
# not reachable by the 'postgres' user, so as root the default is a temp directory.
pg_dir() {
    if [ -n "${CONVEYOR_PG_DIR:-}" ]; then echo "$CONVEYOR_PG_DIR"; return; fi
    if [ "$(id -u)" = 0 ]; then
        echo "${TMPDIR:-/tmp}/conveyor-postgres-$PORT"
    else
        echo "$ENGINES_HOME/postgres/data-$PORT"
    fi
}

PGDIR="$(pg_dir)"
DATA="$PGDIR/data"

is_up() {
    local bin
    bin="$(find_bin)"
    [ -n "$bin" ] && [ -f "$DATA/postmaster.pid" ] || return 1
    as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1 || return 1
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 2
}

psql_admin() {
    "$(find_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}

cmd_up() {
    cmd_install quiet
    local bin t0=$SECONDS
    bin="$(find_bin)"
    if is_up; then
        log "already up on 127.0.0.1:$PORT (data $DATA)"
        return 0
    fi
    mkdir -p "$LOGDIR" "$PGDIR"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDIR"; fi
    chmod 700 "$PGDIR"
    if [ ! -f "$DATA/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$DATA" -U postgres -A trust --no-sync -E UTF8 --locale=C \
            >"$LOGDIR/initdb-$PORT.log" 2>&1 || die "initdb failed, see $LOGDIR/initdb-$PORT.log"
    fi
    [ "$(cat "$DATA/PG_VERSION")" = "$("$bin/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')" ] \
        || die "$DATA was made by PostgreSQL $(cat "$DATA/PG_VERSION"), not by $bin; remove it or set CONVEYOR_PG_DIR"
    # The log is opened here (as the caller) and inherited by the server, so it can
    # live in the cache dir even when 'postgres' cannot write there. Test-only
    # settings: loopback only, socket in our dir, no durability.
    as_owner "$bin/pg_ctl" -D "$DATA" -w -t "$TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$PGDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >>"$LOG" 2>&1 </dev/null || die "PostgreSQL did not start, see $LOG"
    if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$TEST_DB'")" ]; then
        psql_admin -c "CREATE DATABASE $TEST_DB" || die "could not create database $TEST_DB"
    fi
    log "up in $((SECONDS - t0)) s: 127.0.0.1:$PORT, data $DATA, log $LOG"
}

cmd_down() {
    local bin pid
    bin="$(find_bin)"
    if [ -n "$bin" ] && [ -f "$DATA/postmaster.pid" ]; then
        pid="$(head -1 "$DATA/postmaster.pid")"
        as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t "$TIMEOUT" stop >>"$LOG" 2>&1 || true
        # pg_ctl failed or timed out: SIGQUIT (immediate shutdown), then SIGKILL.
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    log "down"
}

cmd_status() {
    if is_up; then
        echo "postgres: up, 127.0.0.1:$PORT, data $DATA, pid $(head -1 "$DATA/postmaster.pid")"
        return 0
    fi
    echo "postgres: down"
    return 1
}

cmd_env() {
    cat <<EOF
export CONVEYOR_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres
export CONVEYOR_TEST_DATABASE_NAME=$TEST_DB
EOF
}

engine_main "$@"
