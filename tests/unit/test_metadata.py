"""The records repository contract over a temp SQLite file, run against both implementations
(SQLAlchemy's ``SqlRepository`` and the stdlib ``LiteRepository``): runs, step runs, cache
entries, lineage, migrations."""

from __future__ import annotations

import ast
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import MetadataError
from conveyor.metadata.database import open_records
from conveyor.metadata.lite import LiteRepository, open_lite
from conveyor.metadata.lite.connect import schema_template
from conveyor.metadata.records import (
    CacheEntry,
    EventRecord,
    InputRecord,
    OutputRecord,
    RunRecord,
    StepRunRecord,
)
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.metadata.sql import SqlRepository, migrate, open_repository

D1, D2, D3, D4 = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "runs.sqlite"


Opener = Callable[[Path], MetadataRepository]
OPENERS: dict[str, Opener] = {
    "sql": lambda path: open_repository(f"sqlite:///{path}"),
    "lite": open_lite,
}


@pytest.fixture(params=sorted(OPENERS))
def opener(request: pytest.FixtureRequest) -> Opener:
    return OPENERS[request.param]


@pytest.fixture
def repo(db_path: Path, opener: Opener) -> Iterator[MetadataRepository]:
    repository = opener(db_path)
    yield repository
    repository.close()


def run(run_id: str, created_at: float, **fields: object) -> RunRecord:
    return RunRecord(
        id=run_id,
        pipeline="demo",
        status=RunStatus.RUNNING,
        commit="f" * 40,
        dirty=False,
        created_at=created_at,
        **fields,  # type: ignore[arg-type]
    )


def step_run(run_id: str, step_id: str, **fields: object) -> StepRunRecord:
    values: dict[str, object] = {"status": StepStatus.SUCCEEDED}
    values.update(fields)
    return StepRunRecord(
        run_id=run_id,
        step_id=step_id,
        job=step_id.split(".", maxsplit=1)[0],
        **values,  # type: ignore[arg-type]
    )


def count_rows(db_path: Path, table: str) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# -- runs ----------------------------------------------------------------------------------


def test_open_creates_the_file_and_its_directory(db_path: Path, opener: Opener) -> None:
    assert not db_path.parent.exists()
    repository = opener(db_path)
    repository.close()
    assert db_path.is_file()


def test_create_and_get_run_round_trips_every_field(repo: MetadataRepository) -> None:
    record = run(
        "0123456789ab",
        1000.5,
        diff_digest=D1,
        params={"lr": 0.1, "name": "x", "n": 3, "flag": True},
        who="ada",
        host="lab-1",
        pid=4242,
        started_at=1001.0,
        ended_at=None,
        executor="htcondor",
        spec_path="conveyor.yml",
        trigger="push",
        workdir="/tmp/w",
        error=None,
    )
    repo.create_run(record)
    assert repo.get_run("0123456789ab") == record
    assert repo.get_run("nope") is None


def test_create_run_twice_is_refused(repo: MetadataRepository) -> None:
    repo.create_run(run("0123456789ab", 1.0))
    with pytest.raises((MetadataError, sa.exc.IntegrityError)):
        repo.create_run(run("0123456789ab", 2.0))


def test_find_runs_by_prefix(repo: MetadataRepository) -> None:
    for run_id, at in [("abc111111111", 1.0), ("abc222222222", 2.0), ("abd333333333", 3.0)]:
        repo.create_run(run(run_id, at))
    assert {r.id for r in repo.find_runs("abc")} == {"abc111111111", "abc222222222"}
    assert [r.id for r in repo.find_runs("abd")] == ["abd333333333"]
    assert [r.id for r in repo.find_runs("abc2")] == ["abc222222222"]
    assert repo.find_runs("zzz") == []
    assert len(repo.find_runs("ab")) == 3


def test_runs_by_number_in_every_scope(repo: MetadataRepository) -> None:
    repo.create_run(run("abc111111111", 1.0))
    repo.create_run(run("abc222222222", 2.0))
    repo.create_run(run("abd333333333", 3.0), "other")
    assert sorted(r.id for r in repo.runs_numbered(1)) == ["abc111111111", "abd333333333"]
    assert [r.id for r in repo.runs_numbered(2)] == ["abc222222222"]
    assert repo.runs_numbered(3) == []


def test_find_runs_treats_like_wildcards_literally(repo: MetadataRepository) -> None:
    repo.create_run(run("abc111111111", 1.0))
    # no run id starts with these, so none may match
    for prefix in ("%", "a%", "ab_", "_bc"):
        assert repo.find_runs(prefix) == [], prefix


def test_latest_run_and_list_runs(repo: MetadataRepository) -> None:
    assert repo.latest_run() is None
    repo.create_run(run("000000000002", 20.0))
    repo.create_run(run("000000000003", 30.0))
    repo.create_run(run("000000000001", 10.0))
    latest = repo.latest_run()
    assert latest is not None and latest.id == "000000000003"
    assert [r.id for r in repo.list_runs()] == ["000000000003", "000000000002", "000000000001"]
    assert [r.id for r in repo.list_runs(2)] == ["000000000003", "000000000002"]


def test_run_updates_and_runs_in_progress(repo: MetadataRepository) -> None:
    repo.create_run(run("000000000001", 1.0))
    repo.create_run(run("000000000002", 2.0))
    assert {r.id for r in repo.runs_in_progress()} == {"000000000001", "000000000002"}
    batch = WriteBatch()
    batch.run_updates["000000000001"] = (RunStatus.FAILED, 9.0, "step a.s failed")
    repo.write(batch)
    updated = repo.get_run("000000000001")
    assert updated is not None
    assert (updated.status, updated.ended_at, updated.error) == (
        RunStatus.FAILED,
        9.0,
        "step a.s failed",
    )
    assert [r.id for r in repo.runs_in_progress()] == ["000000000002"]


# -- step runs ---------------------------------------------------------------------------


def test_same_step_run_twice_in_one_batch_is_one_row(
    repo: MetadataRepository, db_path: Path
) -> None:
    repo.create_run(run("r1", 1.0))
    batch = WriteBatch()
    batch.put_step_run(step_run("r1", "a.s", status=StepStatus.RUNNING, attempt=1))
    batch.put_step_run(step_run("r1", "a.s", status=StepStatus.SUCCEEDED, attempt=1))
    assert len(batch.step_runs) == 1
    repo.write(batch)
    assert count_rows(db_path, "step_runs") == 1
    (stored,) = repo.step_runs("r1")
    assert stored.status == StepStatus.SUCCEEDED


def test_a_later_batch_updates_the_step_run_in_place(
    repo: MetadataRepository, db_path: Path
) -> None:
    repo.create_run(run("r1", 1.0))
    first = WriteBatch()
    first.put_step_run(step_run("r1", "a.s", status=StepStatus.RUNNING, started_at=5.0))
    repo.write(first)
    second = WriteBatch()
    final = step_run(
        "r1",
        "a.s",
        status=StepStatus.FAILED,
        started_at=5.0,
        ended_at=6.5,
        exit_code=3,
        attempt=2,
        fingerprint=D1,
        log_path="logs/a.s.log",
        command="python a.py",
        parts={"command": "python a.py", "params": {"lr": 0.1}},
        error="exit code 3",
    )
    second.put_step_run(final)
    repo.write(second)
    assert count_rows(db_path, "step_runs") == 1
    assert repo.step_runs("r1") == [final]


def test_step_history_newest_first(repo: MetadataRepository) -> None:
    for i in range(3):
        repo.create_run(run(f"r{i}", float(i)))
        batch = WriteBatch()
        batch.put_step_run(step_run(f"r{i}", "a.s", started_at=float(10 + i)))
        batch.put_step_run(step_run(f"r{i}", "b.s", started_at=float(10 + i)))
        repo.write(batch)
    assert [r.run_id for r in repo.step_history("a.s")] == ["r2", "r1", "r0"]
    assert [r.run_id for r in repo.step_history("a.s", limit=1)] == ["r2"]
    assert repo.step_history("zzz.s") == []


def test_empty_batch_is_a_no_op(repo: MetadataRepository) -> None:
    batch = WriteBatch()
    assert not batch
    repo.write(batch)
    assert repo.list_runs() == []


def test_a_failing_batch_writes_nothing(repo: MetadataRepository, db_path: Path) -> None:
    repo.create_run(run("r1", 1.0))
    batch = WriteBatch()
    batch.put_step_run(step_run("r1", "a.s"))
    batch.events.append(EventRecord("r1", "x" * 10, 1.0, None, {"bad": {1, 2}}))  # not JSON
    with pytest.raises((MetadataError, sa.exc.StatementError, TypeError)):
        repo.write(batch)
    assert count_rows(db_path, "step_runs") == 0


def test_events_in_order(repo: MetadataRepository) -> None:
    repo.create_run(run("r1", 1.0))
    batch = WriteBatch()
    batch.events.append(EventRecord("r1", "run-started", 1.0, None, {"steps": 2}))
    batch.events.append(EventRecord("r1", "step-finished", 2.0, "a.s", {"status": "ok"}))
    repo.write(batch)
    batch = WriteBatch()
    batch.events.append(EventRecord("r1", "run-finished", 3.0))
    repo.write(batch)
    assert [(e.kind, e.step_id, e.data) for e in repo.events("r1")] == [
        ("run-started", None, {"steps": 2}),
        ("step-finished", "a.s", {"status": "ok"}),
        ("run-finished", None, {}),
    ]
    assert repo.events("other") == []


# -- cache entries -----------------------------------------------------------------------


def test_cache_entries_by_step_ids(repo: MetadataRepository) -> None:
    out_a = (OutputRecord("a.csv", D1, "file", 10),)
    out_b = (OutputRecord("model", D2, "tree", 2048),)
    batch = WriteBatch()
    batch.cache_entries.append(CacheEntry(D3, "a.s", "r1", out_a))
    batch.cache_entries.append(CacheEntry(D4, "b.s", "r1", out_b))
    repo.write(batch)
    assert repo.cache_entries(["a.s"]) == {D3: CacheEntry(D3, "a.s", "r1", out_a)}
    assert set(repo.cache_entries(["a.s", "b.s", "c.s"])) == {D3, D4}
    assert repo.cache_entries([]) == {}
    assert repo.cache_entries(["c.s"]) == {}


def test_cache_entry_for_the_same_fingerprint_is_replaced(repo: MetadataRepository) -> None:
    first = WriteBatch()
    first.cache_entries.append(CacheEntry(D3, "a.s", "r1", (OutputRecord("a.csv", D1),)))
    repo.write(first)
    second = WriteBatch()
    second.cache_entries.append(CacheEntry(D3, "a.s", "r2", (OutputRecord("a.csv", D2),)))
    repo.write(second)
    entries = repo.cache_entries(["a.s"])
    assert list(entries) == [D3]
    assert entries[D3].run_id == "r2"
    assert entries[D3].outputs == (OutputRecord("a.csv", D2),)


def test_cache_entries_for_many_step_ids(repo: MetadataRepository) -> None:
    batch = WriteBatch()
    fingerprints = [f"{i:064x}" for i in range(2000)]
    for i, fp in enumerate(fingerprints):
        batch.cache_entries.append(CacheEntry(fp, f"j{i}.s", "r1", ()))
    repo.write(batch)
    assert set(repo.cache_entries(f"j{i}.s" for i in range(2000))) == set(fingerprints)


# -- lineage -------------------------------------------------------------------------------


def lineage_batch() -> WriteBatch:
    batch = WriteBatch()
    batch.put_step_run(
        step_run("r1", "prep.clean", outputs=[OutputRecord("clean.csv", D1, "file", 5)])
    )
    batch.put_step_run(
        step_run(
            "r1",
            "train.fit",
            outputs=[OutputRecord("model", D2, "tree", 9), OutputRecord("m.json", D3)],
        )
    )
    batch.inputs[("r1", "train.fit")] = [InputRecord("clean.csv", D1)]
    batch.inputs[("r1", "report.plot")] = [InputRecord("clean.csv", D1), InputRecord("x", D4)]
    # a cache hit records its outputs but is not their producer
    batch.put_step_run(
        step_run("r1", "other.copy", cached=True, outputs=[OutputRecord("dup.csv", D4)])
    )
    # a failed step produced nothing
    batch.put_step_run(
        step_run("r1", "bad.s", status=StepStatus.FAILED, outputs=[OutputRecord("bad", D4)])
    )
    return batch


def test_producers_and_consumers(repo: MetadataRepository) -> None:
    repo.create_run(run("r1", 1.0))
    repo.write(lineage_batch())
    assert repo.producers(D1) == [("r1", "prep.clean", OutputRecord("clean.csv", D1, "file", 5))]
    assert repo.producers(D2) == [("r1", "train.fit", OutputRecord("model", D2, "tree", 9))]
    assert repo.producers(D4) == []
    consumers = sorted(repo.consumers(D1))
    assert consumers == [
        ("r1", "report.plot", InputRecord("clean.csv", D1)),
        ("r1", "train.fit", InputRecord("clean.csv", D1)),
    ]
    assert repo.consumers(D2) == []
    assert sorted(repo.inputs_of("r1", "report.plot"), key=lambda i: i.path) == [
        InputRecord("clean.csv", D1),
        InputRecord("x", D4),
    ]


def test_lineage_rows_are_not_duplicated_by_rewrites(
    repo: MetadataRepository, db_path: Path
) -> None:
    repo.create_run(run("r1", 1.0))
    repo.write(lineage_batch())
    repo.write(lineage_batch())
    assert count_rows(db_path, "step_outputs") == 3
    assert count_rows(db_path, "step_inputs") == 3
    assert len(repo.producers(D1)) == 1


def test_outputs_at_path_newest_run_first(repo: MetadataRepository) -> None:
    for run_id, at, digest in [("r1", 1.0, D1), ("r2", 2.0, D2)]:
        repo.create_run(run(run_id, at))
        batch = WriteBatch()
        batch.put_step_run(step_run(run_id, "a.s", outputs=[OutputRecord("out.csv", digest)]))
        repo.write(batch)
    assert [(r, o.digest) for r, _, o in repo.outputs_at_path("out.csv")] == [
        ("r2", D2),
        ("r1", D1),
    ]
    assert repo.outputs_at_path("nope") == []


def test_referenced_digests(repo: MetadataRepository) -> None:
    assert repo.referenced_digests() == set()
    repo.create_run(run("r1", 1.0))
    repo.write(lineage_batch())
    batch = WriteBatch()
    extra = "e" * 64
    batch.cache_entries.append(CacheEntry("f" * 64, "z.s", "r0", (OutputRecord("z", extra),)))
    repo.write(batch)
    # produced outputs and cache entries; not inputs alone, not failed or cached steps
    assert repo.referenced_digests() == {D1, D2, D3, extra}


# -- migrations --------------------------------------------------------------------------


def test_schema_is_at_head_after_open(repo: MetadataRepository, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [(migrate.HEAD,)]


def runs_indexes(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {str(index["name"]) for index in sa.inspect(engine).get_indexes("runs")}
    finally:
        engine.dispose()


def test_runs_are_indexed_by_number(repo: MetadataRepository, db_path: Path) -> None:
    """``runs_numbered`` filters runs by number alone (0005_runnumidx), whichever
    repository laid the schema out (Alembic, or the stdlib one from its snapshot)."""
    assert "ix_runs_number" in runs_indexes(f"sqlite:///{db_path}")


def test_a_database_at_0004_gains_the_number_index(db_path: Path, opener: Opener) -> None:
    """A records file made before 0005_runnumidx is upgraded on open: its runs keep their
    numbers and get the index."""
    from alembic import command
    from alembic.config import Config

    db_path.parent.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{db_path}")
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004_runnum")
    engine.dispose()
    assert "ix_runs_number" not in runs_indexes(f"sqlite:///{db_path}")
    repository = opener(db_path)
    try:
        assert repository.create_run(run("r1", 1.0)) == 1
        assert [r.id for r in repository.runs_numbered(1)] == ["r1"]
    finally:
        repository.close()
    assert "ix_runs_number" in runs_indexes(f"sqlite:///{db_path}")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrate.HEAD,)
        ]


def test_a_second_open_does_not_run_migrations(
    db_path: Path, opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = opener(db_path)
    first.create_run(run("r1", 1.0))
    first.close()

    import alembic.command

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("migrations ran on a database already at HEAD")

    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    second = opener(db_path)
    assert second.get_run("r1") is not None
    second.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrate.HEAD,)
        ]


def test_a_fresh_database_does_run_migrations(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's repository migrates a new database through Alembic (the stdlib one
    lays it out from Alembic's snapshot: see the test of a new stdlib database)."""
    import alembic.command

    calls: list[object] = []
    real = alembic.command.upgrade

    def counting(*args: object, **kwargs: object) -> None:
        calls.append(args)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(alembic.command, "upgrade", counting)
    OPENERS["sql"](db_path).close()
    assert len(calls) == 1


def revisions() -> dict[str, str | None]:
    """revision -> down_revision for every file in migrations/versions."""
    found: dict[str, str | None] = {}
    for path in sorted((migrate.MIGRATIONS / "versions").glob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        values: dict[str, object] = {}
        for node in module.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and node.value is not None:
                        try:
                            values[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            continue
        assert isinstance(values.get("revision"), str), f"{path.name} has no revision"
        down = values.get("down_revision")
        assert down is None or isinstance(down, str)
        found[str(values["revision"])] = down  # type: ignore[assignment]
    return found


def test_head_is_the_newest_revision_file() -> None:
    chain = revisions()
    assert chain, "no migration files found"
    downs = {d for d in chain.values() if d is not None}
    heads = [rev for rev in chain if rev not in downs]
    assert heads == [migrate.HEAD], f"heads {heads}, migrate.HEAD {migrate.HEAD}"
    # one linear history from the first revision to HEAD
    roots = [rev for rev, down in chain.items() if down is None]
    assert len(roots) == 1
    length, rev = 0, migrate.HEAD
    while rev is not None:
        length += 1
        rev = chain[rev]
    assert length == len(chain)


def test_a_bad_database_url_is_a_metadata_error() -> None:
    with pytest.raises(MetadataError):
        open_repository("nosuchdialect://x")


def test_head_is_alembics_head() -> None:
    """``HEAD`` (read without SQLAlchemy by the stdlib repository) is what Alembic itself
    computes from migrations/: a new revision without updating the constant fails here."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head() == migrate.HEAD


# -- choosing and sharing an implementation ----------------------------------------------


def test_a_local_sqlite_file_opens_the_stdlib_repository(db_path: Path) -> None:
    records = open_records(f"sqlite:///{db_path}")
    assert isinstance(records, LiteRepository)
    records.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///{db}"])
def test_other_urls_keep_sqlalchemy(db_path: Path, url: str) -> None:
    db_path.parent.mkdir(parents=True)
    records = open_records(url.format(db=db_path))
    assert isinstance(records, SqlRepository)
    records.close()


def test_each_implementation_reads_what_the_other_wrote(db_path: Path) -> None:
    """One schema, one storage format: JSON columns, booleans and floats round-trip
    across both implementations in both directions."""
    full = dataclasses.replace(run("r1", 1.5, params={"lr": 0.1, "tags": ["a"]}, pid=7), dirty=True)
    outputs = [OutputRecord("m", D2, "tree", 9)]
    step = step_run("r1", "a.s", cached=True, cached_from="r0", parts={"x": [1]}, outputs=outputs)
    entry = CacheEntry(D3, "a.s", "r1", (OutputRecord("a.csv", D1, "file", 4),))
    for writer_open, reader_open in [
        (OPENERS["sql"], OPENERS["lite"]),
        (OPENERS["lite"], OPENERS["sql"]),
    ]:
        writer = writer_open(db_path)
        writer.delete_runs(["r1"])
        writer.create_run(full)
        batch = WriteBatch()
        batch.put_step_run(step)
        batch.cache_entries.append(entry)
        batch.events.append(EventRecord("r1", "run-started", 2.0, None, {"n": [1, 2]}))
        writer.write(batch)
        writer.close()
        reader = reader_open(db_path)
        assert reader.get_run("r1") == full
        assert reader.step_runs("r1") == [step]
        assert reader.cache_entries(["a.s"]) == {D3: entry}
        assert reader.events("r1") == [EventRecord("r1", "run-started", 2.0, None, {"n": [1, 2]})]
        reader.close()


def test_the_stdlib_repository_migrates_only_a_database_behind(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()  # an empty file (the server pre-creates one with mode 0600)
    open_lite(db_path).close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrate.HEAD,)
        ]
    import conveyor.metadata.sql

    def refuse(*_args: object) -> None:
        raise AssertionError("SQLAlchemy opened a database already at HEAD")

    monkeypatch.setattr(conveyor.metadata.sql, "open_repository", refuse)
    open_lite(db_path).close()


def test_the_stdlib_repository_sets_wal_and_a_busy_timeout(db_path: Path) -> None:
    records = open_lite(db_path)
    records.create_run(run("r1", 1.0))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert records.pragma("busy_timeout") == 10000
    assert records.pragma("synchronous") == 1  # NORMAL
    records.close()


def test_a_reader_is_not_blocked_by_an_open_write(db_path: Path) -> None:
    records = open_lite(db_path)
    records.create_run(run("r1", 1.0))
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE runs SET status = 'failed'")
    try:
        found = records.get_run("r1")  # WAL: the committed state, at once
        assert found is not None and found.status == RunStatus.RUNNING
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    records.close()


def test_threads_share_one_stdlib_repository(db_path: Path) -> None:
    import threading

    records = open_lite(db_path)
    records.create_run(run("r1", 1.0))
    errors: list[BaseException] = []

    def write_steps(thread: int) -> None:
        try:
            for i in range(25):
                batch = WriteBatch()
                batch.put_step_run(step_run("r1", f"t{thread}.s{i}"))
                batch.events.append(EventRecord("r1", "step-finished", float(i), f"t{thread}"))
                records.write(batch)
                assert records.get_run("r1") is not None
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write_steps, args=(n,)) for n in range(4)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    assert errors == []
    assert len(records.step_runs("r1")) == 100
    assert len(records.events("r1")) == 100
    records.close()


def test_a_file_that_is_not_a_database_is_a_metadata_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"not a database at all, " * 100)
    with pytest.raises(MetadataError, match="cannot open the run database"):
        open_lite(db_path)


def _layout(path: Path) -> list[object]:
    """What a database's schema is: every table and index, the version, user_version."""
    conn = sqlite3.connect(path)
    try:
        return [
            *conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"),
            *conn.execute("SELECT version_num FROM alembic_version"),
            conn.execute("PRAGMA user_version").fetchone(),
        ]
    finally:
        conn.close()


def _refuse_sqlalchemy(monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    import conveyor.metadata.sql

    def refuse(*_args: object) -> None:
        raise AssertionError(why)

    monkeypatch.setattr(conveyor.metadata.sql, "open_repository", refuse)


@pytest.mark.parametrize("precreated", [False, True], ids=["missing", "empty-file"])
def test_a_new_database_is_laid_out_from_what_alembic_made_here_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precreated: bool
) -> None:
    """The machine's first records file is made by the Alembic chain (the one definition
    of the schema), which leaves its schema as a template; the next new file (missing, or
    the empty file the server pre-creates) is laid out from it without SQLAlchemy and is
    exactly what Alembic makes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = schema_template(migrate.HEAD)
    assert not template.exists()
    open_lite(tmp_path / "first" / "runs.sqlite").close()  # through Alembic
    assert template.is_file()
    reference = tmp_path / "alembic.sqlite"
    OPENERS["sql"](reference).close()
    _refuse_sqlalchemy(monkeypatch, "SQLAlchemy created a new local database")
    fresh = tmp_path / "state" / "runs.sqlite"
    if precreated:
        fresh.parent.mkdir()
        fresh.touch()
    records = open_lite(fresh)
    records.create_run(run("r1", 1.0))  # usable at once
    records.close()
    assert _layout(fresh) == _layout(reference)
    with sqlite3.connect(fresh) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '["CREATE TABLE x (y INTEGER)"]',
        # only table and index definitions are ever applied from a template
        '["CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",'
        " \"ATTACH DATABASE '/tmp/elsewhere.db' AS other\"]",
    ],
)
def test_a_template_that_is_not_one_leaves_the_new_database_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = schema_template(migrate.HEAD)
    template.parent.mkdir(parents=True)
    template.write_text(text, encoding="utf-8")
    fresh = tmp_path / "runs.sqlite"
    open_lite(fresh).close()
    reference = tmp_path / "alembic.sqlite"
    OPENERS["sql"](reference).close()
    assert _layout(fresh) == _layout(reference)
    assert "CREATE TABLE alembic_version" in template.read_text(encoding="utf-8")  # renewed


def test_a_migrated_database_does_not_become_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a database Alembic created from nothing is a template (an upgraded one may
    differ in its SQL text)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    open_lite(old).close()
    assert not schema_template(migrate.HEAD).exists()


def test_a_database_with_tables_but_no_version_is_left_to_alembic(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an empty database is laid out from the template; anything else is Alembic's."""
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    import conveyor.metadata.sql

    called: list[str] = []
    monkeypatch.setattr(
        conveyor.metadata.sql, "open_repository", lambda url: called.append(url) or _Closable()
    )
    open_lite(db_path).close()
    assert called == [f"sqlite:///{db_path}"]


class _Closable:
    def close(self) -> None:
        pass


def test_a_database_laid_out_meanwhile_by_another_process_needs_no_alembic(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first runs at once: the one that waited on the lock finds the schema at HEAD
    and opens it as it is (no SQLAlchemy import)."""
    import conveyor.metadata.lite.repository as lite_repository
    import conveyor.metadata.sql
    from conveyor.metadata.lite.connect import lay_out

    monkeypatch.setenv("XDG_CACHE_HOME", str(db_path.parent / "cache"))
    open_lite(db_path.parent / "first.sqlite").close()  # the machine's template

    def other_process_first(path: Path, head: str) -> None:
        laid = lay_out(path, head)  # the other process's
        assert laid is not None
        laid.close()
        # ours found a database that was no longer empty

    monkeypatch.setattr(lite_repository, "lay_out", other_process_first)

    def refuse(*_args: object) -> None:
        raise AssertionError("SQLAlchemy opened a database already at HEAD")

    monkeypatch.setattr(conveyor.metadata.sql, "open_repository", refuse)
    records = open_lite(db_path)
    records.create_run(run("r1", 1.0))
    records.close()


# -- datasets ------------------------------------------------------------------------------


def dataset_commit(commit_id: str, parent: str | None, tree: str = D1, **fields: object) -> Any:
    from conveyor.metadata.datasets import DatasetCommitRecord

    values: dict[str, object] = {"branch": "master", "message": "", "created_at": 1.0}
    values.update(fields)
    return DatasetCommitRecord(
        id=commit_id,
        dataset="images",
        parent=parent,
        tree=tree,
        size=3,
        files=1,
        **values,  # type: ignore[arg-type]
    )


def test_datasets_are_created_once_listed_and_deleted_with_their_commits(
    repo: MetadataRepository,
) -> None:
    from conveyor.metadata.datasets import DatasetRecord

    assert repo.create_dataset(DatasetRecord("images", 1.0, "raw"))
    assert not repo.create_dataset(DatasetRecord("images", 2.0))
    assert repo.create_dataset(DatasetRecord("edges", 3.0))
    assert [d.name for d in repo.list_datasets()] == ["edges", "images"]
    assert repo.get_dataset("images") == DatasetRecord("images", 1.0, "raw")
    assert repo.commit_dataset(dataset_commit("a1", None))
    assert repo.delete_dataset("images")
    assert repo.get_dataset("images") is None
    assert repo.dataset_commits("images") == []
    assert repo.dataset_branches("images") == {}
    assert not repo.delete_dataset("images")


def test_a_dataset_commit_moves_its_branch_only_from_the_expected_head(
    repo: MetadataRepository,
) -> None:
    first = dataset_commit("a1", None, provenance={"inputs": ["x@1"]})
    assert repo.commit_dataset(first)
    assert repo.dataset_branches("images") == {"master": "a1"}
    assert repo.dataset_commit("images", "a1") == first
    # a commit made from a stale head is refused and leaves nothing
    assert not repo.commit_dataset(dataset_commit("b2", None, created_at=2.0))
    assert repo.dataset_commit("images", "b2") is None
    assert repo.commit_dataset(dataset_commit("b2", "a1", D2, created_at=2.0))
    assert repo.dataset_branches("images") == {"master": "b2"}
    assert [c.id for c in repo.dataset_commits("images")] == ["b2", "a1"]
    assert [c.id for c in repo.find_dataset_commits("images", "b")] == ["b2"]
    assert repo.find_dataset_commits("images", "%") == []
    assert repo.find_dataset_commits("edges", "a") == []


def test_dataset_branches_are_set_and_deleted(repo: MetadataRepository) -> None:
    assert repo.commit_dataset(dataset_commit("a1", None))
    repo.set_dataset_branch("images", "dev", "a1")
    repo.set_dataset_branch("images", "empty", None)
    assert repo.dataset_branches("images") == {"dev": "a1", "empty": None, "master": "a1"}
    assert repo.delete_dataset_branch("images", "dev")
    assert not repo.delete_dataset_branch("images", "dev")
    assert repo.dataset_commit("images", "a1") is not None  # commits outlive branches


def test_dataset_trees_are_referenced_digests(repo: MetadataRepository) -> None:
    assert repo.commit_dataset(dataset_commit("a1", None, D4))
    assert repo.referenced_digests() == {D4}


def test_a_runs_dataset_reads_are_found_by_run_and_by_commit_and_go_with_the_run(
    repo: MetadataRepository,
) -> None:
    from conveyor.metadata.datasets import DatasetReadRecord

    repo.create_run(run("r1", 1.0))
    repo.create_run(run("r2", 2.0))
    raw = DatasetReadRecord("r1", "data/raw", "images", "a1", "images@master")
    labels = DatasetReadRecord("r1", "data/labels", "labels", "c3", "labels@v1")
    again = DatasetReadRecord("r2", "data/raw", "images", "a1", "images@a1")
    repo.record_dataset_reads([raw, labels])
    repo.record_dataset_reads([again])
    repo.record_dataset_reads([])
    assert repo.dataset_reads("r1") == [labels, raw]
    assert repo.dataset_readers("images", "a1") == [again, raw]  # newest run first
    assert repo.dataset_readers("images", "b2") == []
    assert repo.delete_runs(["r2"]) == 1
    assert repo.dataset_readers("images", "a1") == [raw]
    assert repo.dataset_reads("r2") == []


def test_a_database_at_0001_gains_the_dataset_tables_and_keeps_its_runs(
    db_path: Path, opener: Opener
) -> None:
    from alembic import command
    from alembic.config import Config

    db_path.parent.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{db_path}")
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        conn.execute(
            "INSERT INTO runs (id, pipeline, status, dirty, params, who, host, created_at, "
            "executor, spec_path, \"trigger\", workdir) VALUES ('r1', 'demo', 'succeeded', 0, "
            "'{}', '', '', 1.0, 'local', '', 'manual', '')"
        )
    assert "datasets" not in tables  # the 0001 schema
    repo = opener(db_path)
    try:
        assert repo.get_run("r1") is not None
        assert repo.commit_dataset(dataset_commit("a1", None))
        assert repo.dataset_branches("images") == {"master": "a1"}
    finally:
        repo.close()


# -- the pages' light reads (the server's and `conveyor ui`'s) ----------------------------


def test_step_counts_and_states_read_only_what_a_page_needs(db_path: Path, opener: Opener) -> None:
    records = opener(db_path)
    try:
        for run_id in ("r1", "r2"):
            records.create_run(run(run_id, 1.0))
        batch = WriteBatch()
        batch.put_step_run(step_run("r1", "a.hit", cached=True, started_at=None))
        batch.put_step_run(step_run("r1", "a.ran", started_at=5.0, ended_at=7.0, exit_code=0))
        batch.put_step_run(step_run("r1", "a.skip", status=StepStatus.SKIPPED))
        batch.put_step_run(step_run("r2", "a.run", status=StepStatus.RUNNING, started_at=9.0))
        records.write(batch)
        assert records.step_counts(["r1", "r2", "r3"]) == {"r1": (1, 1), "r2": (0, 1)}
        states = {s.step_id: s for s in records.step_states("r1")}
        assert set(states) == {"a.hit", "a.ran", "a.skip"}
        ran = states["a.ran"]
        assert (
            ran.status,
            ran.cached,
            ran.exit_code,
            ran.attempt,
            ran.started_at,
            ran.ended_at,
        ) == (
            StepStatus.SUCCEEDED,
            False,
            0,
            0,
            5.0,
            7.0,
        )
        assert states["a.hit"].cached and states["a.skip"].status == StepStatus.SKIPPED
    finally:
        records.close()


def test_get_runs_reads_many_records_at_once(repo: MetadataRepository) -> None:
    ids = [f"r{i:04d}" for i in range(1000)]  # past one chunk of bound parameters
    for i, run_id in enumerate(ids):
        repo.create_run(run(run_id, float(i)))
    found = repo.get_runs([*ids, "missing", ids[0]])
    assert sorted(found) == ids
    assert found["r0999"] == repo.get_run("r0999")
    assert repo.get_runs([]) == {}


def test_a_page_of_runs_is_a_keyset_page_with_filters(repo: MetadataRepository) -> None:
    for i in range(7):
        status = RunStatus.FAILED if i % 3 == 0 else RunStatus.SUCCEEDED
        trigger = "schedule" if i % 2 else "manual"
        record = dataclasses.replace(run(f"{i:012x}", 10.0 + (i // 2)), status=status)
        repo.create_run(dataclasses.replace(record, trigger=trigger))
    first = repo.page_runs(3)
    assert first is not None
    runs, total, after = first
    # newest first; runs started in the same second ordered by id
    assert ([r.id[-1] for r in runs], total, after) == (["6", "5", "4"], 7, "000000000004")
    second = repo.page_runs(3, after=after)
    assert second is not None and [r.id[-1] for r in second[0]] == ["3", "2", "1"]
    last = repo.page_runs(3, after=second[2])
    assert last is not None and ([r.id[-1] for r in last[0]], last[2]) == (["0"], None)
    failed = repo.page_runs(10, status=RunStatus.FAILED)
    assert failed is not None and [r.id[-1] for r in failed[0]] == ["6", "3", "0"]
    scheduled = repo.page_runs(10, trigger="schedule", pipeline="demo")
    assert scheduled is not None and ([r.id[-1] for r in scheduled[0]], scheduled[1]) == (
        ["5", "3", "1"],
        3,
    )
    assert repo.page_runs(10, pipeline="other") == ([], 0, None)
    assert repo.page_runs(10, after="ffffffffffff") is None


# -- run numbers (Drone's build number: the next one of the run's project) ---------------


def test_runs_are_numbered_in_their_scope_and_numbers_are_not_reused(
    repo: MetadataRepository,
) -> None:
    first, second = run("r1", 1.0), run("r2", 2.0)
    assert repo.create_run(first) == 1 and first.number == 1
    assert repo.create_run(second) == 2
    assert repo.create_run(run("o1", 3.0), scope="other") == 1  # another project
    assert repo.get_run("r2") == second and second.number == 2
    assert repo.delete_runs(["r2"]) == 1
    assert repo.create_run(run("r3", 4.0)) == 3
    with pytest.raises((MetadataError, sa.exc.IntegrityError)):
        repo.create_run(run("r3", 5.0))  # refused: the number it would have had is not spent
    assert repo.create_run(run("r4", 6.0)) == 4


def test_runs_recorded_at_once_get_different_numbers(db_path: Path, opener: Opener) -> None:
    import threading

    opener(db_path).close()  # laid out once; then two openers, as two processes would
    repositories = [opener(db_path), opener(db_path)]
    numbers: list[int] = []
    errors: list[BaseException] = []

    def record(worker: int) -> None:
        try:
            for i in range(15):
                numbers.append(repositories[worker % 2].create_run(run(f"w{worker}-{i}", 1.0)))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    for each in repositories:
        each.close()
    assert errors == []
    assert sorted(numbers) == list(range(1, 61))


def test_a_database_at_0002_numbers_its_runs_in_the_order_they_were_made(
    db_path: Path, opener: Opener
) -> None:
    from alembic import command
    from alembic.config import Config

    db_path.parent.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{db_path}")
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002_datasets")
    engine.dispose()
    with sqlite3.connect(db_path) as conn:
        for run_id, created in (("late", 9.0), ("early", 1.0)):
            conn.execute(
                "INSERT INTO runs (id, pipeline, status, dirty, params, who, host, created_at, "
                "executor, spec_path, \"trigger\", workdir) VALUES (?, 'demo', 'succeeded', 0, "
                "'{}', '', '', ?, 'local', '', 'manual', '')",
                (run_id, created),
            )
    repo = opener(db_path)
    try:
        assert [repo.get_run(r).number for r in ("early", "late")] == [1, 2]  # type: ignore[union-attr]
        assert repo.create_run(run("next", 10.0)) == 3
    finally:
        repo.close()


def test_a_sqlite_file_keeps_a_connection_per_concurrent_request(db_path: Path) -> None:
    """A server's request threads (20 at once) reuse their connections: before, the
    pool kept 5 and opened (and closed) a new one, with its pragmas, for each beyond."""
    engine = open_repository(f"sqlite:///{db_path}").engine
    opened: list[object] = []
    sa.event.listen(engine, "connect", lambda conn, _record: opened.append(conn))
    for _ in range(3):
        held = [engine.connect() for _ in range(20)]
        for conn in held:
            conn.close()
    assert 1 <= len(opened) <= 20


def test_a_cache_hit_row_is_written_from_the_texts_it_carries(repo: MetadataRepository) -> None:
    """A cache hit repeats its fingerprint's canonical text and its entry's outputs as read:
    the row holds what they encode, on both implementations, and it reads back as plain
    values equal to the record."""
    from conveyor.domain.jsonshape import TextDict, TextList, json_text
    from conveyor.execute.steprecords import served
    from conveyor.plan.fingerprint import keyed

    outputs = (OutputRecord("a.csv", D1, "file", 4), OutputRecord("m", D2, "tree", 9))
    first = WriteBatch()
    first.cache_entries.append(CacheEntry(D3, "a.s", "r0", outputs))
    repo.write(first)
    entry = repo.cache_entries(["a.s"])[D3]
    assert entry == CacheEntry(D3, "a.s", "r0", outputs)
    parts = {"version": 2, "inputs": {"b.txt": D4, "a.txt": D1}, "outputs": ["a.csv", "m"]}
    key, text = keyed(parts)
    record = step_run("r1", "a.s", status=StepStatus.RUNNING, fingerprint=key)
    record.parts = TextDict(parts, text)
    served(record, entry)
    if isinstance(repo, LiteRepository):  # it keeps the text it read and hands it on
        assert isinstance(record.outputs, TextList) and json_text(record.outputs)
    repo.create_run(run("r1", 1.0))
    batch = WriteBatch()
    batch.put_step_run(record)
    repo.write(batch)
    [row] = repo.step_runs("r1")
    assert row == dataclasses.replace(record, parts=parts, outputs=list(outputs))
    assert type(row.parts) is dict and type(row.outputs) is list


def test_the_stdlib_step_row_is_rows_step_row_encoded() -> None:
    """The stdlib repository builds a step run's row as a tuple; it must say what the
    shared ``step_row`` says, column by column."""
    import json

    from conveyor.metadata.lite import repository as lite
    from conveyor.metadata.rows import step_row

    record = step_run(
        "r1",
        "a.s",
        fingerprint=D3,
        cached=True,
        cached_from="r0",
        exit_code=0,
        attempt=2,
        started_at=1.5,
        ended_at=2.5,
        log_path="x.log",
        command="echo",
        parts={"x": [1]},
        outputs=[OutputRecord("a.csv", D1, "file", 4)],
        error="e",
    )
    row = step_row(record)
    expected = tuple(json.dumps(v) if k in ("parts", "outputs") else v for k, v in row.items())
    assert tuple(row) == lite._STEP_COLUMNS
    assert lite._step_values(record) == expected
