#!/usr/bin/env bash
# An S3-compatible endpoint on 127.0.0.1 (moto's `moto_server`, in memory) for the tests
# of Conveyor's object store. moto lives in its own venv under the cache: its pinned
# botocore must not meet the project's.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENGINE=s3
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF2'
usage: scripts/engines/s3.sh {install|up|down|status|env}
  install  create a venv in the cache and pip install moto[server] 5.x there (once)
  up       start moto_server on 127.0.0.1 and create the test bucket
  down     stop it (safe when not up; its objects are in memory and go with it)
  status   exit 0 with a one-line summary when up, 1 otherwise
  env      print export lines for clients: eval "$(scripts/engines/s3.sh env)"
environment: CONVEYOR_ENGINES_HOME (cache, default ~/.cache/conveyor-engines),
  CONVEYOR_S3_PORT (9321), CONVEYOR_S3_BUCKET (conveyor-test),
  CONVEYOR_S3_TIMEOUT (seconds, 30), CONVEYOR_MOTO_SPEC (pip requirement, moto[server]>=5,<6)
EOF2
}

S3="$ENGINES_HOME/s3"
VENV="$S3/venv"
LOGDIR="$S3/logs"
PORT="${CONVEYOR_S3_PORT:-9321}"
BUCKET="${CONVEYOR_S3_BUCKET:-conveyor-test}"
TIMEOUT="${CONVEYOR_S3_TIMEOUT:-30}"
MOTO_SPEC="${CONVEYOR_MOTO_SPEC:-moto[server]>=5,<6}"
ENDPOINT="http://127.0.0.1:$PORT"
# moto takes any keys; these are the ones the tests' clients send (not secrets)
KEY_ID=conveyor-test
SECRET=conveyor-test-secret

cmd_install() {
    if [ -x "$VENV/bin/moto_server" ]; then
        log "moto already installed in $VENV"
        return 0
    fi
    mkdir -p "$S3"
    python3 -m venv "$VENV" || die "cannot create $VENV (python3 -m venv)"
    "$VENV/bin/pip" install -q "$MOTO_SPEC" || die "pip install $MOTO_SPEC failed"
    log "installed $("$VENV/bin/python" -c 'import moto; print("moto", moto.__version__)')"
}

live_pid() { pid_if_running "$S3/moto.pid" "moto_server"; }

# The bucket listing answers (the server is up and speaks S3).
bucket_ready() {
    "$VENV/bin/python" - "$ENDPOINT" "$BUCKET" "$KEY_ID" "$SECRET" <<'PY' 2>/dev/null
import sys
import boto3
from botocore.config import Config
endpoint, bucket, key, secret = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(connect_timeout=1, retries={"max_attempts": 1}))
if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket=bucket)
s3.head_bucket(Bucket=bucket)
PY
}

cmd_up() {
    if live_pid >/dev/null && bucket_ready; then
        log "already up ($ENDPOINT, bucket $BUCKET)"
        return 0
    fi
    [ -x "$VENV/bin/moto_server" ] || die "moto is not installed; run: scripts/engines/s3.sh install"
    cmd_down >/dev/null 2>&1 || true
    mkdir -p "$LOGDIR"
    local t0=$SECONDS pid deadline=$((SECONDS + TIMEOUT))
    # loopback only: moto checks no credentials
    setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >>"$LOGDIR/moto.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$S3/moto.pid"
    until bucket_ready; do
        kill -0 "$pid" 2>/dev/null || die "moto_server exited; see $LOGDIR/moto.log"
        [ "$SECONDS" -lt "$deadline" ] || die "moto_server not ready after ${TIMEOUT}s; see $LOGDIR/moto.log"
        sleep 0.3
    done
    log "up in $((SECONDS - t0)) s: $ENDPOINT, bucket $BUCKET, log $LOGDIR/moto.log"
}

cmd_down() {
    local pid
    if pid="$(live_pid)"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$S3/moto.pid"
    log "down"
}

cmd_status() {
    local pid
    if pid="$(live_pid)" && bucket_ready; then
        echo "s3: up, $ENDPOINT, bucket $BUCKET, moto_server pid $pid"
        return 0
    fi
    echo "s3: down"
    return 1
}

cmd_env() {
    echo "export CONVEYOR_S3_ENDPOINT=$ENDPOINT"
    echo "export CONVEYOR_S3_BUCKET=$BUCKET"
    echo "export CONVEYOR_S3_KEY_ID=$KEY_ID"
    echo "export CONVEYOR_S3_SECRET=$SECRET"
}

engine_main "$@"
