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
