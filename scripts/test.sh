#!/usr/bin/env bash
# Install what the tests need into .venv, check lint, types and layers, run the tests.
# Engines that integration tests need are started here and stopped on exit.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
install_conveyor dev
cd "$ROOT"
echo "== ruff";          ruff check src tests bench && ruff format --check src tests bench
echo "== mypy (strict)"; mypy
echo "== import-linter"; lint-imports
echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
