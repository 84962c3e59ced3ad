"""LiteRepository: the metadata contract over the stdlib ``sqlite3`` module.

Same tables, statements and storage format as ``metadata/sql`` (rows convert through
``metadata/rows.py``); a test runs one contract suite against both. Each thread gets its
own connection, as SQLAlchemy's pool gives each thread its own.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conveyor.domain.jsonshape import TextTuple, json_text
from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import MetadataError
from conveyor.metadata.lite.connect import (
    JSON_COLUMNS,
    connect,
    lay_out,
    remember_schema,
    revision,
    revision_of,
)
from conveyor.metadata.lite.datasets import LiteDatasets
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
from conveyor.metadata.revision import HEAD
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

_STEP_COLUMNS = tuple(step_row(StepRunRecord("", "", "", StepStatus.QUEUED)))  # rows.py's order
_STEP_KEYS = ("run_id", "step_id")
_UPSERT_STEP = (
    f"INSERT INTO step_runs ({', '.join(_STEP_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _STEP_COLUMNS)}) "
    "ON CONFLICT (run_id, step_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _STEP_COLUMNS if c not in _STEP_KEYS)
)

_BUMP = (
    "INSERT INTO run_numbers (scope, last_number) VALUES (?, 1) ON CONFLICT (scope) "
    "DO UPDATE SET last_number = last_number + 1 RETURNING last_number"
)


def open_lite(path: Path) -> LiteRepository:
    """A repository on ``path``. A missing or empty database is laid out from this
    machine's template of the schema at ``HEAD`` when there is one; otherwise (and for an
    older schema) the Alembic chain, the one definition of the schema, creates or migrates
    it, and a database it created new becomes the template (SQLAlchemy is imported only
    then)."""
    url = f"sqlite:///{path}"
    try:
        if path.exists():
            # the repository's own connection answers: closing a connection of its own
            # would be the database's last and copy the previous run's log into it (a
            # checkpoint, with its fsyncs, tens of ms a run); SQLite checkpoints as it goes
            conn = connect(path)
            if revision_of(conn) == HEAD:
                return LiteRepository(path, conn)
            conn.close()
    except sqlite3.Error as exc:
        raise MetadataError(f"cannot open the run database {url}: {exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        current = path.exists() and revision(path) == HEAD
        if not current:
            laid = lay_out(path, HEAD)
            if laid is not None:  # its connection stays the repository's (no checkpoint)
                return LiteRepository(path, laid)
        # not laid out: another process may have done it meanwhile
        current = current or revision(path) == HEAD
        empty = not current and _empty(path)
    except (sqlite3.Error, OSError) as exc:
        raise MetadataError(f"cannot open the run database {url}: {exc}") from exc
    if not current:
        from conveyor.metadata.sql import open_repository

        open_repository(url).close()
        if empty:
            remember_schema(path, HEAD)
    return LiteRepository(path)


def _empty(path: Path) -> bool:
    """Whether ``path`` is missing or a database without any table."""
    if not path.exists():
        return True
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA busy_timeout=10000")
        return conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None


def _encoded(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns as SQLAlchemy's ``sa.JSON`` stores them on SQLite: ``json.dumps``
    (a value that carries its JSON text, ``domain/jsontext.py``, is not encoded again)."""
    return {k: _json(v) if k in JSON_COLUMNS else v for k, v in row.items()}


def _json(value: Any) -> str:
    text = json_text(value)
    return json.dumps(value) if text is None else text


def _step_values(r: StepRunRecord) -> tuple[Any, ...]:
    """``step_row(r)`` encoded, as a tuple in its column order, without the dictionaries:
    one per step of a run (a test holds the two equal)."""
    outputs = r.outputs
    text = json_text(outputs)
    if text is None:
        text = json.dumps([o.to_json() for o in outputs])
    return (
        r.run_id,
        r.step_id,
        r.job,
        str(r.status),
        r.fingerprint,
        r.cached,
        r.cached_from,
        r.exit_code,
        r.attempt,
        r.started_at,
        r.ended_at,
        r.log_path,
        r.command,
        _json(r.parts),
        text,
        r.error,
    )


class LiteRepository(LiteDatasets):
    def __init__(self, path: Path, conn: sqlite3.Connection | None = None) -> None:
        """``conn``: a connection from ``connect(path)`` to use as this thread's."""
        self.path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if conn is not None:
            self._local.conn = conn
            self._opened.append(conn)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self.path)
            except sqlite3.Error as exc:
                raise MetadataError(f"cannot open the run database {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def pragma(self, name: str) -> Any:
        """A connection setting of this thread's connection (``busy_timeout``, ...)."""
        return next(iter(self._conn().execute(f"PRAGMA {name}").fetchone().values()))

    # -- writes ---------------------------------------------------------------
    @contextmanager
    def _begin(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, all or nothing (a kill -9 mid-write leaves none of it)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise MetadataError(f"cannot write run records: {exc}") from exc

    def create_run(self, run: RunRecord, scope: str = "") -> int:
        row = _encoded(run_row(run))
        columns = ", ".join(f'"{c}"' for c in row)  # "commit" is a keyword
        with self._begin() as conn:  # BEGIN IMMEDIATE: one writer hands out numbers
            number = int(conn.execute(_BUMP, (scope,)).fetchone()["last_number"])
            conn.execute(
                f"INSERT INTO runs ({columns}) VALUES ({', '.join(':' + c for c in row)})",
                {**row, "number": number},
            )
        run.number = number
        return number

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        steps = list(batch.step_runs.values())
        step_rows = [_step_values(r) for r in steps]
        cache_rows = [
            (e.fingerprint, e.step_id, e.run_id, json.dumps([o.to_json() for o in e.outputs]))
            for e in batch.cache_entries
        ]
        event_rows = [(e.run_id, e.step_id, e.kind, e.at, json.dumps(e.data)) for e in batch.events]
        with self._begin() as conn:
            for run_id, (status, ended_at, error) in batch.run_updates.items():
                if ended_at is None:
                    conn.execute(
                        "UPDATE runs SET status = ?, error = ? WHERE id = ?",
                        (str(status), error, run_id),
                    )
                else:
                    conn.execute(
                        "UPDATE runs SET status = ?, error = ?, ended_at = ? WHERE id = ?",
                        (str(status), error, ended_at, run_id),
                    )
            if step_rows:
                conn.executemany(_UPSERT_STEP, step_rows)
                conn.executemany(
                    "INSERT INTO step_outputs (run_id, step_id, path, digest, kind, size) "
                    "VALUES (:run_id, :step_id, :path, :digest, :kind, :size) "
                    "ON CONFLICT DO NOTHING",
                    produced(steps),
                )
            conn.executemany(
                "INSERT INTO step_inputs (run_id, step_id, path, digest) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(r, s, i.path, i.digest) for (r, s), recs in batch.inputs.items() for i in recs],
            )
            conn.executemany(
                "INSERT INTO cache_entries (fingerprint, step_id, run_id, outputs) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET "
                "run_id = excluded.run_id, outputs = excluded.outputs",
                cache_rows,
            )
            conn.executemany(
                "INSERT INTO events (run_id, step_id, kind, at, data) VALUES (?, ?, ?, ?, ?)",
                event_rows,
            )

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        ids = sorted(set(run_ids))
        deleted = 0
        with self._begin() as conn:  # one transaction: a kill leaves all of it or none
            for start in range(0, len(ids), 500):  # stay under bound-parameter limits
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                for table in (
                    "events",
                    "step_inputs",
                    "step_outputs",
                    "cache_entries",
                    "run_datasets",
                ):
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM step_runs WHERE run_id IN ({marks})", chunk)
                deleted += conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk).rowcount
        return deleted

    # -- reads ----------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise MetadataError(f"cannot read run records: {exc}") from exc

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples, JSON columns as their text: for reads of one row per step
        of a run, where a dictionary per row costs more than the query."""
        try:
            cursor = self._conn().cursor()
            cursor.row_factory = None
            return cursor.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise MetadataError(f"cannot read run records: {exc}") from exc

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        return run_record(rows[0]) if rows else None

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        wanted = list(set(run_ids))
        found: dict[str, RunRecord] = {}
        for start in range(0, len(wanted), 900):  # stay under SQLite's parameter limit
            chunk = wanted[start : start + 900]
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(f"SELECT * FROM runs WHERE id IN ({marks})", chunk)
            found |= {r.id: r for r in map(run_record, rows)}
        return found

    def find_runs(self, prefix: str) -> list[RunRecord]:
        if not hex_prefix(prefix):
            return []
        rows = self._rows("SELECT * FROM runs WHERE id LIKE ? LIMIT 10", (prefix + "%",))
        return [run_record(r) for r in rows]

    def runs_numbered(self, number: int) -> list[RunRecord]:
        rows = self._rows("SELECT * FROM runs WHERE number = ? LIMIT 1000", (number,))
        return [run_record(r) for r in rows]

    def latest_run(self) -> RunRecord | None:
        runs = self.list_runs(1)
        return runs[0] if runs else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._rows("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [run_record(r) for r in rows]

    def page_runs(
        self,
        limit: int,
        after: str | None = None,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        trigger: str | None = None,
    ) -> RunsPage | None:
        terms, values = ["1"], []
        for column, value in (("status", status), ("pipeline", pipeline), ("trigger", trigger)):
            if value is not None:
                terms.append(f"{column} = ?")
                values.append(str(value))
        where = " AND ".join(terms)
        total = int(self._rows(f"SELECT count(*) AS n FROM runs WHERE {where}", values)[0]["n"])
        if after is not None:
            anchor = self._rows("SELECT created_at FROM runs WHERE id = ?", (after,))
            if not anchor:
                return None
            at = anchor[0][
                "created_at"
            ]  # a range on the index first: a deep page starts at its place
            where += " AND created_at <= ? AND (created_at < ? OR id < ?)"
            values += [at, at, after]
        rows = self._rows(
            f"SELECT * FROM runs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            [*values, limit + 1],
        )
        found = [run_record(r) for r in rows]
        more = len(found) > limit
        return found[:limit], total, (found[limit - 1].id if more else None)

    def step_counts(self, run_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        wanted = list(set(run_ids))
        counts: dict[str, tuple[int, int]] = {}
        for start in range(0, len(wanted), 900):  # stay under SQLite's parameter limit
            chunk = wanted[start : start + 900]
            rows = self._rows(
                "SELECT run_id, sum(cached) AS hits, "
                "sum(NOT cached AND started_at IS NOT NULL) AS ran "
                f"FROM step_runs WHERE run_id IN ({', '.join('?' * len(chunk))}) GROUP BY run_id",
                chunk,
            )
            counts |= {r["run_id"]: (int(r["hits"] or 0), int(r["ran"] or 0)) for r in rows}
        return counts

    def step_states(self, run_id: str) -> list[StepState]:
        rows = self._rows(
            "SELECT step_id, status, cached, exit_code, attempt, started_at, ended_at "
            "FROM step_runs WHERE run_id = ?",
            (run_id,),
        )
        return [
            StepState(
                r["step_id"],
                StepStatus(r["status"]),
                bool(r["cached"]),
                r["exit_code"],
                r["attempt"],
                r["started_at"],
                r["ended_at"],
            )
            for r in rows
        ]

    def runs_in_progress(self) -> list[RunRecord]:
        rows = self._rows("SELECT * FROM runs WHERE status IN ('running', 'queued')")
        return [run_record(r) for r in rows]

    def step_runs(self, run_id: str) -> list[StepRunRecord]:
        rows = self._rows("SELECT * FROM step_runs WHERE run_id = ?", (run_id,))
        return [step_record(r) for r in rows]

    def step_history(self, step_id: str, limit: int = 20) -> list[StepRunRecord]:
        rows = self._rows(
            "SELECT * FROM step_runs WHERE step_id = ? "
            "ORDER BY coalesce(started_at, ended_at) DESC LIMIT ?",
            (step_id, limit),
        )
        return [step_record(r) for r in rows]

    def inputs_of(self, run_id: str, step_id: str) -> list[InputRecord]:
        rows = self._rows(
            "SELECT path, digest FROM step_inputs WHERE run_id = ? AND step_id = ?",
            (run_id, step_id),
        )
        return [InputRecord(r["path"], r["digest"]) for r in rows]

    def cache_entries(self, step_ids: Iterable[str]) -> dict[str, CacheEntry]:
        wanted = list(set(step_ids))
        result: dict[str, CacheEntry] = {}
        for start in range(0, len(wanted), 900):  # stay under bound-parameter limits
            chunk = wanted[start : start + 900]
            marks = ", ".join("?" * len(chunk))
            for key, step_id, run_id, text in self._tuples(
                "SELECT fingerprint, step_id, run_id, outputs "
                f"FROM cache_entries WHERE step_id IN ({marks})",
                chunk,
            ):
                # the text is kept: a cache hit's records row repeats it
                outputs = TextTuple(map(output, json.loads(text)), text)
                result[key] = CacheEntry(key, step_id, run_id, outputs)
        return result

    def producers(self, digest: str) -> list[tuple[str, str, OutputRecord]]:
        rows = self._rows("SELECT * FROM step_outputs WHERE digest = ?", (digest,))
        return [(r["run_id"], r["step_id"], output_row(r)) for r in rows]

    def consumers(self, digest: str) -> list[tuple[str, str, InputRecord]]:
        rows = self._rows("SELECT * FROM step_inputs WHERE digest = ?", (digest,))
        return [(r["run_id"], r["step_id"], InputRecord(r["path"], r["digest"])) for r in rows]

    def outputs_at_path(self, path: str) -> list[tuple[str, str, OutputRecord]]:
        rows = self._rows(
            "SELECT step_outputs.* FROM step_outputs JOIN runs ON runs.id = step_outputs.run_id "
            "WHERE step_outputs.path = ? ORDER BY runs.created_at DESC",
            (path,),
        )
        return [(r["run_id"], r["step_id"], output_row(r)) for r in rows]

    def referenced_digests(self) -> set[str]:
        """Produced outputs, cache entries and dataset commits' trees. A cache hit's outputs
        are its producer's: deleting runs never removes the producer of a kept run's cache
        hit."""
        digests = {r["digest"] for r in self._rows("SELECT digest FROM step_outputs")}
        digests.update(r["tree"] for r in self._rows("SELECT tree FROM dataset_commits"))
        for row in self._rows("SELECT outputs FROM cache_entries"):
            digests.update(o["digest"] for o in row["outputs"])
        return digests

    def cached_from(self, run_id: str) -> set[str]:
        rows = self._rows(
            "SELECT cached_from FROM step_runs WHERE run_id = ? AND cached_from IS NOT NULL",
            (run_id,),
        )
        return {r["cached_from"] for r in rows}

    def events(self, run_id: str) -> list[EventRecord]:
        rows = self._rows("SELECT * FROM events WHERE run_id = ? ORDER BY id", (run_id,))
        return [EventRecord(r["run_id"], r["kind"], r["at"], r["step_id"], r["data"]) for r in rows]

    def close(self) -> None:
        """Close every thread's connection; a later call opens new ones (as SQLAlchemy's
        ``dispose`` allows)."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for conn in opened:
            conn.close()
