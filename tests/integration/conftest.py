"""Fixtures for integration tests: real git repositories in temp dirs, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.server_support import Server

CONVEYOR = [sys.executable, "-c", "from conveyor.cli.main import main; main()"]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Repo:
    path: Path

    def write(self, rel: str, text: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
        return target

    def pipeline(self, text: str) -> Path:
        return self.write("conveyor.yml", text)

    def commit(self, message: str = "change") -> None:
        _git(self.path, "add", "-A")
        _git(self.path, "commit", "-q", "--allow-empty", "-m", message)

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [*CONVEYOR, *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CONVEYOR, *args],
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        """``conveyor ARGS``'s standard output; it must succeed."""
        result = self.run(*args)
        assert result.code == 0, result.err
        return result.out

    def with_echo_pipeline(self) -> Repo:
        """This repository with a one-step pipeline committed (commands that need one)."""
        self.pipeline("name: p\njobs:\n  j:\n    steps:\n      - run: echo hi\n")
        self.commit("pipeline")
        return self

    def show(self, ref: str = "latest") -> dict[str, Any]:
        result = self.run("show", ref, "--json")
        assert result.code == 0, result.err
        data: dict[str, Any] = result.json()
        return data

    def steps(self, ref: str = "latest") -> dict[str, dict[str, Any]]:
        return {s["id"]: s for s in self.show(ref)["steps"]}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    if shutil.which("git") is None:  # pragma: no cover - git is part of the test setup
        pytest.fail("git is required")
    path = tmp_path / "project"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "test@example.invalid")
    _git(path, "config", "user.name", "Test")
    (path / ".gitignore").write_text("out/\nresults/\n")
    yield Repo(path)


RepoFactory = Callable[[str], Repo]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server."""
    from tests.engines import fresh_postgres_database

    with fresh_postgres_database("conveyor_srv") as url:
        yield url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A started server on SQLite with one worker (modules that need another define their own)."""
    from tests.integration.server_support import make_server

    srv = make_server(tmp_path, None)
    srv.start()
    yield srv
    srv.stop()
