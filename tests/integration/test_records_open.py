"""Opening the local records at the schema's head checks the revision on the
repository's own connection: no connection is closed on the way, so the previous
process's write-ahead log is not copied into the database at every start (a checkpoint
and its fsyncs); what that process wrote is all there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.metadata.lite import open_lite

pytestmark = pytest.mark.integration

WRITER = """\
import os, sys
from pathlib import Path

from conveyor.domain.states import RunStatus
from conveyor.metadata.lite import open_lite
from conveyor.metadata.records import RunRecord

records = open_lite(Path(sys.argv[1]))
for n in range(3):
    records.create_run(RunRecord(f"r{n}", "demo", RunStatus.SUCCEEDED, None, False, 1.0))
os._exit(0)  # as a run's process ends: its connection is never closed
"""


def test_a_start_reads_the_last_process_runs_and_leaves_its_log_alone(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.db"
    open_lite(path).close()  # laid out at the head
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, timeout=60)
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    records = open_lite(path)
    assert wal.exists(), "opening the records checkpointed the log (a connection closed)"
    assert {run.id for run in records.list_runs(limit=10)} == {"r0", "r1", "r2"}
    records.close()
