"""Pachyderm pipelines and their jobs in the project's state (``.conveyor/pachyderm/``).

Plain JSON files, each replaced by an atomic rename (a reader never sees half of one):
``pipelines/<name>.json`` holds every spec version of a pipeline (the spec file's text
and which pipeline of it), ``jobs/<id>.json`` a job and its datums, written whole when
it starts and ends; meanwhile each finished datum is a line appended to
``jobs/<id>.datums`` (a job of many datums is not rewritten per datum). No table of the
records is needed for this local slice; the output commits themselves are dataset
commits in the records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import NotFoundError
from conveyor.sdk.datasets.refs import check_name
from conveyor.spec.pachyderm import parse_specs
from conveyor.spec.pachyderm_model import PachydermPipeline

MAX_STATE_FILE = 64 * 1024 * 1024  # bytes of one state file read back


@dataclass(frozen=True)
class SpecVersion:
    """One version of a pipeline's spec: the file's text, from which it is read again."""

    version: int
    name: str
    text: str
    display: str
    is_json: bool
    created_at: float
    reprocess: bool = False

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.name}\0{self.text}".encode()).hexdigest()

    def spec(self) -> PachydermPipeline:
        found = parse_specs(self.text, self.display, is_json=self.is_json)
        return next(p for p in found.pipelines if p.name == self.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "text": self.text,
            "display": self.display,
            "is_json": self.is_json,
            "created_at": self.created_at,
            "reprocess": self.reprocess,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> SpecVersion:
        return SpecVersion(
            int(data["version"]),
            str(data["name"]),
            str(data["text"]),
            str(data["display"]),
            bool(data["is_json"]),
            float(data["created_at"]),
            bool(data.get("reprocess", False)),
        )


class PachydermState:
    """Where a project's pipelines and jobs are kept (``root``: ``.conveyor/pachyderm``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- pipelines ------------------------------------------------------------
    def _pipeline_file(self, name: str) -> Path:
        return self.root / "pipelines" / f"{check_name(name, 'pipeline')}.json"

    def versions(self, name: str) -> list[SpecVersion]:
        path = self._pipeline_file(name)
        if not path.is_file():
            raise NotFoundError(
                f"there is no pipeline {name}; create it with `conveyor pipeline create -f SPEC`"
            )
        return [SpecVersion.from_json(v) for v in _read(path)["versions"]]

    def exists(self, name: str) -> bool:
        return self._pipeline_file(name).is_file()

    def add_version(self, version: SpecVersion) -> None:
        path = self._pipeline_file(version.name)
        old = [v.to_json() for v in self.versions(version.name)] if path.is_file() else []
        _write(path, {"name": version.name, "versions": [*old, version.to_json()]})

    def drop_version(self, name: str, number: int) -> int:
        """Take back version ``number`` when it is the newest; returns how many remain
        (none: the pipeline is gone)."""
        kept = [v.to_json() for v in self.versions(name)]
        if kept and kept[-1]["version"] == number:
            kept.pop()
        if not kept:
            self._pipeline_file(name).unlink()
        else:
            _write(self._pipeline_file(name), {"name": name, "versions": kept})
        return len(kept)

    def names(self) -> list[str]:
        folder = self.root / "pipelines"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def delete(self, name: str) -> None:
        self.versions(name)
        self._pipeline_file(name).unlink()

    # -- jobs -----------------------------------------------------------------
    def save_job(self, job: dict[str, Any]) -> None:
        """The whole job (its start and its end); the datums it finished meanwhile were
        appended one line each (:meth:`finished_datums`), now folded in."""
        path = self.root / "jobs" / f"{job['id']}.json"
        _write(path, job)
        path.with_suffix(".datums").unlink(missing_ok=True)

    @contextlib.contextmanager
    def finished_datums(self, job_id: str) -> Iterator[Callable[[dict[str, Any]], None]]:
        """Where a running job's finished datums go: each row appended as one line, one
        short write of its own whatever the number of datums (a job killed midway keeps
        every datum that finished); the file stays open while the datums run."""
        path = self.root / "jobs" / f"{job_id}.datums"
        with open(path, "a", encoding="utf-8") as handle:

            def append(row: dict[str, Any]) -> None:
                handle.write(json.dumps(row, separators=(",", ":")) + "\n")
                handle.flush()

            yield append

    def job(self, job_id: str) -> dict[str, Any]:
        folder = self.root / "jobs"
        exact = folder / f"{job_id}.json"
        if len(job_id) >= 4 and job_id.isalnum():
            if exact.is_file():
                return _read_job(exact)
            found = sorted(folder.glob(f"{job_id}*.json")) if folder.is_dir() else []
            if len(found) == 1:
                return _read_job(found[0])
            if len(found) > 1:
                raise NotFoundError(f"{job_id} matches several jobs; give more of its id")
        raise NotFoundError(f"there is no job {job_id!r} (`conveyor job list` lists them)")

    def jobs(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first (of one pipeline when named)."""
        folder = self.root / "jobs"
        found = [_read_job(p) for p in folder.glob("*.json")] if folder.is_dir() else []
        if pipeline is not None:
            found = [j for j in found if j["pipeline"] == pipeline]
        return sorted(found, key=lambda j: j["started_at"], reverse=True)


def _read_job(path: Path) -> dict[str, Any]:
    """A job with the datums it finished since it was last written in whole."""
    job = _read(path)
    lines = path.with_suffix(".datums")
    if lines.is_file():
        rows = {row["id"]: row for row in job["datums"]}
        with open(lines, encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):  # a line cut by a crash is not a datum
                    row = json.loads(line)
                    rows[row["id"]] = row
        job["datums"] = list(rows.values())
    return job


def new_version(spec_text: str, display: str, is_json: bool, name: str, number: int) -> SpecVersion:
    return SpecVersion(number, name, spec_text, display, is_json, time.time())


def _read(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        data = handle.read(MAX_STATE_FILE + 1)
    if len(data) > MAX_STATE_FILE:
        raise NotFoundError(f"{path} is larger than any file Conveyor writes there")
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
