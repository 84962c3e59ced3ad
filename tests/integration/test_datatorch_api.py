"""The ``datatorch`` module Conveyor gives DataTorch python actions: the package's action
API where no ``datatorch`` is installed, the installed package where one is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.execute.launch import DATATORCH_API

pytestmark = pytest.mark.integration

ACTION = """\
import datatorch
inputs = datatorch.get_inputs()
datatorch.set_output("sum", inputs["a"] + datatorch.get_input("b"))
print(datatorch.__file__)
"""


def run(tmp_path: Path, path: list[str]) -> list[str]:
    script = tmp_path / "action.py"
    script.write_text(ACTION)
    done = subprocess.run(
        [sys.executable, "-S", str(script), json.dumps({"a": 5, "b": 5})],
        env={"PYTHONPATH": ":".join(path)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_without_the_package_the_action_api_is_conveyors(tmp_path: Path) -> None:
    lines = run(tmp_path, [DATATORCH_API])
    assert lines[0] == "::sum::10"
    assert lines[1].startswith(DATATORCH_API)


def test_an_installed_package_takes_its_place(tmp_path: Path) -> None:
    real = tmp_path / "site" / "datatorch"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text(
        "import json, sys\n"
        "def get_inputs(): return json.loads(sys.argv[-1])\n"
        "def get_input(k): return get_inputs()[k]\n"
        "def set_output(k, v): print(f'::{k}::{json.dumps(v)}')\n"
    )
    lines = run(tmp_path, [DATATORCH_API, str(tmp_path / "site")])
    assert lines == ["::sum::10", str(real / "__init__.py")]
