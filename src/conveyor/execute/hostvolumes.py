"""Host volumes (Drone's ``volumes: [{name, host: {path}}]``): a directory of the machine
mounted in a step's container, only under a path the project's settings allow
(``[containers] host_volumes``); a server allows none.

A path is judged by where it really is: ``..`` and every symbolic link resolved, then it
must be one of the allowed directories or inside one (by path components: ``/data2`` is
not inside ``/data``). The resolved path is what gets mounted, so a link changed after
the check does not move the mount.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["allowed_host_path"]


def allowed_host_path(host: str, allowed: Sequence[str]) -> tuple[str | None, str | None]:
    """``(resolved path, None)`` when ``host`` may be mounted, else ``(None, why)``."""
    if not allowed:
        return None, (
            f"the host directory {host} may not be mounted: this project allows no host "
            "volumes; a lead may list the directories steps may mount under "
            "`host_volumes` in [containers] of .conveyor/config.toml (a server never does)"
        )
    if not os.path.isabs(host):
        return None, f"the host volume {host!r} is not an absolute path"
    real = Path(os.path.realpath(host))
    for root in allowed:
        base = Path(os.path.realpath(root))
        if real == base or real.is_relative_to(base):
            return str(real), None
    shown = host if str(real) == host else f"{host} (really {real})"
    return None, (
        f"the host directory {shown} is not under a directory this project allows "
        f"steps to mount ({', '.join(allowed)}: [containers] host_volumes)"
    )
