"""Files ``conveyor init`` writes."""

EXAMPLE_PIPELINE = """\
# conveyor.yml: the pipeline of this project (you own this file; Conveyor never edits it).
# Jobs run in parallel unless `needs` orders them; the steps of a job run in order.
# A step runs again only when its fingerprint changes: its command, env, the params it
# uses, or the content of its declared `inputs`. `conveyor why STEP` says which.
name: example

params:
  rows: 200        # shorthand for {type: int, default: 200}; set with -p rows=500
  noise: 0.5

jobs:
  prepare:
    steps:
      - name: make-data
        run: |
          mkdir -p data
          python3 - <<'PY'
          import csv, random
          random.seed(42)
          with open("data/points.csv", "w", newline="") as f:
              w = csv.writer(f)
              w.writerow(["x", "y"])
              for i in range(${{ params.rows }}):
                  x = i / 10
                  w.writerow([x, 3 * x + 1 + random.gauss(0, ${{ params.noise }})])
          PY
        outputs:
          - data/points.csv

  fit:
    matrix:
      degree: [1, 2]
    steps:
      - name: fit
        run: |
          mkdir -p models
          python3 - <<'PY'
          import csv, json, statistics
          rows = list(csv.DictReader(open("data/points.csv")))
          xs = [float(r["x"]) ** ${{ matrix.degree }} for r in rows]
          ys = [float(r["y"]) for r in rows]
          fit = statistics.linear_regression(xs, ys)
          json.dump({"slope": fit.slope, "intercept": fit.intercept},
                    open("models/degree-${{ matrix.degree }}.json", "w"))
          PY
        inputs:
          - data/points.csv      # Conveyor orders this job after `prepare`, which writes it
        outputs:
          - models/degree-${{ matrix.degree }}.json

  report:
    needs: [fit]
    steps:
      - name: table
        run: |
          mkdir -p results
          for f in models/*.json; do echo "$f $(cat "$f")"; done > results/table.txt
        inputs:
          - models
        outputs:
          - results/table.txt
      - name: on-failure
        if: failure()
        run: echo "something upstream failed"
"""

CONFIG_TEMPLATE = """\
# Conveyor project settings, shared through git. The project lead chooses these once.
[project]
executor = "local"     # where steps run: local (more with extras: htcondor, spark, dask)
parallelism = 0        # steps at once; 0 = one per CPU
# database = "postgresql+psycopg://user@host/db"   # default: .conveyor/conveyor.db (SQLite)
# store = "/shared/conveyor-store"                  # default: .conveyor/store

# Steps that name a container image (Drone, Dotscience): no container runtime is
# configured, so they fail unless they may run on this machine instead.
# [containers]
# on_missing = "host"
# [containers.plugins]                               # plugin images -> host commands
# "plugins/slack" = "python3 tools/notify.py"

# DataTorch actions named owner/name@tag are looked up here before git.
# [actions]
# paths = ["actions"]
"""
