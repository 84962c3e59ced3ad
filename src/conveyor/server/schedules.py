"""Cron schedules: the clock thread queues a run at the branch tip when one is due.

Each due schedule is advanced with ``UPDATE ... WHERE next_at = :seen``, so with
several server processes only one of them queues the run. The rows themselves are
``db.schedules``'s.
"""

from __future__ import annotations

import logging
import threading
import time

from conveyor.server.db.schedules import next_time
from conveyor.server.deployments.service import periodic_due
from conveyor.server.pachyderm_cron import tick as pachyderm_ticks
from conveyor.server.state import ServerState
from conveyor.server.triggers import RefUpdate, queue_updates
from conveyor.vcs.git import resolve

log = logging.getLogger("conveyor.server")
TICK = 1.0


def due(state: ServerState, now: float) -> int:
    """Queue the runs of every due schedule; returns how many schedules fired."""
    fired = 0
    schedules = state.db.schedules
    for row in schedules.due(now):
        if not schedules.advance(row.id, row.next_at, next_time(row.cron, now)):
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
            now = time.time()
            due(state, now)
            periodic_due(state, now)
            pachyderm_ticks(state, now)
        except Exception:
            log.exception("the schedule clock failed")
