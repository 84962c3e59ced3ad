# shellcheck shell=bash
# What every engine script shares; sourced, never run. A script sets ENGINE (its name
# without .sh), sources this, defines `usage` and one `cmd_NAME` per command, and ends
# with `engine_main "$@"`.
set -euo pipefail
: "${ENGINE:?set ENGINE before sourcing lib.sh}"

die() { echo "$ENGINE.sh: error: $*" >&2; exit 1; }
log() { echo "$ENGINE.sh: $*" >&2; }

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
