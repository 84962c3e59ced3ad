"""Group commit of execution records (real SQLite): every row written by many threads at
once is committed before its caller returns, and a bad row fails its own caller only."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.server.deployments.journal import Journal

ROWS = sa.table("rows", sa.column("id", sa.Integer), sa.column("who", sa.Text))


def _engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'j.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE rows (id INTEGER PRIMARY KEY, who TEXT NOT NULL)"))
    return engine


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM rows")).scalar_one())


def test_rows_written_at_once_are_all_committed_before_their_callers_return(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    journal = Journal(engine, ROWS.insert())
    seen: list[int] = []
    gate = threading.Barrier(40)

    def write(i: int) -> None:
        gate.wait()
        for k in range(25):
            journal.write({"id": i * 100 + k, "who": f"t{i}"})
            with engine.connect() as conn:  # committed: another connection sees it
                row = conn.execute(sa.text(f"SELECT id FROM rows WHERE id = {i * 100 + k}"))
                seen.append(len(row.all()))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(engine) == 1000 and seen == [1] * 1000


def test_a_bad_row_fails_its_own_caller_only(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    journal = Journal(engine, ROWS.insert())
    journal.write({"id": 1, "who": "first"})
    errors: dict[int, BaseException | None] = {}
    gate = threading.Barrier(20)

    def write(i: int) -> None:
        gate.wait()
        try:
            journal.write({"id": 1 if i == 7 else 100 + i, "who": "x"})  # 7: a taken id
            errors[i] = None
        except sa.exc.IntegrityError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [i for i, e in sorted(errors.items()) if e is not None] == [7]
    assert _count(engine) == 20
    with pytest.raises(sa.exc.IntegrityError):
        journal.write({"id": 1, "who": "again"})
