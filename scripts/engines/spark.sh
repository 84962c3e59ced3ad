#!/usr/bin/env bash
# A real Spark standalone cluster (one master, one worker) on 127.0.0.1 for Conveyor's
# tests and for trying the batch path on a laptop. Uses the pyspark wheel's own Spark
# (no separate Spark download: only PyPI is reachable) and the machine's Java 17.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=spark
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF'
usage: scripts/engines/spark.sh {install|up|down|status|env}
  install  pip install pyspark into the current Python (skipped when importable);
           apt-get install a Java 17 runtime when java is missing
  up       start a standalone master + one worker on 127.0.0.1, wait until registered
  down     stop the worker and the master (safe when not up)
  status   exit 0 with a one-line summary when up, 1 otherwise
  env      print export lines for clients: eval "$(scripts/engines/spark.sh env)"
environment: CONVEYOR_ENGINES_HOME (cache, default ~/.cache/conveyor-engines),
  CONVEYOR_SPARK_PORT (7077), CONVEYOR_SPARK_WEBUI_PORT (8080),
  CONVEYOR_SPARK_WORKER_WEBUI_PORT (8081), CONVEYOR_SPARK_WORKER_CORES (2),
  CONVEYOR_SPARK_WORKER_MEMORY (2g), CONVEYOR_SPARK_TIMEOUT (seconds, 90),
  CONVEYOR_PYSPARK_SPEC (pip requirement, pyspark==4.3.0), PYTHON (python3)
EOF
}

SP="$ENGINES_HOME/spark"
LOGDIR="$SP/logs"
PORT="${CONVEYOR_SPARK_PORT:-7077}"
WEBUI_PORT="${CONVEYOR_SPARK_WEBUI_PORT:-8080}"
WORKER_WEBUI_PORT="${CONVEYOR_SPARK_WORKER_WEBUI_PORT:-8081}"
WORKER_CORES="${CONVEYOR_SPARK_WORKER_CORES:-2}"
WORKER_MEMORY="${CONVEYOR_SPARK_WORKER_MEMORY:-2g}"
TIMEOUT="${CONVEYOR_SPARK_TIMEOUT:-90}"
PYSPARK_SPEC="${CONVEYOR_PYSPARK_SPEC:-pyspark==4.3.0}"
# The real interpreter, not a pyenv shim: executors start it for every Python worker.
PYTHON="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)' 2>/dev/null)" \
    || die "no working ${PYTHON:-python3} (set PYTHON)"
MASTER_URL="spark://127.0.0.1:$PORT"

spark_home() {
    "$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null \
        || die "pyspark is not importable by $PYTHON; run: scripts/engines/spark.sh install"
}

cmd_install() {
    if ! command -v java >/dev/null; then
        # pyspark 4 needs Java 17+; Debian 12 ships openjdk-17.
        [ "$(id -u)" = 0 ] || die "java is missing; install a Java 17 runtime (needs root)"
        log "apt-get install openjdk-17-jre-headless"
        apt_install_host openjdk-17-jre-headless
    fi
    pip_install_missing pyspark "$PYSPARK_SPEC" "about 45 s, about 490 MB"
}

# pid from a pid file, only if that process is still a JVM running the given class.
live_pid() { pid_if_running "$SP/$1.pid" "org.apache.spark.deploy.${1,,}.$1"; }

# Number of ALIVE workers per the master's web UI JSON (0 when unreachable).
alive_workers() {
    "$PYTHON" - "$WEBUI_PORT" <<'EOF' 2>/dev/null || echo 0
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json", timeout=2) as r:
    print(json.load(r).get("aliveworkers", 0))
EOF
}

# Start one Spark daemon in the background, detached from this shell.
start_daemon() {
    local role="$1"; shift
    # No REST submission server (unauthenticated, and nothing here uses it). No port
    # retries: a busy port fails fast instead of silently moving to the next one.
    # spark-class execs java, so $! is the JVM's pid.
    setsid env SPARK_HOME="$SPARK_HOME" SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$PYTHON" \
        SPARK_CONF_DIR="$SP/conf" SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false" \
        SPARK_DAEMON_JAVA_OPTS="-Dspark.port.maxRetries=0" \
        "$SPARK_HOME/bin/spark-class" "org.apache.spark.deploy.${role,,}.$role" "$@" \
        >>"$LOGDIR/${role,,}.log" 2>&1 </dev/null &
    echo $! >"$SP/$role.pid"
}

# The master's JSON answers and names our URL (not some other server on the UI port).
master_ready() {
    "$PYTHON" - "$WEBUI_PORT" "$MASTER_URL" <<'EOF' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json", timeout=2) as r:
    sys.exit(0 if json.load(r).get("url") == sys.argv[2] else 1)
EOF
}

worker_ready() { [ "$(alive_workers)" -gt 0 ]; }

# wait_until WHAT PID CHECK_FUNCTION: bounded poll, failing early if the daemon died.
wait_until() {
    local what="$1" pid="$2" check="$3" deadline=$((SECONDS + TIMEOUT))
    until "$check"; do
        kill -0 "$pid" 2>/dev/null || die "$what exited; see $LOGDIR/"
        [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${TIMEOUT}s; see $LOGDIR/ (run: spark.sh down)"
        sleep 0.5
    done
}

cmd_up() {
    if live_pid Master >/dev/null && live_pid Worker >/dev/null && [ "$(alive_workers)" -gt 0 ]; then
        log "already up ($MASTER_URL)"
        return 0
    fi
    command -v java >/dev/null || die "java is missing; run: scripts/engines/spark.sh install"
    SPARK_HOME="$(spark_home)"
    local t0=$SECONDS pid
    # Start from a clean slate: a half-up cluster (one daemon died) is restarted whole.
    cmd_down >/dev/null 2>&1 || true
    # Executor dirs (stdout/stderr per application) of earlier runs: keep the cache small.
    rm -rf "$SP/work"
    mkdir -p "$LOGDIR" "$SP/work" "$SP/conf"
    start_daemon Master --host 127.0.0.1 --port "$PORT" --webui-port "$WEBUI_PORT"
    pid="$(cat "$SP/Master.pid")"
    wait_until "spark master" "$pid" master_ready
    start_daemon Worker --host 127.0.0.1 --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
        --webui-port "$WORKER_WEBUI_PORT" --work-dir "$SP/work" "$MASTER_URL"
    pid="$(cat "$SP/Worker.pid")"
    wait_until "spark worker" "$pid" worker_ready
    log "up in $((SECONDS - t0)) s: $MASTER_URL, web UI http://127.0.0.1:$WEBUI_PORT, logs in $LOGDIR"
}

stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
    local role pid
    for role in Worker Master; do    # worker first, so it does not try to reconnect
        if pid="$(live_pid "$role")"; then stop_pid "$pid"; fi
        rm -f "$SP/$role.pid"
    done
    log "down"
}

cmd_status() {
    local m w n
    if m="$(live_pid Master)" && w="$(live_pid Worker)"; then
        n="$(alive_workers)"
        if [ "$n" -gt 0 ]; then
            echo "spark: up, $MASTER_URL, master pid $m, worker pid $w, $n alive worker(s), web UI http://127.0.0.1:$WEBUI_PORT"
            return 0
        fi
        echo "spark: master and worker running but no alive worker registered"
        return 1
    fi
    echo "spark: down"
    return 1
}

cmd_env() {
    cat <<EOF
export CONVEYOR_SPARK_MASTER=$MASTER_URL
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON=$PYTHON
export PYSPARK_DRIVER_PYTHON=$PYTHON
EOF
    # SPARK_HOME only when pyspark is there; clients work without it too.
    local home
    if home="$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)"; then
        echo "export SPARK_HOME=$home"
    fi
}

engine_main "$@"
