"""The runs list stays fast at 100,000 runs: every query of a page (the count, the
cursor's anchor, the page itself, with each filter) walks an index, never the table,
on a real SQLite server database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.domain.states import RunStatus

pytestmark = pytest.mark.integration
RUNS = 100_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from conveyor.server.db.database import open_database
    from conveyor.server.db.tables import runs

    path: Path = tmp_path_factory.mktemp("runs") / "server.db"
    database = open_database(f"sqlite:///{path}")
    start = time.time() - RUNS
    rows = [
        {
            "id": f"{i:012x}",
            "project": "demo" if i % 10 else "other",
            "status": (RunStatus.SUCCEEDED, RunStatus.FAILED)[i % 7 == 0],
            "ref": "refs/heads/main" if i % 3 else f"refs/heads/topic-{i % 50}",
            "commit": "c" * 40,
            "trigger": ("push", "schedule", "manual")[i % 3],
            "who": "member",
            "params": {},
            "created_at": start + i,
            "cancel_requested": False,
        }
        for i in range(RUNS)
    ]
    with database.engine.begin() as conn:
        conn.execute(runs.insert(), rows)
    yield database
    database.close()


def _plans(db: Any, call: Any) -> list[str]:
    """The query plan of every statement ``call`` runs."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    plans = []
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for statement, params in seen:
            rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
            plans.append(" | ".join(str(r[-1]) for r in rows))
    return plans


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": RunStatus.FAILED},
        {"ref": "refs/heads/topic-7"},
        {"trigger": "schedule"},
    ],
    ids=["none", "status", "branch", "trigger"],
)
def test_every_query_of_a_page_uses_an_index(db: Any, filters: dict[str, Any]) -> None:
    first = db.queue.page(
        "demo", 50, filters.get("status"), None, filters.get("ref"), filters.get("trigger")
    )
    assert first is not None
    runs, total, cursor = first
    assert len(runs) == 50 and cursor is not None and total > 50
    plans = _plans(
        db,
        lambda: db.queue.page(
            "demo", 50, filters.get("status"), cursor, filters.get("ref"), filters.get("trigger")
        ),
    )
    assert len(plans) == 3, plans  # the count, the cursor's anchor, the page
    assert "created_at<?" in plans[2], "a deep page starts where its cursor is"
    for plan in plans:
        assert "USING" in plan and "INDEX" in plan, plan
        assert "SCAN srv_runs" not in plan.replace("SCAN srv_runs USING", ""), plan


def test_pages_follow_each_other_newest_first_across_equal_times(db: Any) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = db.queue.page("demo", 50, None, cursor)
        assert page is not None
        runs, _, cursor = page
        seen += [r.id for r in runs]
    stamps = [db.queue.get(i).created_at for i in seen]
    assert stamps == sorted(stamps, reverse=True) and len(set(seen)) == 150


def test_runs_created_at_the_same_time_are_each_listed_once(db: Any) -> None:
    ids = [f"tie{i:09d}" for i in range(7)]
    for run_id in ids:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                'INSERT INTO srv_runs (id, project, status, ref, "commit", trigger, who, params,'
                " created_at, cancel_requested) VALUES (?, 'ties', 'succeeded', 'refs/heads/main',"
                " 'c', 'push', 'm', '{}', 1000.0, 0)",
                (run_id,),
            )
    seen: list[str] = []
    cursor = None
    while True:
        page = db.queue.page("ties", 2, None, cursor)
        assert page is not None
        runs, total, cursor = page
        seen += [r.id for r in runs]
        if cursor is None:
            break
    assert total == 7 and seen == sorted(ids, reverse=True)


def test_the_pipeline_filter_reads_the_runs_records(db: Any) -> None:
    from conveyor.metadata.records import RunRecord

    named = [f"{i:012x}" for i in range(1, 400, 3) if i % 10]  # demo's runs, some of them
    for run_id in named:
        db.records.create_run(
            RunRecord(run_id, "train", RunStatus.SUCCEEDED, "c" * 40, dirty=False, created_at=1.0)
        )
    first = db.queue.page("demo", 50, None, None, None, None, "train")
    assert first is not None
    runs, total, cursor = first
    assert total == len(named) and cursor is not None
    assert [r.id for r in runs] == sorted(named, reverse=True)[:50]
    plans = _plans(db, lambda: db.queue.page("demo", 50, None, cursor, None, None, "train"))
    assert "created_at<?" in plans[2], "a deep page starts where its cursor is"
    assert db.queue.page("demo", 50, None, None, None, None, "other") == ([], 0, None)
