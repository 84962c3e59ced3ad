# shellcheck shell=bash
# What every engine script shares; sourced, never run. A script sets ENGINE (its name
# without .sh), sources this, defines `usage` and one `cmd_NAME` per command, and ends
# with `engine_main "$@"`.
set -euo pipefail
: "${ENGINE:?set ENGINE before sourcing lib.sh}"

die() { echo "$ENGINE.sh: error: $*" >&2; exit 1; }
log() { echo "$ENGINE.sh: $*" >&2; }

# pip-install SPEC into $PYTHON unless MODULE imports (NOTE: a size or time hint for the log).
pip_install_missing() {
    local module="$1" spec="$2" note="${3:-}"
    if "$PYTHON" -c "import $module" >/dev/null 2>&1; then
        log "$module already importable ($("$PYTHON" -c "import $module; print($module.__version__)"))"
        return
    fi
    log "pip install $spec${note:+ ($note)}"
    "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
        "$spec" </dev/null || die "pip install $spec failed"
}

# The pid in PIDFILE, only if that process is alive and its command line holds PATTERN
# (a pid file outlives its process, and pids are reused).
pid_if_running() {
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
    echo "$pid"
}

export DEBIAN_FRONTEND=noninteractive
# HOME may be unset in minimal CI environments: fall back to the passwd entry.
ENGINES_HOME="${CONVEYOR_ENGINES_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/conveyor-engines}"

# apt-get install PACKAGES on the host, quietly; apt-get update first when there are no
# package lists yet, and again when the install fails (stale lists).
apt_install_host() {
    [ "$(id -u)" = 0 ] || die "installing $* needs root (apt-get install $*)"
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
    fi
    if ! apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null 2>&1; then
        apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
        apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null \
            || die "apt-get install $* failed"
    fi
}

# The Debian mirror this machine is configured with (never hard-coded).
debian_mirror() {
    local f=/etc/apt/sources.list.d/debian.sources uri
    [ -r "$f" ] || die "cannot read $f to find the Debian mirror"
    uri="$(awk '/^URIs:/ {print $2; exit}' "$f")"
    [ -n "$uri" ] || die "no URIs: line in $f"
    echo "$uri"
}

# `script.sh COMMAND ARGS...` runs cmd_COMMAND ARGS...; help prints usage; anything
# else prints usage to stderr and exits 2.
engine_main() {
    local command="${1:-}"
    case "$command" in
        -h | --help | help) usage; return 0 ;;
        "" | *[!a-z]*) usage >&2; exit 2 ;;
    esac
    declare -F "cmd_$command" >/dev/null || { usage >&2; exit 2; }
    shift
    "cmd_$command" "$@"
}
