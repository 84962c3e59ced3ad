#!/usr/bin/env bash
# A real Dask cluster (one scheduler, one worker process with two threads) on 127.0.0.1
# for Conveyor's Dask executor tests. Installs dask[distributed] from PyPI when missing.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=dask
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF2'
usage: scripts/engines/dask.sh {install|up|down|status|env}
  install  pip install dask[distributed] into the current Python (skipped when importable)
  up       start `dask scheduler` and one `dask worker` on 127.0.0.1, wait until registered
  down     stop the worker and the scheduler (safe when not up)
  status   exit 0 with a one-line summary when up, 1 otherwise
  env      print export lines for clients: eval "$(scripts/engines/dask.sh env)"
environment: CONVEYOR_ENGINES_HOME (cache, default ~/.cache/conveyor-engines),
  CONVEYOR_DASK_PORT (8786), CONVEYOR_DASK_DASHBOARD_PORT (8787),
  CONVEYOR_DASK_NTHREADS (2), CONVEYOR_DASK_TIMEOUT (seconds, 60),
  CONVEYOR_DASK_RESOURCES (the worker's --resources, default CPU=<threads>,MEMORY=<RAM bytes>),
  CONVEYOR_DASK_SPEC (pip requirement, dask[distributed]), PYTHON (python3)
EOF2
}

DK="$ENGINES_HOME/dask"
LOGDIR="$DK/logs"
PORT="${CONVEYOR_DASK_PORT:-8786}"
DASHBOARD_PORT="${CONVEYOR_DASK_DASHBOARD_PORT:-8787}"
NTHREADS="${CONVEYOR_DASK_NTHREADS:-2}"
TIMEOUT="${CONVEYOR_DASK_TIMEOUT:-60}"
DASK_SPEC="${CONVEYOR_DASK_SPEC:-dask[distributed]}"
# The real interpreter, not a shim: the daemons run as `python -m distributed.cli...`.
PYTHON="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)' 2>/dev/null)" \
    || die "no working ${PYTHON:-python3} (set PYTHON)"
ADDRESS="tcp://127.0.0.1:$PORT"
# What the worker declares, so steps' `resources` (cpus, memory) are counted as Conveyor
# asks for them (a step asking for a GPU finds none and fails with the reason).
MEM_KB="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null)"
RESOURCES="${CONVEYOR_DASK_RESOURCES:-CPU=$NTHREADS,MEMORY=$((${MEM_KB:-0} * 1024))}"

cmd_install() {
    pip_install_missing distributed "$DASK_SPEC"
}

# pid from a pid file, only if that process is still the Dask daemon of that role.
live_pid() { pid_if_running "$DK/$1.pid" "distributed.cli.dask_$1"; }

# Threads of the workers registered with the scheduler (0 when unreachable).
worker_threads() {
    "$PYTHON" - "$ADDRESS" <<'PY' 2>/dev/null || echo 0
import sys
from distributed import Client
with Client(sys.argv[1], timeout=5) as c:
    print(sum(w["nthreads"] for w in c.scheduler_info()["workers"].values()))
PY
}

# Start one daemon in the background, detached from this shell; $! is its Python.
start_daemon() {
    local role="$1"; shift
    setsid "$PYTHON" -m "distributed.cli.dask_$role" "$@" \
        >>"$LOGDIR/$role.log" 2>&1 </dev/null &
    echo $! >"$DK/$role.pid"
}

port_open() { "$PYTHON" -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; }
workers_ready() { [ "$(worker_threads)" -gt 0 ]; }

wait_until() {
    local what="$1" pid="$2" check="$3" deadline=$((SECONDS + TIMEOUT))
    until "$check"; do
        kill -0 "$pid" 2>/dev/null || die "$what exited; see $LOGDIR/"
        [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${TIMEOUT}s; see $LOGDIR/ (run: dask.sh down)"
        sleep 0.5
    done
}

cmd_up() {
    if live_pid scheduler >/dev/null && live_pid worker >/dev/null && workers_ready; then
        log "already up ($ADDRESS)"
        return 0
    fi
    "$PYTHON" -c 'import distributed' 2>/dev/null || die "distributed is not importable by $PYTHON; run: scripts/engines/dask.sh install"
    local t0=$SECONDS pid
    cmd_down >/dev/null 2>&1 || true   # a half-up cluster is restarted whole
    rm -rf "$DK/work"
    mkdir -p "$LOGDIR" "$DK/work"
    # loopback only: the scheduler has no authentication (TLS would be a site's choice)
    start_daemon scheduler --host 127.0.0.1 --port "$PORT" \
        --dashboard-address "127.0.0.1:$DASHBOARD_PORT"
    pid="$(cat "$DK/scheduler.pid")"
    wait_until "dask scheduler" "$pid" port_open
    start_daemon worker "$ADDRESS" --host 127.0.0.1 --nworkers 1 --nthreads "$NTHREADS" \
        --no-dashboard --local-directory "$DK/work" --no-nanny --resources "$RESOURCES"
    pid="$(cat "$DK/worker.pid")"
    wait_until "dask worker" "$pid" workers_ready
    # the cluster's packages are this interpreter's: a client whose versions differ
    # (pandas in one venv, not the other) gets Dask's VersionMismatchWarning
    echo "$PYTHON" > "$DK/python"
    log "up in $((SECONDS - t0)) s: $ADDRESS, $NTHREADS threads, on $PYTHON, dashboard http://127.0.0.1:$DASHBOARD_PORT, logs in $LOGDIR"
}

stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
    local role pid
    for role in worker scheduler; do
        if pid="$(live_pid "$role")"; then stop_pid "$pid"; fi
        rm -f "$DK/$role.pid"
    done
    rm -f "$DK/python"
    log "down"
}

cmd_status() {
    local s w n
    if s="$(live_pid scheduler)" && w="$(live_pid worker)"; then
        n="$(worker_threads)"
        if [ "$n" -gt 0 ]; then
            echo "dask: up, $ADDRESS, scheduler pid $s, worker pid $w, $n thread(s), on $(cat "$DK/python" 2>/dev/null || echo "an unknown python"), dashboard http://127.0.0.1:$DASHBOARD_PORT"
            return 0
        fi
        echo "dask: scheduler and worker running but no worker registered"
        return 1
    fi
    echo "dask: down"
    return 1
}

cmd_env() {
    echo "export CONVEYOR_DASK_SCHEDULER=$ADDRESS"
}

engine_main "$@"
