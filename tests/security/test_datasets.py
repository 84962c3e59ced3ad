"""Attacks on `conveyor data`: hostile names, paths and sizes, and links in a put directory
that point out of it. Each refusal is one line, exit code 2, and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.errors import UsageError
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.project import Project
from tests.integration import conftest as integration
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration
repo = integration.repo


@pytest.fixture
def project(repo: Repo) -> Repo:
    repo.pipeline("name: data\njobs:\n  j:\n    steps:\n      - run: echo hi\n")
    repo.commit("pipeline")
    assert repo.run("data", "create", "ds").code == 0
    return repo


def refused(repo: Repo, *args: str) -> str:
    result = repo.run(*args)
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    return result.err


def no_commits(repo: Repo) -> None:
    assert repo.run("data", "inspect", "ds", "--json").json()["commit"] is None


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/b", "/etc", "-rf", "x" * 64, "a b", "a@b@c", "é"]
)
def test_bad_dataset_names_are_refused(project: Repo, name: str) -> None:
    refused(project, "data", "create", "--", name)
    assert [d["name"] for d in project.run("data", "ls", "--json").json()] == ["ds"]


@pytest.mark.parametrize(
    "target", ["ds:/../../etc/passwd", "ds:../x", "ds@../x", "ds@a/b:/x", "ds:/" + "x" * 5000]
)
def test_bad_put_targets_are_refused(project: Repo, tmp_path: Path, target: str) -> None:
    (tmp_path / "f").write_text("data")
    refused(project, "data", "put", target, str(tmp_path / "f"))
    no_commits(project)


def test_nul_in_names_paths_and_messages_is_refused(project: Repo, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("data")
    datasets = Datasets(Project(project.path))
    from conveyor.sdk.datasets.refs import parse_ref

    for text in ("d\0s", "ds:/a\0b", "ds@ma\0ster"):
        with pytest.raises(UsageError):
            parse_ref(text)
    with pytest.raises(UsageError):
        datasets.put(parse_ref("ds"), [str(tmp_path / "f")], message="a\0b")
    no_commits(project)


def test_absurd_sizes_are_refused(project: Repo, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("data")
    refused(project, "data", "put", "ds", str(tmp_path / "f"), "-m", "m" * 70_000)
    refused(project, "data", "create", "other", "-d", "d" * 70_000)
    refused(project, "data", "log", "ds@master" + "~99999" * 3)
    refused(project, "data", "glob", "ds:/" + "*" * 5000)
    no_commits(project)


def test_a_link_out_of_the_put_directory_is_not_followed(project: Repo, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's key\n")
    source = tmp_path / "put"
    source.mkdir()
    (source / "ok.txt").write_text("fine\n")
    (source / "leak.txt").symlink_to(secret)
    (source / "dir").symlink_to(tmp_path)
    err = refused(project, "data", "put", "ds", "-r", str(source))
    assert "outside" in err
    no_commits(project)
    store = project.path / ".conveyor" / "store" / "objects"
    stored = [p.read_bytes() for p in store.rglob("*") if p.is_file()] if store.exists() else []
    assert b"the server's key\n" not in stored


def test_a_link_to_a_directory_inside_is_refused_not_walked(project: Repo, tmp_path: Path) -> None:
    source = tmp_path / "put"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("a\n")
    os.symlink("sub", source / "loop")  # a walk that followed it would visit sub twice
    refused(project, "data", "put", "ds", "-r", str(source))
    no_commits(project)


def test_get_writes_only_below_its_destination(project: Repo, tmp_path: Path) -> None:
    source = tmp_path / "put"
    (source / "a").mkdir(parents=True)
    (source / "a" / "x.txt").write_text("x\n")
    assert project.run("data", "put", "ds:/", "-r", str(source)).code == 0
    dest = tmp_path / "dest"
    assert project.run("data", "get", "ds:/put", str(dest)).code == 0
    written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert written == ["a", "a/x.txt"]
    assert not (tmp_path / "a").exists()
