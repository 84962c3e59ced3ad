"""Smoke test of the Spark standalone cluster started by scripts/engines/spark.sh.

Run on the host after `eval "$(scripts/engines/spark.sh env)"`:

    python scripts/engines/check_spark.py

Starts a session against $CONVEYOR_SPARK_MASTER (timed), ships a small module with
addPyFile, runs one subprocess per task (each exits with its own code) and collects
the exit codes and output on the driver. Exits non-zero on any failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import time

from pyspark.sql import SparkSession

# Shipped to the executors with addPyFile: the way step code reaches Spark tasks.
RUNNER = textwrap.dedent(
    """
    import subprocess

    def run_one(i):
        cmd = ["/bin/sh", "-c", f"echo datum-{i}; exit {i % 3}"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (i, p.returncode, p.stdout.strip())
    """
)


def main() -> int:
    master = os.environ.get("CONVEYOR_SPARK_MASTER", "spark://127.0.0.1:7077")
    t0 = time.monotonic()
    spark = (
        SparkSession.builder.master(master)
        .appName("conveyor-engine-check")
        .config("spark.ui.enabled", "false")  # no driver web UI needed for tests
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executor.memory", "1g")
        .getOrCreate()
    )
    t_session = time.monotonic() - t0
    ok = True
    try:
        sc = spark.sparkContext
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "conveyor_check_runner.py")
            with open(path, "w") as f:
                f.write(RUNNER)
            sc.addPyFile(path)

            def task(i):
                import conveyor_check_runner  # resolved on the executor

                return conveyor_check_runner.run_one(i)

            t1 = time.monotonic()
            results = sorted(sc.parallelize(range(6), 6).map(task).collect())
            t_job = time.monotonic() - t1
        expected = [(i, i % 3, f"datum-{i}") for i in range(6)]
        print(f"session start {t_session:.1f}s, first job {t_job:.1f}s: {results}")
        if results != expected:
            print(f"FAIL: expected {expected}", file=sys.stderr)
            ok = False
        t1 = time.monotonic()
        sc.parallelize(range(6), 6).map(task).collect()
        print(f"second job {time.monotonic() - t1:.2f}s")
    finally:
        spark.stop()
    print(f"{'OK' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
