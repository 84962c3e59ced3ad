"""A run's parameters and metrics, read back from its stored outputs (no table of their
own): declared metrics files and the tracking logs of ``conveyor.log_*``; diffs of two
runs and the comparison of several (``conveyor metrics``, ``params diff``, ``runs
compare``).

Sources name where a value came from: a metrics file by its path, a tracking log as
``log:STEP``, the runs a Dotscience script published (``ds.publish()``) as
``dotscience:STEP``, the run's own parameters as ``run``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.states import StepStatus
from conveyor.domain.tracking import LOG_NAME, TRACKING_DIR, tracking_path
from conveyor.errors import StoreError
from conveyor.execute.dotscience_runs import RUNS_NAME
from conveyor.metadata.records import OutputRecord, RunRecord, StepRunRecord
from conveyor.metadata.repository import MetadataRepository
from conveyor.sdk.metricfiles import (
    MAX_BYTES,
    MetricsFileError,
    Scalar,
    number,
    parse_metrics,
    parse_tracking,
)
from conveyor.sdk.project import Project
from conveyor.store.cas import ContentStore

Table = dict[str, dict[str, Scalar]]
"""source -> key -> value."""


@dataclass
class RunTracking:
    """What one run recorded: parameters, metrics, and the files that could not be read."""

    run_id: str
    params: Table = field(default_factory=dict)
    metrics: Table = field(default_factory=dict)
    artifacts: dict[str, list[str]] = field(default_factory=dict)
    dotscience: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """step -> the Dotscience runs it published (inputs, outputs, labels, description...)."""
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "params": self.params,
            "metrics": self.metrics,
            "artifacts": self.artifacts,
            "dotscience": self.dotscience,
            "errors": self.errors,
        }


def read_tracking(project: Project, run: RunRecord) -> RunTracking:
    """The run's parameters and metrics; a metrics file that cannot be read is named in
    ``errors`` (with its step) and the rest is still read."""
    return tracking_of(project.records, project.store, run.id, run.params)


def tracking_of(
    records: MetadataRepository, store: ContentStore, run_id: str, params: Mapping[str, Any]
) -> RunTracking:
    """``read_tracking`` from records and a store given (a server's, for its pages)."""
    found = RunTracking(run_id)
    if params:
        found.params["run"] = {k: _scalar(v) for k, v in sorted(params.items())}
    steps = sorted(records.step_runs(run_id), key=lambda s: s.step_id)
    for step in steps:
        if step.status is StepStatus.SUCCEEDED:
            _read_step(store, step, found)
    return found


def _read_step(store: ContentStore, step: StepRunRecord, found: RunTracking) -> None:
    declared = set(step.parts.get("metrics", ()))
    tracking = tracking_path(step.step_id)
    for output in step.outputs:
        try:
            if output.path in declared:
                data = read_bounded(store, output, f"the metrics file {output.path}")
                found.metrics[output.path] = parse_metrics(output.path, data)
            elif output.path == tracking and output.kind == "tree":
                _read_log(store, step.step_id, output, found)
        except MetricsFileError as exc:
            found.errors.append(f"{output.path} of step {step.step_id} {exc}")
        except StoreError as exc:
            found.errors.append(f"{output.path} of step {step.step_id}: {exc}")


def _read_log(store: ContentStore, step_id: str, output: OutputRecord, found: RunTracking) -> None:
    tree = store.read_manifest(output.digest)
    source = f"log:{step_id}"
    for entry in tree.files:
        if entry.path == LOG_NAME:
            log = parse_tracking(
                read_bounded(store, OutputRecord(LOG_NAME, entry.digest, "file", entry.size), "")
            )
            if log.metrics:
                found.metrics[source] = log.metrics
            if log.params:
                found.params[source] = log.params
            if log.artifacts:
                found.artifacts[step_id] = [f"{output.path}/artifacts/{a}" for a in log.artifacts]
        elif entry.path == RUNS_NAME:
            blob = OutputRecord(RUNS_NAME, entry.digest, "file", entry.size)
            _read_dotscience(step_id, read_bounded(store, blob, ""), found)


def _read_dotscience(step_id: str, data: bytes, found: RunTracking) -> None:
    """Published runs: parameters and summary metrics under ``dotscience:STEP`` (a later
    ``publish`` wins for a name it repeats; Dotscience writes values as text, read back as
    numbers where they are), and the runs themselves for their other fields."""
    try:
        runs = json.loads(data)["runs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MetricsFileError("is not a list of Dotscience runs") from exc
    source = f"dotscience:{step_id}"
    for run in runs:
        for key, table in (("parameters", found.params), ("summary", found.metrics)):
            values = run.get(key) or {}
            if values:
                merged = table.setdefault(source, {})
                merged.update({k: _number(v) for k, v in values.items()})
    found.dotscience[step_id] = runs


def _number(value: Any) -> Scalar:
    return number(value) if isinstance(value, str) else _scalar(value)


def read_bounded(store: ContentStore, output: OutputRecord, what: str) -> bytes:
    """The blob of a file output, read only when it is at most MAX_BYTES (the store's
    file is checked, not only the record, and never read past the bound)."""
    if output.kind != "file":
        raise MetricsFileError("is a directory, not a metrics file")
    try:
        path = store.path_of(output.digest)
        size = path.stat().st_size
        if max(size, output.size) > MAX_BYTES:
            raise MetricsFileError(
                f"is {max(size, output.size)} bytes; metrics are read from files of at most "
                f"{MAX_BYTES >> 20} MiB"
            )
        with open(path, "rb") as blob:
            return blob.read(MAX_BYTES + 1)[:MAX_BYTES]
    except OSError as exc:
        raise StoreError(f"cannot read {what or output.path} from the store: {exc}") from exc


def _scalar(value: Any) -> Scalar:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


# -- comparing -------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    source: str
    key: str
    old: Scalar
    new: Scalar
    present: tuple[bool, bool] = (True, True)

    @property
    def delta(self) -> float | None:
        """new - old when both are numbers."""
        if all(_numeric(v) for v in (self.old, self.new)) and all(self.present):
            return round(float(self.new) - float(self.old), 12)  # type: ignore[arg-type]
        return None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source, "key": self.key}
        data["old"] = self.old if self.present[0] else None
        data["new"] = self.new if self.present[1] else None
        data["delta"] = self.delta
        if not all(self.present):
            data["only_in"] = "new" if self.present[1] else "old"
        return data


def _numeric(value: Scalar) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def diff(old: Table, new: Table, show_all: bool = False) -> list[Change]:
    """Values that differ between two tables (all of them with ``show_all``), by source
    then key; a value on one side only is a change."""
    changes = []
    for source in sorted({*old, *new}):
        before, after = old.get(source, {}), new.get(source, {})
        for key in sorted({*before, *after}):
            present = (key in before, key in after)
            a, b = before.get(key), after.get(key)
            if show_all or not all(present) or a != b or type(a) is not type(b):
                changes.append(Change(source, key, a, b, present))
    return changes


@dataclass(frozen=True)
class Row:
    """One parameter, metric or output across compared runs (None: not in that run)."""

    source: str
    key: str
    values: tuple[Scalar, ...]

    @property
    def differs(self) -> bool:
        return len({repr(v) for v in self.values}) > 1

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key, "values": list(self.values)}


def rows(tables: list[Table]) -> list[Row]:
    keys = sorted({(s, k) for t in tables for s, keys in t.items() for k in keys})
    return [Row(s, k, tuple(t.get(s, {}).get(k) for t in tables)) for s, k in keys]


def output_digests(project: Project, run_id: str) -> Table:
    """step -> output path -> digest (tracking directories left out: their metrics are
    compared as metrics)."""
    table: Table = {}
    for step in project.records.step_runs(run_id):
        kept = {o.path: o.digest for o in step.outputs if not o.path.startswith(TRACKING_DIR + "/")}
        if kept:
            table[step.step_id] = dict(kept)
    return table


@dataclass(frozen=True)
class Comparison:
    runs: tuple[str, ...]
    params: list[Row]
    metrics: list[Row]
    outputs: list[Row]
    """Outputs whose digest differs between the runs."""
    errors: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": list(self.runs),
            "params": [r.to_json() for r in self.params],
            "metrics": [r.to_json() for r in self.metrics],
            "changed_outputs": [r.to_json() for r in self.outputs],
            "errors": self.errors,
        }


def compare(project: Project, runs: list[RunRecord]) -> Comparison:
    found = [read_tracking(project, run) for run in runs]
    digests = [output_digests(project, run.id) for run in runs]
    return Comparison(
        runs=tuple(run.id for run in runs),
        params=rows([f.params for f in found]),
        metrics=rows([f.metrics for f in found]),
        outputs=[r for r in rows(digests) if r.differs],
        errors=[f"run {f.run_id}: {e}" for f in found for e in f.errors],
    )
