#!/usr/bin/env bash
# A real single-machine HTCondor pool for Conveyor's tests and for trying the batch
# path on a laptop. Debian 12 has no HTCondor package, so the pool runs inside a
# Debian 13 (trixie) chroot; clients on the host reach it on 127.0.0.1 with an IDTOKEN.
# Needs root (debootstrap, chroot, mount). See /work/shared/ENGINES.md for the facts.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=htcondor
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF'
usage: scripts/engines/htcondor.sh {install|up|down|status|env|run CMD...}
  install  debootstrap a trixie chroot with condor + minicondor (cached), pip htcondor
  up       mount, configure and start the pool on 127.0.0.1; write the client config
  down     stop the daemons and unmount (safe when not up)
  status   exit 0 with a one-line summary when up, 1 otherwise
  env      print export lines for clients: eval "$(scripts/engines/htcondor.sh env)"
  run      run CMD inside the chroot as the submit user, in the current directory
           (which must be under /tmp, the only directory shared with the chroot)
environment: CONVEYOR_ENGINES_HOME (cache, default ~/.cache/conveyor-engines),
  CONVEYOR_HTCONDOR_USER (submit user, default conveyor),
  CONVEYOR_HTCONDOR_PORT (collector port, default 9618),
  CONVEYOR_HTCONDOR_TIMEOUT (seconds to wait for the pool, default 90)
EOF
}

HC="$ENGINES_HOME/htcondor"
ROOT="$HC/root"                      # the chroot; complete only when $MARKER exists
MARKER="$ROOT/.conveyor-chroot-complete"
CLIENT="$HC/client"                  # host-side client config + token dir
PIDFILE="$HC/master.pid"
LOGDIR="$HC/logs"
SUBMIT_USER="${CONVEYOR_HTCONDOR_USER:-conveyor}"
PORT="${CONVEYOR_HTCONDOR_PORT:-9618}"
TIMEOUT="${CONVEYOR_HTCONDOR_TIMEOUT:-90}"
SUITE=trixie
# Both APIs (htcondor, htcondor2) and a 23.x client for the 23.9 daemons; the 25.x
# wheels have only htcondor2 and their FS auth fails against 23.9.
HTCONDOR_PIP_SPEC="htcondor==23.10.29"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mount need it)"; }

# Run a command in the chroot. CONDOR_CONFIG from a client env would make the
# daemons and tools read the host client config (the master then silently exits).
in_root() { env -u CONDOR_CONFIG chroot "$ROOT" "$@"; }

# Mount points under the chroot, deepest first (read from the kernel, not remembered).
mounts_under_root() {
    local real
    real="$(realpath -m "$ROOT")"
    awk -v r="$real" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo \
        | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2-
}

unmount_all() {
    local m
    while IFS= read -r m; do
        [ -n "$m" ] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
    done <<<"$(mounts_under_root)"
    # Check twice over: a bind mount of /tmp or /dev left behind would make rm -rf deadly.
    [ -z "$(mounts_under_root)" ] || die "still mounted under $ROOT: $(mounts_under_root | tr '\n' ' ')"
}

mount_all() {
    local real
    real="$(realpath "$ROOT")"
    mountpoint -q "$real/proc"    || mount -t proc proc "$real/proc"
    mountpoint -q "$real/dev"     || mount --bind /dev "$real/dev"
    mountpoint -q "$real/dev/pts" || mount --bind /dev/pts "$real/dev/pts"
    # Shared /tmp: plain condor_submit from host scratch dirs (spool mode needs none).
    mountpoint -q "$real/tmp"     || mount --bind /tmp "$real/tmp"
}

cmd_install() {
    need_root
    if [ -f "$MARKER" ]; then
        log "chroot already installed at $ROOT"
    else
        local t0=$SECONDS partial="$HC/root.partial" mirror
        mkdir -p "$HC"
        # Leftovers of an interrupted install: unmount first, never rm through a bind mount.
        if [ -e "$partial" ]; then
            ROOT="$partial" unmount_all
            rm -rf --one-file-system "$partial"
        fi
        if [ -e "$ROOT" ]; then
            unmount_all
            rm -rf --one-file-system "$ROOT"
        fi
        command -v debootstrap >/dev/null || apt_install_host debootstrap
        mirror="$(debian_mirror)"
        log "debootstrap $SUITE into $partial (about a minute)"
        debootstrap --variant=minbase "$SUITE" "$partial" "$mirror" \
            >"$HC/debootstrap.log" 2>&1 </dev/null \
            || die "debootstrap failed, see $HC/debootstrap.log"
        # Inside the chroot: DNS, no service starts, and tolerate a frozen mirror's
        # old Release files (the host apt is configured the same way).
        cp /etc/resolv.conf "$partial/etc/resolv.conf" 2>/dev/null || true
        cp /etc/hosts "$partial/etc/hosts"
        printf '#!/bin/sh\nexit 101\n' >"$partial/usr/sbin/policy-rc.d"
        chmod 755 "$partial/usr/sbin/policy-rc.d"
        printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
            >"$partial/etc/apt/apt.conf.d/99conveyor"
        mount -t proc proc "$partial/proc"
        mount --bind /dev "$partial/dev"
        trap 'ROOT="$HC/root.partial" unmount_all' EXIT
        log "apt-get install condor minicondor inside the chroot"
        if ! { env -u CONDOR_CONFIG chroot "$partial" apt-get update -qq \
               && env -u CONDOR_CONFIG chroot "$partial" apt-get install -y -qq \
                    --no-install-recommends condor minicondor \
               && env -u CONDOR_CONFIG chroot "$partial" apt-get clean; } \
               >"$HC/apt-chroot.log" 2>&1 </dev/null; then
            die "apt-get inside the chroot failed, see $HC/apt-chroot.log"
        fi
        ROOT="$partial" unmount_all
        trap - EXIT
        touch "$partial/.conveyor-chroot-complete"
        mv "$partial" "$ROOT"
        log "chroot ready in $((SECONDS - t0)) s: $(in_root condor_version | head -1)"
    fi
    # Host-side Python bindings (htcondor2 API) for tests and users.
    if ! "$PYTHON" -c 'import htcondor2' >/dev/null 2>&1; then
        log "pip install $HTCONDOR_PIP_SPEC"
        "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$HTCONDOR_PIP_SPEC" </dev/null \
            || die "pip install $HTCONDOR_PIP_SPEC failed"
    fi
}

master_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = condor_master ] || return 1
    echo "$pid"
}

# Same name and uid on host and in the chroot: job files and ownership agree on both sides.
ensure_user() {
    local uid gid
    if ! getent passwd "$SUBMIT_USER" >/dev/null; then
        useradd --create-home --user-group --shell /bin/sh "$SUBMIT_USER"
    fi
    uid="$(id -u "$SUBMIT_USER")"; gid="$(id -g "$SUBMIT_USER")"
    [ "$uid" != 0 ] || die "submit user $SUBMIT_USER must not be root (root cannot own jobs)"
    if ! in_root getent group "$SUBMIT_USER" >/dev/null; then
        in_root groupadd --gid "$gid" "$SUBMIT_USER"
    fi
    if ! in_root getent passwd "$SUBMIT_USER" >/dev/null; then
        in_root useradd --uid "$uid" --gid "$gid" --create-home --shell /bin/sh "$SUBMIT_USER"
    fi
    [ "$(in_root id -u "$SUBMIT_USER")" = "$uid" ] \
        || die "user $SUBMIT_USER has a different uid in the chroot than on the host"
}

write_pool_config() {
    cat >"$ROOT/etc/condor/config.d/99-conveyor-test-pool" <<EOF
# Written by scripts/engines/htcondor.sh: a fast single-machine test pool on loopback.
# No IPv6 and only loopback: otherwise the daemons advertise a non-loopback address.
ENABLE_IPV6 = False
NETWORK_INTERFACE = 127.0.0.1
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:$PORT
SHARED_PORT_PORT = $PORT
# The chroot's / is not a mount point: with the default every job is held (errno 22).
MOUNT_UNDER_SCRATCH =
# Fast cycles: test jobs are trivial and tests wait on them.
NEGOTIATOR_INTERVAL = 1
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 1
SCHEDD_MIN_INTERVAL = 1
UPDATE_INTERVAL = 1
# Oversubscribe: trivial jobs mostly wait, 20 slots on 2 cores is the biggest speed-up.
NUM_CPUS = 20
DAGMAN_USE_STRICT = 0
DAGMAN_USER_LOG_SCAN_INTERVAL = 1
EOF
}

write_client_config() {
    local tmp
    mkdir -p "$CLIENT/tokens.d" "$CLIENT/log"
    chmod 700 "$CLIENT/tokens.d"
    cat >"$CLIENT/condor_config" <<EOF
# Written by scripts/engines/htcondor.sh: config for HTCondor clients on the host
# (the htcondor/htcondor2 Python bindings). They authenticate with the IDTOKEN in
# tokens.d as $SUBMIT_USER, so jobs are owned by that ordinary user. No shared
# filesystem is assumed: submit with spool=True and retrieve the output.
CONDOR_HOST = 127.0.0.1:$PORT
COLLECTOR_HOST = 127.0.0.1:$PORT
ENABLE_IPV6 = False
NETWORK_INTERFACE = 127.0.0.1
# IDTOKENS only: with /tmp shared, FS would succeed too and make a root client's
# jobs owned by root, which the schedd refuses ("setting owner to root").
SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS
SEC_TOKEN_DIRECTORY = $CLIENT/tokens.d
SEC_TOKEN_SYSTEM_DIRECTORY = $CLIENT/tokens.d
LOG = $CLIENT/log
EOF
    # A fresh token each time: cheap, and never stale after the signing key changed.
    tmp="$CLIENT/tokens.d/.new"
    in_root condor_token_create -identity "$SUBMIT_USER@$UID_DOMAIN" >"$tmp" 2>"$LOGDIR/token.err" \
        || die "condor_token_create failed, see $LOGDIR/token.err"
    chmod 600 "$tmp"
    mv "$tmp" "$CLIENT/tokens.d/$SUBMIT_USER"
}

cmd_up() {
    need_root
    [ -f "$MARKER" ] || die "chroot not installed; run: scripts/engines/htcondor.sh install"
    local pid
    if pid="$(master_pid)"; then
        log "already up (master pid $pid)"
        return 0
    fi
    local t0=$SECONDS
    mkdir -p "$LOGDIR"
    mount_all
    cp /etc/hosts "$ROOT/etc/hosts"     # the host name must resolve inside the chroot
    # No systemd in the chroot: create the runtime dirs the packaged units would.
    # Inside the chroot: /var/lock is an absolute symlink that would escape to the host.
    in_root sh -c 'for d in /run/condor /var/lock/condor /var/lib/condor/execute \
        /var/spool/condor /var/log/condor; do mkdir -p "$d" && chown condor:condor "$d"; done'
    write_pool_config
    ensure_user
    UID_DOMAIN="$(in_root condor_config_val UID_DOMAIN)"
    # setsid: the pool outlives this script and ignores the caller's terminal/signals.
    setsid env -u CONDOR_CONFIG chroot "$ROOT" /usr/sbin/condor_master -f \
        >>"$LOGDIR/master.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    # Bounded wait until a slot and the schedd are in the collector.
    local deadline=$((SECONDS + TIMEOUT)) slots="" schedds=""
    while :; do
        kill -0 "$pid" 2>/dev/null || die "condor_master exited; see $LOGDIR/master.out and $ROOT/var/log/condor/"
        slots="$(in_root condor_status -af Name 2>/dev/null | wc -l)" || slots=0
        schedds="$(in_root condor_status -schedd -af Name 2>/dev/null | wc -l)" || schedds=0
        [ "$slots" -gt 0 ] && [ "$schedds" -gt 0 ] && break
        [ "$SECONDS" -lt "$deadline" ] \
            || die "no slot/schedd after ${TIMEOUT}s; see $ROOT/var/log/condor/ (run: htcondor.sh down)"
        sleep 0.5
    done
    write_client_config
    log "up in $((SECONDS - t0)) s: $(pool_cpus) cpus, collector 127.0.0.1:$PORT, submit identity $SUBMIT_USER@$UID_DOMAIN"
}

# Processes whose root directory is the chroot (daemons, starters, jobs).
pids_in_root() {
    local real p
    real="$(realpath -m "$ROOT")"
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$real" ] && echo "${p#/proc/}"
    done
    return 0
}

cmd_down() {
    need_root
    local pid left
    if pid="$(master_pid)"; then
        # QUIT = fast shutdown: the master stops its daemons and the running jobs.
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            log "master did not stop within 30 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDFILE"
    # Anything still running in the chroot would keep the mounts busy.
    left="$(pids_in_root)"
    if [ -n "$left" ]; then
        # shellcheck disable=SC2086  # one pid per word
        kill -KILL $left 2>/dev/null || true
        sleep 0.5
    fi
    [ -d "$ROOT" ] && unmount_all
    log "down"
}

# CPUs the startd offers (NUM_CPUS; busy ones are split off the partitionable slot).
pool_cpus() {
    in_root condor_status -af TotalCpus 2>/dev/null | awk 'NR == 1 {n = $1} END {print n + 0}'
}

cmd_status() {
    need_root
    local pid cpus
    if pid="$(master_pid)"; then
        cpus="$(pool_cpus)" || cpus=0
        if [ "$cpus" -gt 0 ]; then
            echo "htcondor: up, master pid $pid, $cpus cpus, collector 127.0.0.1:$PORT, CONDOR_CONFIG=$CLIENT/condor_config"
            return 0
        fi
        echo "htcondor: master pid $pid running but no slot in the collector"
        return 1
    fi
    echo "htcondor: down"
    return 1
}

cmd_env() {
    [ -f "$CLIENT/condor_config" ] || log "warning: no client config yet; run: htcondor.sh up"
    cat <<EOF
export CONDOR_CONFIG=$CLIENT/condor_config
export CONVEYOR_HTCONDOR_COLLECTOR=127.0.0.1:$PORT
export CONVEYOR_HTCONDOR_USER=$SUBMIT_USER
export CONVEYOR_HTCONDOR_ROOT=$ROOT
EOF
}

cmd_run() {
    need_root
    [ $# -gt 0 ] || die "run needs a command"
    master_pid >/dev/null || die "pool is not up; run: scripts/engines/htcondor.sh up"
    case "$PWD/" in /tmp/*) ;; *) die "run from a directory under /tmp (shared with the chroot), not $PWD" ;; esac
    env -u CONDOR_CONFIG HOME="/home/$SUBMIT_USER" USER="$SUBMIT_USER" \
        chroot --userspec="$SUBMIT_USER:$SUBMIT_USER" "$ROOT" \
        /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$PWD" "$@"
}

engine_main "$@"
