"""Datums packed into Spark tasks: how many invocations one task runs in turn.

Pure. One task per invocation costs Spark's scheduling and a Python worker's task set-up
for each; a batch of many small datums runs faster as a few tasks per core, each task
running its invocations one after the other. Each invocation keeps its own claim, log,
outputs and completion (``worker.run_pack`` claims them in turn over one connection).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

AUTO = 0
"""``datums_per_task = "auto"``: sized from the batch and the cluster's cores."""
TASKS_PER_CORE = 3
"""With ``auto``: about this many tasks per core, so a slow datum delays only its
task-mates and the cores stay busy until the end of the batch."""
SEPARATOR = ","
"""Between the ids of a pack (``worker.run_pack`` splits on it)."""


def per_task(setting: int, count: int, cores: int) -> int:
    """Invocations per task for a batch of ``count`` on ``cores`` cores: ``setting``
    when given, else enough that the batch makes about ``TASKS_PER_CORE`` tasks a core
    (1 for a batch no larger than that)."""
    if setting != AUTO:
        return setting
    return max(1, math.ceil(count / (TASKS_PER_CORE * max(1, cores))))


def packs(sids: Sequence[str], size: int) -> list[str]:
    """The batch's invocation ids in packs of ``size``, in submission order, each pack
    one Spark task's element (``"3,4,5"``)."""
    step = max(1, size)
    return [SEPARATOR.join(sids[i : i + step]) for i in range(0, len(sids), step)]
