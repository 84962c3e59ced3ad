"""What the server's steps may see: the local executor's sandbox table for one run.

Every local step of the server runs under bubblewrap (``executors.sandbox``): the data
directory (database, key, every project's repository, workspaces and store), the
server user's home and the directories the admin names are hidden; the step's own
workspace is its only writable place. ``--sandbox none`` opts out, loudly.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from conveyor.server.config import ServerConfig

log = logging.getLogger("conveyor.server")
AS_ROOT = (
    "the server runs as root: its sandboxed steps act as root on the files they can see "
    "(root-only files outside the hidden directories, such as /etc/shadow, are readable); "
    "run the server as a user of its own"
)
UNSANDBOXED = (
    "steps run without a sandbox (--sandbox none): any member who can push can read the "
    "server's key and database and so become admin"
)


def sandbox_setting(
    config: ServerConfig, project: dict[str, Any], state_dir: Path
) -> dict[str, Any] | None:
    """The ``sandbox`` setting of the local executor for a run of ``project`` (its
    settings row) whose state lives in ``state_dir``; None when the admin opted out."""
    if config.sandbox == "none":
        return None
    import conveyor

    home = os.path.expanduser("~")  # "~" itself when there is no home: nothing to hide
    hide = [config.data, home, *config.sandbox_hide]
    readable = [
        # the Python the server runs (python: steps, plugins) and Conveyor itself
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        Path(conveyor.__file__).resolve().parent.parent,
        # actions of this run (cloned into its state; their environments are not built)
        state_dir / "cache" / "actions",
    ]
    return {
        "hide": [str(p) for p in hide],
        "readable": [str(p) for p in readable],
        "network": bool(project.get("network", True)),
        "program": "bwrap",
    }


def announce(config: ServerConfig) -> str | None:
    """A warning for the admin when steps will not be sandboxed (None: they will)."""
    from conveyor.executors.sandbox import sandbox_problem

    warning = UNSANDBOXED if config.sandbox == "none" else sandbox_problem()
    if warning is None and os.geteuid() == 0:
        warning = AS_ROOT
    if warning is not None:
        log.warning("%s", warning)
    return warning
