"""Where a step's tracking lines go: the variable that names the file and its place.

A step's ``conveyor.log_metric``/``log_param`` append JSON lines to ``log.jsonl`` in a
project-relative directory the runner names in ``CONVEYOR_TRACKING``, and
``log_artifact`` copies a file into its ``artifacts/``; executors bring the directory back
like a declared output (it is one, implicitly: stored when the step wrote it). Its name
is a digest of the step id, so any step id makes a plain name.
"""

from __future__ import annotations

from functools import lru_cache

TRACKING_ENV = "CONVEYOR_TRACKING"
TRACKING_DIR = ".conveyor/tracking"
LOG_NAME = "log.jsonl"
ARTIFACTS = "artifacts"


@lru_cache(maxsize=4096)  # asked several times per step of every run
def tracking_path(step_id: str) -> str:
    """The project-relative tracking directory of a step (the same in every run)."""
    # imported here: a step's `conveyor.log_*` needs this module without it, shipped to a
    # worker without Conveyor as docs/tracking.md lists (the runner alone names the place)
    from conveyor.domain.digests import sha256

    return f"{TRACKING_DIR}/{sha256(step_id.encode('utf-8')).hexdigest()[:24]}"
