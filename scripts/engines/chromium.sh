#!/usr/bin/env bash
# Chromium (Debian's package) for the web page's browser tests, driven by Playwright's
# Python package. No daemon: each test launches its own headless browser. Playwright's
# own browser download is never used (`playwright install` is not run).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=chromium
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF2'
usage: scripts/engines/chromium.sh {install|up|down|status|env}
  install  apt-get install chromium (when missing) and pip install playwright (when missing)
  up       install, then check that chromium starts headless and prints a page's DOM
  down     nothing to stop (no daemon)
  status   exit 0 with a one-line summary when chromium starts headless
  env      export CONVEYOR_CHROMIUM (the browser the tests launch)
EOF2
}

BROWSER=/usr/bin/chromium

cmd_install() {
    if [ ! -x "$BROWSER" ]; then
        log "apt-get install chromium"
        apt_install_host chromium
    fi
    if ! python -c "import playwright" 2>/dev/null; then
        log "pip install playwright"
        python -m pip install -q "playwright>=1.45" || die "pip install playwright failed"
    fi
}

# One headless start, the flags the tests use, on a page that needs no network.
runs() {
    timeout 60 "$BROWSER" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run \
        --dump-dom "data:text/html,<p>conveyor-ok</p>" 2>/dev/null | grep -q conveyor-ok
}

cmd_up() {
    cmd_install
    runs || die "chromium does not start headless; try: $BROWSER --headless --no-sandbox --dump-dom about:blank"
    log "up: $("$BROWSER" --version 2>/dev/null)"
}

cmd_down() { log "down (nothing to stop)"; }

cmd_env() { [ -x "$BROWSER" ] && echo "export CONVEYOR_CHROMIUM=$BROWSER"; :; }

cmd_status() {
    if [ -x "$BROWSER" ] && runs; then
        echo "chromium: up, $("$BROWSER" --version 2>/dev/null)"
        return 0
    fi
    echo "chromium: down"
    return 1
}

engine_main "$@"
