#!/usr/bin/env bash
# An image registry on 127.0.0.1 for Conveyor's image CI flow (`conveyor pipeline ci`):
# Debian's `docker-registry` package (the reference distribution registry, plain HTTP),
# started on a free port chosen at `up` and kept in the cache with its storage.
# Clients push with `podman push --tls-verify=false 127.0.0.1:PORT/name:tag`.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=registry
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF2'
usage: scripts/engines/registry.sh {install|up|down|status|env}
  install  apt-get install docker-registry from the machine's Debian mirror (when missing)
  up       install, then start the registry on a free 127.0.0.1 port, wait for /v2/
  down     stop the registry (safe when not up); the stored images stay
  status   exit 0 with a one-line summary when /v2/ answers, 1 otherwise
  env      print export lines: eval "$(scripts/engines/registry.sh env)"
environment: CONVEYOR_ENGINES_HOME (cache, default ~/.cache/conveyor-engines),
  CONVEYOR_REGISTRY_PORT (default: the last port when free, else a free one; kept in the cache),
  CONVEYOR_REGISTRY_TIMEOUT (seconds, 30)
EOF2
}

RG="$ENGINES_HOME/registry"
BIN=/usr/bin/docker-registry
TIMEOUT="${CONVEYOR_REGISTRY_TIMEOUT:-30}"

# The port of the running registry (or the one it last used); empty when never up.
saved_port() { [ -f "$RG/port" ] && cat "$RG/port" || true; }

# The port of the last up when it is still free (projects' settings name it), else any.
free_port() {
    python3 - "$(saved_port)" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
try:
    s.bind(("127.0.0.1", int(sys.argv[1] or 0)))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

answers() {
    local port="$1"
    [ -n "$port" ] || return 1
    python3 - "$port" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

live_pid() { pid_if_running "$RG/registry.pid" "docker-registry"; }

cmd_install() {
    if [ -x "$BIN" ]; then
        log "docker-registry already installed ($("$BIN" --version 2>/dev/null | awk '{print $NF}'))"
        return 0
    fi
    log "apt-get install docker-registry (about 10 MB)"
    # The package's maintainer script starts a system service when it can; ours runs on
    # its own config, so a failed service start is harmless (no systemd here).
    apt_install_host docker-registry
    [ -x "$BIN" ] || die "docker-registry installed but $BIN is missing"
}

write_config() {
    local port="$1"
    mkdir -p "$RG/storage"
    cat >"$RG/config.yml.tmp" <<EOF2
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $RG/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
EOF2
    mv "$RG/config.yml.tmp" "$RG/config.yml"
}

cmd_up() {
    local port pid t0=$SECONDS deadline
    port="$(saved_port)"
    if live_pid >/dev/null && answers "$port"; then
        log "already up (127.0.0.1:$port)"
        return 0
    fi
    [ -x "$BIN" ] || cmd_install
    cmd_down >/dev/null 2>&1 || true
    port="${CONVEYOR_REGISTRY_PORT:-$(free_port)}"
    write_config "$port"
    echo "$port" >"$RG/port"
    setsid "$BIN" serve "$RG/config.yml" >>"$RG/registry.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$RG/registry.pid"
    deadline=$((SECONDS + TIMEOUT))
    until answers "$port"; do
        kill -0 "$pid" 2>/dev/null || die "docker-registry exited; see $RG/registry.log"
        [ "$SECONDS" -lt "$deadline" ] || die "registry not answering after ${TIMEOUT}s; see $RG/registry.log"
        sleep 0.3
    done
    log "up in $((SECONDS - t0)) s: 127.0.0.1:$port, storage $RG/storage"
}

cmd_down() {
    local pid
    if pid="$(live_pid)"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$RG/registry.pid"
    log "down"
}

cmd_status() {
    local port
    port="$(saved_port)"
    if live_pid >/dev/null && answers "$port"; then
        echo "registry: up, 127.0.0.1:$port, storage $RG/storage"
        return 0
    fi
    echo "registry: down"
    return 1
}

cmd_env() {
    local port
    port="$(saved_port)"
    [ -n "$port" ] || { log "never started: no CONVEYOR_TEST_REGISTRY"; return 0; }
    echo "export CONVEYOR_TEST_REGISTRY=127.0.0.1:$port"
}

engine_main "$@"
