"""Cron schedules: the clock thread queues a run at the branch tip when one is due.

Each due schedule is advanced with ``UPDATE ... WHERE next_at = :seen``, so with
several server processes only one of them queues the run.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from conveyor.server.db import tables as t
from conveyor.server.gitrepo import resolve
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate, queue_updates

log = logging.getLogger("conveyor.server")
TICK = 1.0


def next_time(cron: str, after: float) -> float:
    from croniter import croniter

    if not croniter.is_valid(cron):
        raise ValueError("use five fields, e.g. '0 3 * * *'")
    start = datetime.fromtimestamp(after, UTC)
    return float(croniter(cron, start).get_next(float))


def replace_pipeline_schedules(
    state: ServerState, project: str, ref: str, crons: list[str]
) -> list[str]:
    """Schedules declared in the pipeline file (source ``pipeline``) for one branch;
    returns the cron expressions that are not valid (and were left out)."""
    now = time.time()
    rows, invalid = [], []
    for cron in crons:
        try:
            rows.append({"cron": cron, "next_at": next_time(cron, now)})
        except ValueError:
            invalid.append(cron)
    key = (
        (t.schedules.c.project == project)
        & (t.schedules.c.ref == ref)
        & (t.schedules.c.source == "pipeline")
    )
    with state.db.engine.begin() as conn:
        conn.execute(t.schedules.delete().where(key))
        for row in rows:
            conn.execute(
                t.schedules.insert().values(
                    project=project, ref=ref, source="pipeline", created_at=now, **row
                )
            )
    return invalid


def due(state: ServerState, now: float) -> int:
    """Queue the runs of every due schedule; returns how many schedules fired."""
    fired = 0
    with state.db.engine.connect() as conn:
        rows = list(conn.execute(sa.select(t.schedules).where(t.schedules.c.next_at <= now)))
    for row in rows:
        following = next_time(row.cron, now)
        with state.db.engine.begin() as conn:
            taken = conn.execute(
                t.schedules.update()
                .where((t.schedules.c.id == row.id) & (t.schedules.c.next_at == row.next_at))
                .values(next_at=following)
            ).rowcount
        if taken != 1:
            continue
        commit = resolve(state.config.repo_dir(row.project), row.ref)
        if commit is None:
            log.warning("schedule %s: %s has no commit yet", row.id, row.ref)
            continue
        queue_updates(state, row.project, [RefUpdate("", commit, row.ref)], "schedule", "schedule")
        fired += 1
    return fired


def clock(state: ServerState, stop: threading.Event) -> None:
    while not stop.wait(TICK):
        try:
            due(state, time.time())
        except Exception:
            log.exception("the schedule clock failed")
