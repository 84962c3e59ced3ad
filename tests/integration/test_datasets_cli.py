"""`conveyor data` through the real CLI in a real git project: put, ls, get, log, diff,
branches, dedup across datasets in the store, lineage, and a put killed with SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import CONVEYOR, Repo

pytestmark = pytest.mark.integration


@pytest.fixture
def project(repo: Repo) -> Repo:
    repo.pipeline(
        """\
        name: data
        jobs:
          j:
            steps:
              - run: echo hi
        """
    )
    repo.commit("pipeline")
    return repo


def ok(repo: Repo, *args: str) -> str:
    result = repo.run(*args)
    assert result.code == 0, result.err
    return result.out


def photos(root: Path, count: int = 3) -> Path:
    for i in range(count):
        target = root / f"d{i % 2}" / f"p{i}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"photo {i}\n")
    return root


def blobs(repo: Repo) -> int:
    return sum(1 for p in (repo.path / ".conveyor" / "store" / "objects").rglob("*") if p.is_file())


def test_put_ls_get_log_diff_round_trip(project: Repo, tmp_path: Path) -> None:
    source = photos(tmp_path / "photos")
    ok(project, "data", "create", "images")
    first = project.run("data", "put", "images", "-r", str(source), "-m", "first", "--json")
    assert first.code == 0, first.err
    c1 = first.json()
    assert (c1["files"], c1["parent"], c1["provenance"]) == (3, None, {})
    listed = project.run("data", "ls", "images:/photos", "--json").json()
    assert [(e["path"], e["kind"]) for e in listed] == [
        ("/photos/d0", "dir"),
        ("/photos/d1", "dir"),
    ]
    (tmp_path / "new.txt").write_text("new\n")
    ok(project, "data", "put", "images:/photos/d0/p0.txt", str(tmp_path / "new.txt"), "-m", "two")
    c2 = project.run("data", "inspect", "images", "--json").json()["commit"]
    assert c2["parent"] == c1["id"] and c2["files"] == 3

    got = project.run("data", "get", "images:/photos/d0/p0.txt")
    assert got.out == "new\n"
    assert project.run("data", "get", f"images@{c1['id'][:8]}:/photos/d0/p0.txt").out == "photo 0\n"
    ok(project, "data", "get", "images@master^:/photos", str(tmp_path / "out"))
    assert (tmp_path / "out" / "d1" / "p1.txt").read_text() == "photo 1\n"

    log = project.run("data", "log", "images", "--json").json()
    assert [c["message"] for c in log] == ["two", "first"]
    change = project.run("data", "diff", "images@master~1", "images", "--json").json()
    assert [c["new"]["path"] for c in change["changed"]] == ["/photos/d0/p0.txt"]
    assert change["added"] == change["removed"] == []

    ok(project, "data", "branch", "images", "v1", "--head", "images^")
    assert project.run("data", "branch", "images", "--json").json() == {
        "master": c2["id"],
        "v1": c1["id"],
    }
    globbed = project.run("data", "glob", "images@v1:/photos/*/*", "--json").json()
    assert [g["path"] for g in globbed] == [
        "/photos/d0/p0.txt",
        "/photos/d0/p2.txt",
        "/photos/d1/p1.txt",
    ]

    lineage = project.run("lineage", "images:/photos/d1/p1.txt", "--json").json()
    assert lineage["commit"]["id"] == c2["id"]
    assert lineage["introduced_by"]["id"] == c1["id"]  # unchanged since the first put


def test_append_from_stdin(project: Repo) -> None:
    ok(project, "data", "create", "logs")
    for line in ("one\n", "two\n"):
        proc = subprocess.run(
            [*CONVEYOR, "data", "put", "logs:/day.log", "-", "--append"],
            cwd=project.path,
            input=line,
            text=True,
            capture_output=True,
        )
        assert proc.returncode == 0, proc.stderr
    assert project.run("data", "get", "logs:/day.log").out == "one\ntwo\n"
    assert project.run("data", "get", "logs@master^:/day.log").out == "one\n"


def test_files_are_stored_once_across_commits_and_datasets(project: Repo, tmp_path: Path) -> None:
    source = photos(tmp_path / "photos", 10)
    ok(project, "data", "create", "a")
    ok(project, "data", "create", "b")
    ok(project, "data", "put", "a", "-r", str(source))
    after_first = blobs(project)
    assert after_first == 10 + 1  # the files and one tree
    ok(project, "data", "put", "b:/elsewhere", "-r", str(source))
    ok(project, "data", "put", "a", "-r", str(source))  # the same files again: a new commit
    assert blobs(project) == after_first + 1  # only b's tree is new
    assert len(project.run("data", "log", "a", "--json").json()) == 2
    # gc keeps every blob a dataset commit names
    ok(project, "gc")
    assert project.run("data", "get", "b:/elsewhere/d1/p9.txt").out == "photo 9\n"


def test_a_put_killed_mid_way_leaves_no_commit(project: Repo, tmp_path: Path) -> None:
    source = photos(tmp_path / "many", 20000)
    small = photos(tmp_path / "small", 2)
    ok(project, "data", "create", "big")
    ok(project, "data", "put", "big", "-r", str(small), "-m", "before")
    before = project.run("data", "log", "big", "--json").json()
    objects = project.path / ".conveyor" / "store" / "objects"
    proc = project.popen("data", "put", "big", "-r", str(source), "-m", "killed")
    try:
        deadline = time.monotonic() + 120
        while blobs(project) < len(before) + 3 + 200 and time.monotonic() < deadline:
            assert proc.poll() is None, "the put ended before it could be killed"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # reaps it and closes its pipes
    stored = sum(1 for p in objects.rglob("*") if p.is_file())
    assert stored < 20000, "the put had stored everything before the kill"
    assert project.run("data", "log", "big", "--json").json() == before
    assert project.run("data", "inspect", "big", "--json").json()["commit"]["files"] == 2
    # the next put completes, on top of the commit that was there
    ok(project, "data", "put", "big:/again.txt", str(small / "d0" / "p0.txt"))
    log = project.run("data", "log", "big", "--json").json()
    assert [c["parent"] for c in log] == [before[0]["id"], None]


def test_gc_never_collects_under_a_put_in_progress(project: Repo) -> None:
    """A put holds its blobs unrecorded until its commit: gc meanwhile refuses, rather
    than removing them under the put's feet."""
    ok(project, "data", "create", "ds")
    proc = subprocess.Popen(
        [*CONVEYOR, "data", "put", "ds:/big.bin", "-"],
        cwd=project.path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"x" * 70_000)
        proc.stdin.flush()
        lock = project.path / ".conveyor" / "data.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # the put takes its lock before it reads standard input
        gc = project.run("gc")
        assert gc.code == 1 and "put" in gc.err, gc.err
    finally:
        _out, err = proc.communicate(timeout=60)  # closes standard input: the put ends
    assert proc.returncode == 0, err
    ok(project, "gc")
    assert len(project.run("data", "get", "ds:/big.bin").out) == 70_000
