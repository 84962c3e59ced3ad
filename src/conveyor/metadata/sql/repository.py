"""SqlRepository: the metadata contract over SQLAlchemy Core."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import MetadataError
from conveyor.metadata.records import (
    CacheEntry,
    EventRecord,
    InputRecord,
    OutputRecord,
    RunRecord,
    StepRunRecord,
    StepState,
)
from conveyor.metadata.repository import RunsPage, WriteBatch
from conveyor.metadata.rows import (
    hex_prefix,
    output,
    output_row,
    produced,
    run_record,
    run_row,
    step_record,
    step_row,
)
from conveyor.metadata.sql import tables as t
from conveyor.metadata.sql.datasets import SqlDatasets
from conveyor.metadata.sql.migrate import upgrade

SQLITE_POOL = {"pool_size": 24, "max_overflow": 40}
"""Connections kept open for a server's request threads (40 at most, plus its background
threads): with the default 5, each request above five opened a connection (and ran its
pragmas) and closed it again, a third of a deployment call's database time."""


def open_repository(url: str) -> SqlRepository:
    """Connect to ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``) and migrate."""
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        on_file = url.startswith("sqlite:///") and ":memory:" not in url  # else no QueuePool
        engine = sa.create_engine(url, future=True, **(SQLITE_POOL if on_file else {}))
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        upgrade(engine)
    except sa.exc.ArgumentError as exc:
        raise MetadataError(f"cannot use database URL {url!r}: {exc}") from exc
    except sa.exc.DBAPIError as exc:
        raise MetadataError(f"cannot open the run database {url}: {exc.orig}") from exc
    return SqlRepository(engine)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the running writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process kills, fast
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT for the dialect in use."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


class SqlRepository(SqlDatasets):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    def _insert(self, table: sa.Table) -> Any:
        return _insert(self._dialect, table)

    # -- writes ---------------------------------------------------------------
    def create_run(self, run: RunRecord, scope: str = "") -> int:
        counter = t.run_numbers.c.last_number
        bump = (
            self._insert(t.run_numbers)
            .values(scope=scope, last_number=1)
            .on_conflict_do_update(index_elements=["scope"], set_={"last_number": counter + 1})
            .returning(counter)
        )
        with self._begin() as conn:  # the counter's row is locked until the run is in
            number = int(conn.execute(bump).scalar_one())
            conn.execute(t.runs.insert().values(run_row(dataclasses.replace(run, number=number))))
        run.number = number
        return number

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        with self._begin() as conn:
            for run_id, (status, ended_at, error) in batch.run_updates.items():
                values: dict[str, Any] = {"status": str(status), "error": error}
                if ended_at is not None:
                    values["ended_at"] = ended_at
                conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(values))
            if batch.step_runs:
                self._upsert_step_runs(conn, list(batch.step_runs.values()))
            inputs = [
                {"run_id": r, "step_id": s, "path": i.path, "digest": i.digest}
                for (r, s), recs in batch.inputs.items()
                for i in recs
            ]
            if inputs:
                stmt = _insert(self._dialect, t.step_inputs).on_conflict_do_nothing()
                conn.execute(stmt, inputs)
            if batch.cache_entries:
                stmt = _insert(self._dialect, t.cache_entries)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["fingerprint"],
                    set_={"run_id": stmt.excluded.run_id, "outputs": stmt.excluded.outputs},
                )
                conn.execute(
                    stmt,
                    [
                        {
                            "fingerprint": e.fingerprint,
                            "step_id": e.step_id,
                            "run_id": e.run_id,
                            "outputs": [o.to_json() for o in e.outputs],
                        }
                        for e in batch.cache_entries
                    ],
                )
            if batch.events:
                conn.execute(
                    t.events.insert(),
                    [
                        {
                            "run_id": e.run_id,
                            "step_id": e.step_id,
                            "kind": e.kind,
                            "at": e.at,
                            "data": e.data,
                        }
                        for e in batch.events
                    ],
                )

    def _upsert_step_runs(self, conn: sa.Connection, records: Sequence[StepRunRecord]) -> None:
        rows = [step_row(r) for r in records]
        stmt = _insert(self._dialect, t.step_runs)
        updated = {c.name: stmt.excluded[c.name] for c in t.step_runs.c if not c.primary_key}
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["run_id", "step_id"], set_=updated), rows
        )
        lineage = produced(list(records))
        if lineage:
            conn.execute(_insert(self._dialect, t.step_outputs).on_conflict_do_nothing(), lineage)

    def _begin(self) -> Any:
        try:
            return self.engine.begin()
        except sa.exc.DBAPIError as exc:  # pragma: no cover - connection loss
            raise MetadataError(f"cannot write run records: {exc.orig}") from exc

    # -- reads ----------------------------------------------------------------
    def _rows(self, stmt: Any, params: dict[str, Any] | None = None) -> Sequence[sa.Row[Any]]:
        try:
            with self.engine.connect() as conn:
                return conn.execute(stmt, params or {}).all()
        except sa.exc.DBAPIError as exc:
            raise MetadataError(f"cannot read run records: {exc.orig}") from exc

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._rows(sa.select(t.runs).where(t.runs.c.id == run_id))
        return run_record(rows[0]._mapping) if rows else None

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        wanted = list(set(run_ids))
        found: dict[str, RunRecord] = {}
        for start in range(0, len(wanted), 900):  # stay under bound-parameter limits
            stmt = sa.select(t.runs).where(t.runs.c.id.in_(wanted[start : start + 900]))
            found |= {r.id: r for r in (run_record(row._mapping) for row in self._rows(stmt))}
        return found

    def find_runs(self, prefix: str) -> list[RunRecord]:
        if not hex_prefix(prefix):
            return []
        rows = self._rows(sa.select(t.runs).where(t.runs.c.id.like(prefix + "%")).limit(10))
        return [run_record(r._mapping) for r in rows]

    def runs_numbered(self, number: int) -> list[RunRecord]:
        rows = self._rows(sa.select(t.runs).where(t.runs.c.number == number).limit(1000))
        return [run_record(r._mapping) for r in rows]

    def latest_run(self) -> RunRecord | None:
        runs = self.list_runs(1)
        return runs[0] if runs else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        stmt = sa.select(t.runs).order_by(t.runs.c.created_at.desc()).limit(limit)
        return [run_record(r._mapping) for r in self._rows(stmt)]

    def page_runs(
        self,
        limit: int,
        after: str | None = None,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        trigger: str | None = None,
    ) -> RunsPage | None:
        c = t.runs.c
        where: sa.ColumnElement[bool] = sa.true()
        for column, value in ((c.status, status), (c.pipeline, pipeline), (c.trigger, trigger)):
            if value is not None:
                where &= column == str(value)
        query = sa.select(t.runs).where(where)
        total = int(self._rows(sa.select(sa.func.count()).select_from(t.runs).where(where))[0][0])
        if after is not None:
            anchor = self._rows(sa.select(c.created_at).where(c.id == after))
            if not anchor:
                return None
            at = anchor[0][0]  # a range on the index first: a deep page starts at its place
            query = query.where((c.created_at <= at) & ((c.created_at < at) | (c.id < after)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        found = [run_record(r._mapping) for r in self._rows(query)]
        more = len(found) > limit
        return found[:limit], total, (found[limit - 1].id if more else None)

    def runs_in_progress(self) -> list[RunRecord]:
        stmt = sa.select(t.runs).where(t.runs.c.status.in_(["running", "queued"]))
        return [run_record(r._mapping) for r in self._rows(stmt)]

    def step_runs(self, run_id: str) -> list[StepRunRecord]:
        stmt = sa.select(t.step_runs).where(t.step_runs.c.run_id == run_id)
        return [step_record(r._mapping) for r in self._rows(stmt)]

    def step_counts(self, run_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """For each run: its step runs served from the cache and those that started
        (one grouped query; the server's runs list, without reading every record)."""
        c = t.step_runs.c
        wanted = list(set(run_ids))
        counts: dict[str, tuple[int, int]] = {}
        for start in range(0, len(wanted), 900):  # stay under bound-parameter limits
            stmt = (
                sa.select(
                    c.run_id,
                    sa.func.sum(sa.case((c.cached, 1), else_=0)),
                    sa.func.sum(sa.case(((~c.cached) & c.started_at.is_not(None), 1), else_=0)),
                )
                .where(c.run_id.in_(wanted[start : start + 900]))
                .group_by(c.run_id)
            )
            for row in self._rows(stmt):
                run_id, cached, ran = tuple(row)
                counts[run_id] = (int(cached or 0), int(ran or 0))
        return counts

    def step_states(self, run_id: str) -> list[StepState]:
        """The live part of a run's step runs, without their parts and outputs (what a
        page polls every second)."""
        c = t.step_runs.c
        stmt = sa.select(
            c.step_id, c.status, c.cached, c.exit_code, c.attempt, c.started_at, c.ended_at
        ).where(c.run_id == run_id)
        states = []
        for row in self._rows(stmt):
            step_id, status, cached, exit_code, attempt, started, ended = tuple(row)
            states.append(
                StepState(
                    step_id, StepStatus(status), bool(cached), exit_code, attempt, started, ended
                )
            )
        return states

    def step_history(self, step_id: str, limit: int = 20) -> list[StepRunRecord]:
        stmt = (
            sa.select(t.step_runs)
            .where(t.step_runs.c.step_id == step_id)
            .order_by(sa.func.coalesce(t.step_runs.c.started_at, t.step_runs.c.ended_at).desc())
            .limit(limit)
        )
        return [step_record(r._mapping) for r in self._rows(stmt)]

    def inputs_of(self, run_id: str, step_id: str) -> list[InputRecord]:
        stmt = sa.select(t.step_inputs.c.path, t.step_inputs.c.digest).where(
            t.step_inputs.c.run_id == run_id, t.step_inputs.c.step_id == step_id
        )
        return [InputRecord(r.path, r.digest) for r in self._rows(stmt)]

    def cache_entries(self, step_ids: Iterable[str]) -> dict[str, CacheEntry]:
        wanted = list(set(step_ids))
        result: dict[str, CacheEntry] = {}
        for start in range(0, len(wanted), 900):  # stay under bound-parameter limits
            chunk = wanted[start : start + 900]
            stmt = sa.select(t.cache_entries).where(t.cache_entries.c.step_id.in_(chunk))
            for row in self._rows(stmt):
                outputs = tuple(output(o) for o in row.outputs)
                result[row.fingerprint] = CacheEntry(
                    row.fingerprint, row.step_id, row.run_id, outputs
                )
        return result

    def producers(self, digest: str) -> list[tuple[str, str, OutputRecord]]:
        stmt = sa.select(t.step_outputs).where(t.step_outputs.c.digest == digest)
        return [(r.run_id, r.step_id, output_row(r._mapping)) for r in self._rows(stmt)]

    def consumers(self, digest: str) -> list[tuple[str, str, InputRecord]]:
        stmt = sa.select(t.step_inputs).where(t.step_inputs.c.digest == digest)
        return [(r.run_id, r.step_id, InputRecord(r.path, r.digest)) for r in self._rows(stmt)]

    def outputs_at_path(self, path: str) -> list[tuple[str, str, OutputRecord]]:
        stmt = (
            sa.select(t.step_outputs)
            .join(t.runs, t.runs.c.id == t.step_outputs.c.run_id)
            .where(t.step_outputs.c.path == path)
            .order_by(t.runs.c.created_at.desc())
        )
        return [(r.run_id, r.step_id, output_row(r._mapping)) for r in self._rows(stmt)]

    def referenced_digests(self) -> set[str]:
        """Produced outputs, cache entries and dataset commits' trees. A cache hit's outputs
        are its producer's: deleting runs never removes the producer of a kept run's cache
        hit."""
        digests = {r.digest for r in self._rows(sa.select(t.step_outputs.c.digest))}
        digests.update(r.tree for r in self._rows(sa.select(t.dataset_commits.c.tree)))
        for row in self._rows(sa.select(t.cache_entries.c.outputs)):
            digests.update(o["digest"] for o in row.outputs)
        return digests

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        ids = sorted(set(run_ids))
        deleted = 0
        with self._begin() as conn:  # one transaction: a kill leaves all of it or none
            for start in range(0, len(ids), 500):  # stay under bound-parameter limits
                chunk = ids[start : start + 500]
                for table in (
                    t.events,
                    t.step_inputs,
                    t.step_outputs,
                    t.cache_entries,
                    t.run_datasets,
                ):
                    conn.execute(table.delete().where(table.c.run_id.in_(chunk)))
                conn.execute(t.step_runs.delete().where(t.step_runs.c.run_id.in_(chunk)))
                result = conn.execute(t.runs.delete().where(t.runs.c.id.in_(chunk)))
                deleted += result.rowcount or 0
        return deleted

    def cached_from(self, run_id: str) -> set[str]:
        stmt = sa.select(t.step_runs.c.cached_from).where(
            t.step_runs.c.run_id == run_id, t.step_runs.c.cached_from.is_not(None)
        )
        return {r.cached_from for r in self._rows(stmt)}

    def events(self, run_id: str) -> list[EventRecord]:
        stmt = sa.select(t.events).where(t.events.c.run_id == run_id).order_by(t.events.c.id)
        return [EventRecord(r.run_id, r.kind, r.at, r.step_id, r.data) for r in self._rows(stmt)]

    def close(self) -> None:
        self.engine.dispose()
