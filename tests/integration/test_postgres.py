"""The run records on a real PostgreSQL server (started by scripts/engines/postgres.sh)."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import fresh_postgres_database
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server."""
    with fresh_postgres_database("conveyor") as url:
        yield url


def test_runs_cache_and_lineage_on_postgres(repo: Repo, database_url: str) -> None:
    repo.write(".conveyor/config.toml", f'[project]\ndatabase = "{database_url}"\n')
    repo.pipeline(
        textwrap.dedent(
            """\
            jobs:
              make:
                steps:
                  - run: mkdir -p out && echo 41 > out/n.txt
                    outputs: [out/n.txt]
              inc:
                steps:
                  - run: echo $(( $(cat out/n.txt) + 1 )) > out/m.txt
                    inputs: [out/n.txt]
                    outputs: [out/m.txt]
            """
        )
    )
    repo.commit()
    first = repo.run("run")
    assert first.code == 0, first.out + first.err
    second = repo.run("run")
    assert second.code == 0
    assert all(s["cached"] for s in repo.steps().values())
    lineage = repo.run("lineage", "out/m.txt", "--json").json()
    assert lineage["produced_by"][0]["step"] == "inc.step-1"
    assert not (repo.path / ".conveyor/conveyor.db").exists(), "records must go to PostgreSQL"
    runs = repo.run("runs", "--json").json()
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]


def test_concurrent_migration_on_postgres(database_url: str, tmp_path: Path) -> None:
    script = (
        "import sys; from conveyor.metadata.sql import open_repository; "
        "open_repository(sys.argv[1]).close()"
    )
    procs = [
        subprocess.Popen(["python3", "-c", script, database_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    from conveyor.metadata.sql import open_repository
    from conveyor.metadata.sql.migrate import HEAD, current_revision

    repo = open_repository(database_url)
    with repo.engine.connect() as conn:
        assert current_revision(conn) == HEAD
    repo.close()


def test_dataset_commits_on_postgres(repo: Repo, database_url: str, tmp_path: Path) -> None:
    """Datasets through the CLI with the records on PostgreSQL: a commit and its branch
    head land together, a stale head is refused, branches move."""
    repo.write(".conveyor/config.toml", f'[project]\ndatabase = "{database_url}"\n')
    repo.pipeline("jobs:\n  j:\n    steps:\n      - run: 'true'\n")
    repo.commit()
    (tmp_path / "a.txt").write_text("a\n")
    assert repo.run("data", "create", "ds").code == 0
    for message in ("one", "two"):
        put = repo.run("data", "put", "ds", str(tmp_path / "a.txt"), "-m", message)
        assert put.code == 0, put.err
    log = repo.run("data", "log", "ds", "--json").json()
    assert [c["message"] for c in log] == ["two", "one"]
    assert log[0]["parent"] == log[1]["id"]
    assert repo.run("data", "branch", "ds", "old", "--head", "ds^").code == 0
    assert repo.run("data", "branch", "ds", "--json").json() == {
        "master": log[0]["id"],
        "old": log[1]["id"],
    }
    assert repo.run("data", "get", "ds@old:/a.txt").out == "a\n"
    assert not (repo.path / ".conveyor/conveyor.db").exists(), "records must go to PostgreSQL"

    from conveyor.metadata.datasets import DatasetCommitRecord
    from conveyor.metadata.sql import open_repository

    records = open_repository(database_url)
    try:
        stale = DatasetCommitRecord("f" * 32, "ds", log[1]["id"], "master", "0" * 64, "", 1.0, 0, 0)
        assert not records.commit_dataset(stale)
        assert records.dataset_commit("ds", "f" * 32) is None
    finally:
        records.close()


def test_a_runs_dataset_reads_on_postgres(repo: Repo, database_url: str, tmp_path: Path) -> None:
    """The commit a run's `datasets:` read is recorded on PostgreSQL (migration
    0003_lineage) and found from both ends, and goes when the run is deleted."""
    repo.write(".conveyor/config.toml", f'[project]\ndatabase = "{database_url}"\n')
    repo.pipeline(
        "datasets:\n  data/ds: ds@master\njobs:\n  j:\n    steps:\n"
        "      - run: cat data/ds/a.txt > out.txt\n"
        "        inputs: [data/ds]\n        outputs: [out.txt]\n"
    )
    repo.commit()
    (tmp_path / "a.txt").write_text("a\n")
    assert repo.run("data", "create", "ds").code == 0
    assert repo.run("data", "put", "ds", str(tmp_path / "a.txt")).code == 0
    ran = repo.run("run")
    assert ran.code == 0, ran.err
    commit = repo.run("data", "inspect", "ds", "--json").json()["commit"]["id"]
    produced = repo.run("lineage", "out.txt", "--json").json()["produced_by"][0]
    assert [(d["dataset"], d["commit"]) for d in produced["datasets"]] == [("ds", commit)]
    readers = repo.run("lineage", "ds@master", "--json").json()["read_by"]
    assert [(r["run"], r["path"]) for r in readers] == [(produced["run"], "data/ds")]
    (repo.path / "out.txt").unlink()  # a run whose output the workspace holds is kept
    assert repo.run("runs", "delete", produced["run"]).code == 0
    assert repo.run("lineage", "ds@master", "--json").json()["read_by"] == []


def test_runs_recorded_at_once_on_postgres_get_different_numbers(database_url: str) -> None:
    """Processes that record runs of one project at the same time: each run gets its own
    number (the counter row is locked until the run is in), another project counts apart."""
    from conveyor.metadata.sql import open_repository

    open_repository(database_url).close()
    script = (
        "import sys, time; from conveyor.domain.states import RunStatus; "
        "from conveyor.metadata.records import RunRecord; "
        "from conveyor.metadata.sql import open_repository; r = open_repository(sys.argv[1]); "
        "print(' '.join(str(r.create_run(RunRecord(f'{sys.argv[2]}-{i}', 'p', "
        "RunStatus.RUNNING, None, False, time.time()), 'demo')) for i in range(20))); r.close()"
    )
    procs = [
        subprocess.Popen(
            ["python3", "-c", script, database_url, f"w{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    numbers: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers += [int(n) for n in out.split()]
    assert sorted(numbers) == list(range(1, 61))
    from conveyor.domain.states import RunStatus
    from conveyor.metadata.records import RunRecord

    repo = open_repository(database_url)
    try:
        other = RunRecord("o-1", "p", RunStatus.RUNNING, None, False, 1.0)
        assert repo.create_run(other, "other") == 1
    finally:
        repo.close()


def test_runs_are_indexed_by_number_on_postgres(database_url: str) -> None:
    """0005_runnumidx on PostgreSQL: ``runs_numbered`` filters by an indexed column."""
    import sqlalchemy as sa

    from conveyor.metadata.sql import open_repository

    open_repository(database_url).close()
    engine = sa.create_engine(database_url)
    try:
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes("runs")}
    finally:
        engine.dispose()
    assert indexes.get("ix_runs_number") == ["number"]
