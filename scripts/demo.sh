#!/usr/bin/env bash
# Install Conveyor into .venv and run the example pipeline twice: the second run is
# served from the cache. Uses the embedded defaults: local executor, SQLite, local store.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
install_conveyor ""
cd "$ROOT/examples/regression"
echo "== conveyor run (first time: every step runs)"
conveyor run
echo "== conveyor run (nothing changed: every step is a cache hit)"
conveyor run
echo "== conveyor show latest"
conveyor show latest
echo "== conveyor lineage results/report.md"
conveyor lineage results/report.md
echo "== results/report.md (a reproducible table)"
cat results/report.md
