"""Telling a project that its Pachyderm triggers wait for a ``conveyor worker``.

A project whose ``pachyderm_jobs`` setting is ``worker`` leaves its triggers to worker
processes; with none running they would wait silently. Each worker's claimer records
when it last asked for work (``db/pachyderm_queue``: ``seen``); triggers queued for a
while with no worker seen lately make one line, shown by ``GET .../jobs/pending``, the
CLI after a remote put or pipeline command, and the datasets page.
"""

from __future__ import annotations

from conveyor.server.state import ServerState

SETTING = "pachyderm_jobs"  # a project's: "worker" or "server" (the default)
QUEUED_FOR = 30.0  # seconds a trigger waits before its project is told no worker asks
UNSEEN_FOR = 60.0  # seconds without a worker asking for work that make it "none"


def worker_notice(state: ServerState, project: str) -> tuple[int, str | None]:
    """The triggers of a worker-mode project that wait while no ``conveyor worker`` has
    asked for work lately, and the line that tells the user so (None when they need not
    be told: the server runs the project's jobs, a worker is alive, or nothing waits)."""
    settings = state.db.accounts.settings(project)
    if settings.get(SETTING) != "worker":
        return 0, None
    waiting = state.db.pachyderm.unattended(project, QUEUED_FOR, UNSEEN_FOR)
    if not waiting:
        return 0, None
    return waiting, (
        f"{waiting} trigger(s) wait for a `conveyor worker`: none has asked for work in the "
        f'last {UNSEEN_FOR:.0f} s (this project\'s {SETTING} is "worker")'
    )
