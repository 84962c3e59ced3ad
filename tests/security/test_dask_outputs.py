"""What a Dask task returns is data from a worker: the driver writes it only under the
invocation's declared outputs and inside the project, and sends only declared inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation
from conveyor.executors.dask.files import input_files, write_outputs


def _invocation(
    root: Path, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()
) -> Invocation:
    return Invocation("r/s/1", "true", {}, root, root / "s.log", inputs=inputs, outputs=outputs)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    "path", ["../escaped.txt", "out/../../escaped.txt", "/tmp/escaped.txt", "other.txt"]
)
def test_a_returned_path_outside_the_declared_outputs_is_refused(project: Path, path: str) -> None:
    inv = _invocation(project, outputs=("out",))
    with pytest.raises(ExecutorError, match="not a declared output"):
        write_outputs(inv, [(path, "file", 0o644, b"x")], "t")
    assert not (project.parent / "escaped.txt").exists()
    assert not (project / "other.txt").exists()


def test_a_link_in_the_project_does_not_lead_an_output_out(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "out").symlink_to(outside)
    inv = _invocation(project, outputs=("out",))
    with pytest.raises(ExecutorError, match="outside the project"):
        write_outputs(inv, [("out/x.txt", "file", 0o644, b"x")], "t")
    assert os.listdir(outside) == []


def test_declared_outputs_are_written_with_their_mode(project: Path) -> None:
    inv = _invocation(project, outputs=("out",))
    write_outputs(
        inv, [("out", "dir", 0o755, b""), ("out/run.sh", "file", 0o100755, b"echo\n")], "t"
    )
    assert (project / "out" / "run.sh").read_bytes() == b"echo\n"
    assert os.stat(project / "out" / "run.sh").st_mode & 0o777 == 0o755


def test_only_declared_inputs_inside_the_project_are_sent(project: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("no")
    (project / "data").mkdir()
    (project / "data" / "a.txt").write_text("a")
    (project / "other.txt").write_text("b")
    inv = _invocation(project, inputs=("data", "../secret.txt", "/etc/passwd"))
    assert [(rel, data) for rel, _, data in input_files(inv)] == [("data/a.txt", b"a")]
