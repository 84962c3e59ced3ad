#!/usr/bin/env bash
# Install and start (or stop) every engine the tests use: HTCondor, Spark, PostgreSQL,
# podman, bubblewrap, Chromium, Dask, an image registry, an S3 endpoint. Pick a subset with CONVEYOR_ENGINES="postgres spark" (default: all nine).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/engines/all.sh {up|down|status|env|install}
  up       install (cached, idempotent) then start each engine
  down     stop each engine, in reverse order, carrying on past failures
  status   one line per engine; exit 1 if any is down
  env      the export lines of every engine: eval "$(scripts/engines/all.sh env)"
  install  install each engine without starting it
environment: CONVEYOR_ENGINES (default "htcondor spark postgres podman bwrap chromium dask registry s3") and those of each script
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a ENGINES <<<"${CONVEYOR_ENGINES:-htcondor spark postgres podman bwrap chromium dask registry s3}"
for e in "${ENGINES[@]}"; do
    [ -x "$HERE/$e.sh" ] || { echo "all.sh: error: unknown engine '$e' (no $HERE/$e.sh)" >&2; exit 1; }
done

reverse() { local i; for ((i = ${#ENGINES[@]} - 1; i >= 0; i--)); do echo "${ENGINES[i]}"; done; }

case "${1:-}" in
    up)
        for e in "${ENGINES[@]}"; do
            # postgres has no separate install step to speak of: its up installs when needed.
            "$HERE/$e.sh" install
            "$HERE/$e.sh" up
        done
        ;;
    install)
        for e in "${ENGINES[@]}"; do "$HERE/$e.sh" install; done
        ;;
    down)
        rc=0
        for e in $(reverse); do "$HERE/$e.sh" down || rc=1; done
        exit "$rc"
        ;;
    status)
        rc=0
        for e in "${ENGINES[@]}"; do "$HERE/$e.sh" status || rc=1; done
        exit "$rc"
        ;;
    env)
        for e in "${ENGINES[@]}"; do "$HERE/$e.sh" env; done
        ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
