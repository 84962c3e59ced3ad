"""The stdlib records repository under SIGKILL: a process killed while it writes batches
leaves a database whose every batch is there whole or not at all."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.metadata.lite import open_lite

pytestmark = pytest.mark.integration

WRITER = """\
import sys
from pathlib import Path

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.metadata.lite import open_lite
from conveyor.metadata.records import EventRecord, OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import WriteBatch

records = open_lite(Path(sys.argv[1]))
records.create_run(RunRecord("r1", "demo", RunStatus.RUNNING, None, False, 1.0))
print("ready", flush=True)
i = 0
while True:  # until killed: each batch is one step run, its 20 outputs and an event
    batch = WriteBatch()
    outputs = [OutputRecord(f"out/{i}/{k}", f"{i:032x}{k:032x}") for k in range(20)]
    batch.put_step_run(
        StepRunRecord("r1", f"j.s{i}", "j", StepStatus.SUCCEEDED, outputs=outputs)
    )
    batch.events.append(EventRecord("r1", "step-finished", float(i), f"j.s{i}"))
    records.write(batch)
    i += 1
"""


def test_sigkill_mid_write_leaves_whole_batches(tmp_path: Path) -> None:
    db = tmp_path / "state" / "runs.db"
    open_lite(db).close()  # migrated beforehand: the writer only writes
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while _count(db, "step_runs") < 50:  # kill it mid-stream, not before it wrote
            assert time.monotonic() < deadline, "the writer wrote nothing"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        steps = _count(db, "step_runs")
        assert steps >= 50
        assert _count(db, "step_outputs") == 20 * steps
        assert _count(db, "events") == steps
    finally:
        conn.close()
    records = open_lite(db)  # and it opens again, at head, with every batch readable
    assert len(records.step_runs("r1")) == steps
    records.close()


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()
