"""What the SDK's ``Client`` asks of where the runs are: the project on this machine
(``client_local.py``) or a Conveyor server (``client_remote.py``).

Both speak the JSON shape of ``conveyor show --json`` (a run, its ``steps``, each with
its ``outputs``), which is also the server's API, so the objects the user holds are the
same whichever side answered.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from conveyor.domain.types import ParamValue
from conveyor.errors import RemoteError

_DIGEST = re.compile(r"[0-9a-f]{16,128}")


@dataclass(frozen=True)
class StartRequest:
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    ref: str | None = None
    """A branch, tag or commit; None: the working tree (local) or HEAD's branch."""
    only: Sequence[str] = ()
    force: bool = False
    pipeline_file: Path | None = None
    """Another pipeline file than the project's (a Python pipeline's file); local runs."""


class Backend(Protocol):
    where: str
    """Where the runs are, in words (``project /path``, ``server URL, project P``)."""

    def list_runs(self, limit: int) -> list[dict[str, Any]]: ...

    def get_run(self, ref: str) -> dict[str, Any]:
        """A run with its steps, by id, unique id prefix or ``latest``."""
        ...

    def start(self, request: StartRequest) -> str:
        """Start a run and return its id once it is recorded (or queued)."""
        ...

    def planned_steps(self, run_id: str) -> int | None:
        """How many steps the run will have, when this side knows it."""
        ...

    def ended(self, run_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; whether the run has ended (raises what a run
        started here failed with before it was recorded)."""
        ...

    def cancel(self, run_id: str) -> None: ...

    def log(self, run_id: str, step_id: str, tail: int | None) -> Iterator[str]: ...

    def output_bytes(self, run_id: str, output: Mapping[str, Any]) -> bytes: ...

    def output_path(self, run_id: str, output: Mapping[str, Any]) -> Path: ...

    def fetch(self, run_id: str, destination: Path) -> int: ...

    def lineage(self, target: str) -> dict[str, Any]: ...

    def tracking(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """One run's parameters and metrics (``conveyor metrics show --json``), or the
        comparison of several (``conveyor runs compare --json``)."""
        ...

    def upstream(self, run_id: str) -> dict[str, list[str]]:
        """Each step's upstream steps, when this side records them (else empty)."""
        ...

    def close(self) -> None: ...


def cache_place(root: Path, output: Mapping[str, Any]) -> Path:
    """Where a copy of an output lives under ``root``: its digest, then its own file
    name (pandas and viewers go by the suffix). Both come from records or a server:
    a digest that is not hex, or a name that is not one plain path segment, is refused."""
    digest = str(output.get("digest", ""))
    name = posixpath.basename(str(output.get("path", "")).rstrip("/"))
    if not _DIGEST.fullmatch(digest) or name in ("", ".", "..") or "\\" in name:
        raise RemoteError(f"refused an output record with digest {digest[:20]!r}, name {name!r}")
    return root / digest / name


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/conveyor`` (``~/.cache/conveyor``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conveyor"
