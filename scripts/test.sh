#!/usr/bin/env bash
# Install what the tests need into .venv, check lint, types and layers, run the tests.
# The engines the integration and contract tests use are installed and started by
# scripts/engines/ and stopped on exit; CONVEYOR_ENGINES picks them ("" for none).
set -euo pipefail
source "$(dirname "$0")/venv.sh"
install_conveyor dev
cd "$ROOT"
# one command per line: under `set -e` a failure before `&&` would not stop the script
echo "== ruff";          ruff check src tests bench scripts examples
ruff format --check --exclude '*.ipynb' src tests bench scripts examples  # notebooks as written
echo "== mypy (strict)"; mypy
echo "== import-linter"; lint-imports

export CONVEYOR_ENGINES="${CONVEYOR_ENGINES-htcondor spark postgres podman bwrap chromium dask registry s3}"
if [ -n "$CONVEYOR_ENGINES" ]; then
  echo "== engines: $CONVEYOR_ENGINES"
  trap 'echo "== stopping engines"; scripts/engines/all.sh down >/dev/null 2>&1 || true' EXIT
  scripts/engines/all.sh up
  eval "$(scripts/engines/all.sh env)"
  export CONVEYOR_REQUIRE_ENGINES=1   # a configured engine that is missing fails, not skips
fi

# screenshots the browser tests take, kept by CI with its other artifacts (ignored by git)
export CONVEYOR_SCREENSHOTS="${CONVEYOR_SCREENSHOTS:-${CONVEYOR_ARTIFACTS:-$ROOT/build}/screenshots}"

# Two test processes (pytest-xdist): most integration tests wait on a process, a server or
# an engine, so two fit on two cores. A test module runs whole in one process, and the
# tests that reach a cluster engine (HTCondor, Spark, Dask) form one group that runs in
# one process, in turn (tests/conftest.py).
# CONVEYOR_TEST_PROCESSES=0 runs everything in this one process.
echo "== pytest"
python -m pytest -q -p no:cacheprovider -n "${CONVEYOR_TEST_PROCESSES:-2}" --dist loadscope --durations=25 "$@"
