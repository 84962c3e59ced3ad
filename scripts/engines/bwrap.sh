#!/usr/bin/env bash
# bubblewrap (bwrap): the sandbox a Conveyor server runs its local steps in. No daemon:
# `up` checks that a sandbox starts (user namespaces may be turned off on a machine).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=bwrap
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF2'
usage: scripts/engines/bwrap.sh {install|up|down|status|env}
  install  apt-get install bubblewrap (when missing)
  up       install, then check that bwrap starts a sandbox like the server's
  down     nothing to stop (no daemon)
  status   exit 0 with a one-line summary when bwrap starts a sandbox
  env      nothing to export (bwrap is found on PATH)
EOF2
}

cmd_install() {
    command -v bwrap >/dev/null && return 0
    log "apt-get install bubblewrap"
    apt_install_host bubblewrap
}

# The options the server uses (src/conveyor/executors/sandbox.py), on a trivial command.
runs() {
    bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --unshare-all \
        --unshare-user --uid 65534 --gid 65534 --disable-userns --die-with-parent \
        -- /bin/true >/dev/null 2>&1
}

cmd_up() {
    cmd_install
    runs || die "bwrap cannot start a sandbox here (are unprivileged user namespaces off?); try: bwrap --ro-bind / / --unshare-all --unshare-user -- /bin/true"
    log "up: $(bwrap --version)"
}

cmd_down() { log "down (nothing to stop)"; }
cmd_env() { :; }

cmd_status() {
    if command -v bwrap >/dev/null && runs; then
        echo "bwrap: up, $(bwrap --version)"
        return 0
    fi
    echo "bwrap: down"
    return 1
}

engine_main "$@"
