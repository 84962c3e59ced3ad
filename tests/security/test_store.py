"""Attacks on the store: hostile output trees, a store that never shrinks, corrupted blobs.

Each test runs the real CLI in a real git repository (no mocks), except the unit test of
an OS error while storing, which makes the store fail on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.errors import StoreError
from conveyor.execute.workspace import Workspace
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache
from tests.integration import conftest as integration
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration
repo = integration.repo  # the fixture: a real git repository in a temp directory


def _pipeline(repo: Repo, command: str, outputs: str = "[out]") -> None:
    repo.pipeline(
        f"""\
        name: links
        jobs:
          make:
            steps:
              - name: tree
                run: {command}
                outputs: {outputs}
        """
    )
    repo.commit("pipeline")


def _step(repo: Repo) -> dict[str, object]:
    return repo.steps()["make.tree"]


# -- item 8: symlinks and OS errors while storing outputs ------------------------------


def test_a_dangling_link_in_an_output_fails_the_step_naming_the_path(repo: Repo) -> None:
    _pipeline(repo, "mkdir -p out && echo x > out/a && ln -s missing out/broken")
    result = repo.run("run")
    assert result.code == 1, result.out + result.err
    assert "internal error" not in result.err
    run = repo.show()
    assert run["status"] == "failed"
    error = str(_step(repo)["error"])
    assert "out/broken" in error and "dangling" in error


def test_a_link_out_of_the_workspace_fails_the_step_naming_the_path(repo: Repo) -> None:
    _pipeline(repo, "mkdir -p out && ln -s /etc/passwd out/secret && ln -s / out/root")
    result = repo.run("run")
    assert result.code == 1, result.out + result.err
    assert repo.show()["status"] == "failed"
    error = str(_step(repo)["error"])
    assert "outside the workspace" in error
    assert "out/root" in error or "out/secret" in error


def test_a_top_level_output_link_out_of_the_workspace_fails_the_step(repo: Repo) -> None:
    _pipeline(repo, "ln -s /etc/hostname model.bin", outputs="[model.bin]")
    result = repo.run("run")
    assert result.code == 1, result.out + result.err
    assert "model.bin" in str(_step(repo)["error"])


def test_links_within_the_workspace_are_stored_as_links_and_restored(repo: Repo) -> None:
    _pipeline(
        repo,
        "mkdir -p out/sub out/empty && echo hi > out/sub/f && ln -s sub/f out/to-file"
        " && ln -s sub out/to-dir && ln -s ../conveyor.yml out/spec",
    )
    assert repo.run("run").code == 0
    assert os.readlink(repo.path / "out/to-file") == "sub/f"
    for name in ("to-file", "to-dir", "spec", "empty"):
        (repo.path / "out" / name).unlink() if name != "empty" else (
            repo.path / "out/empty"
        ).rmdir()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert _step(repo)["cached"] is True
    out = repo.path / "out"
    assert os.readlink(out / "to-file") == "sub/f"
    assert os.readlink(out / "to-dir") == "sub"
    assert os.readlink(out / "spec") == "../conveyor.yml"
    assert (out / "empty").is_dir()
    assert (out / "to-file").read_text() == "hi\n"


def test_a_fifo_in_an_output_fails_the_step_instead_of_hanging(repo: Repo) -> None:
    _pipeline(repo, "mkdir -p out && mkfifo out/pipe")
    result = repo.run("run", timeout=60)
    assert result.code == 1, result.out + result.err
    error = str(_step(repo)["error"])
    assert "out/pipe" in error and "not a regular file" in error


def test_an_os_error_while_storing_fails_the_output_not_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.execute.workspace import OutputError

    store = ContentStore(tmp_path / "store")
    root = tmp_path / "ws"
    (root / "out").mkdir(parents=True)
    (root / "out/a").write_text("a")
    workspace = Workspace(root, store, DigestCache(tmp_path / "digests.sqlite"))

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ContentStore, "put_bytes", full_disk)
    with pytest.raises(OutputError, match=r"cannot store the output out.*No space left"):
        workspace.store_outputs(["out"])
    assert issubclass(OutputError, Exception) and not issubclass(OutputError, StoreError)
