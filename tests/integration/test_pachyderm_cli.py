"""``conveyor pipeline check|datums`` through the real CLI: a Pachyderm user's specs and
directories in, the pipelines and datums out; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import CONVEYOR

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "formats" / "pachyderm"


def conveyor(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONVEYOR_DEBUG": ""}
    return subprocess.run(
        [*CONVEYOR, *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(CORPUS / "valid" / "opencv-stream.json", tmp_path / "pipelines.json")
    shutil.copy(CORPUS / "valid" / "joins-outer.pipeline.json", tmp_path / "outer.json")
    for name, content in {"liberty.png": "L", "kitten.png": "K"}.items():
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / name).write_text(content)
    (tmp_path / "stores").mkdir()
    (tmp_path / "returns").mkdir()
    for n in (1, 2):
        (tmp_path / "stores" / f"STOREID{n}.txt").write_text(str(n))
    (tmp_path / "returns" / "R1_STOREID2.txt").write_text("r")
    (tmp_path / "returns" / "R2_STOREID7.txt").write_text("r")
    return tmp_path


def test_check_prints_the_pipelines_and_their_input_trees(project: Path) -> None:
    done = conveyor(project, "pipeline", "check", "-f", "pipelines.json")
    assert done.returncode == 0, done.stderr
    assert "pipelines.json is valid: 2 pipeline(s)" in done.stdout
    assert "    pfs edges: edges /  branch=master" in done.stdout
    data = json.loads(
        conveyor(project, "pipeline", "check", "-f", "pipelines.json", "--json").stdout
    )
    assert [p["name"] for p in data["pipelines"]] == ["edges", "montage"]
    assert data["pipelines"][1]["input"]["cross"][1]["pfs"]["repo"] == "edges"


def test_datums_of_local_directories(project: Path) -> None:
    done = conveyor(
        project, "pipeline", "datums", "-f", "pipelines.json", "--pipeline", "edges",
        "--input", "images=images", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    datums = json.loads(done.stdout)["datums"]
    assert [d["env"]["images"] for d in datums] == [
        "/pfs/images/kitten.png",
        "/pfs/images/liberty.png",
    ]
    outer = conveyor(
        project, "pipeline", "datums", "-f", "outer.json",
        "--input", "stores=stores", "--input", "returns=returns",
    )  # fmt: skip
    assert outer.returncode == 0, outer.stderr
    assert len(outer.stdout.splitlines()) == 3  # store 1 alone, 2 with its return, return 7
    assert "stores:/STOREID2.txt (1 file)  returns:/R1_STOREID2.txt (1 file)" in outer.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "-f", "missing.json"], "missing.json: no such file"),
        (["datums", "-f", "pipelines.json", "--input", "images=images"], "several pipelines"),
        (
            ["datums", "-f", "outer.json", "--input", "stores=stores"],
            "no listing for input 'returns'",
        ),
        (["datums", "-f", "outer.json", "--input", "shops=stores"], "no input named 'shops'"),
        (["datums", "-f", "outer.json", "--input", "stores"], "--input takes NAME=DIR"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    project: Path, args: list[str], message: str
) -> None:
    done = conveyor(project, "pipeline", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_a_bad_spec_names_its_position(project: Path) -> None:
    shutil.copy(CORPUS / "invalid" / "cross-duplicate-names.json", project / "bad.json")
    done = conveyor(project, "pipeline", "check", "-f", "bad.json")
    assert done.returncode == 2
    assert done.stderr.startswith("conveyor: error: bad.json:7:8: two inputs of this cross")
