"""Host volumes from a pipeline file are data: a directory of the machine is mounted only
when it really is under a directory the project allows: ``..``, symbolic links (to a
directory or a file, at any depth), a sibling with the same prefix and relative paths do
not get out; a project that allows none, and a server, mount none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.execute.hostvolumes import allowed_host_path
from conveyor.sdk.settings import ContainerSettings


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "allowed" / "data").mkdir(parents=True)
    (tmp_path / "allowed2").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key").write_text("k")
    os.symlink(tmp_path / "secret", tmp_path / "allowed" / "link")
    os.symlink(tmp_path / "secret" / "key", tmp_path / "allowed" / "data" / "key")
    os.symlink("../../secret", tmp_path / "allowed" / "data" / "up")
    return tmp_path


def test_a_directory_under_an_allowed_one_is_mounted_as_its_real_path(tree: Path) -> None:
    allowed = [str(tree / "allowed")]
    assert allowed_host_path(str(tree / "allowed" / "data"), allowed) == (
        str((tree / "allowed" / "data").resolve()),
        None,
    )
    assert allowed_host_path(str(tree / "allowed"), allowed)[0] is not None


@pytest.mark.parametrize(
    "escape",
    [
        "allowed/../secret",  # ..
        "allowed/data/../../secret/key",
        "allowed/link",  # a link to a directory outside
        "allowed/link/key",  # through that link
        "allowed/data/key",  # a link to a file outside
        "allowed/data/up",  # a relative link outside
        "allowed2",  # same prefix, another directory
        "secret",
    ],
)
def test_a_path_that_really_is_outside_is_refused(tree: Path, escape: str) -> None:
    real, why = allowed_host_path(f"{tree}/{escape}", [str(tree / "allowed")])
    assert real is None
    assert why is not None and "is not under a directory this project allows" in why


def test_a_relative_path_is_refused(tree: Path) -> None:
    real, why = allowed_host_path("allowed/data", [str(tree / "allowed")])
    assert real is None and why is not None and "not an absolute path" in why


def test_nothing_is_mounted_where_the_project_allows_nothing(tree: Path) -> None:
    real, why = allowed_host_path(str(tree / "allowed"), [])
    assert real is None
    assert why is not None and "this project allows no host volumes" in why


def test_the_setting_takes_absolute_directories_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    ok = ContainerSettings.parse(path, {"host_volumes": ["/data/shared"]})
    assert ok.host_volumes == ("/data/shared",)
    for bad in (["data"], "/data", [1]):
        with pytest.raises(Exception, match="host_volumes is a list of absolute directories"):
            ContainerSettings.parse(path, {"host_volumes": bad})
