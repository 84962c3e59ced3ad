"""A run whose plan is not cached reads a native conveyor.yml without pydantic when the
plain reader is sure of it, and through the model (with the model's error) when not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PLAIN = """\
params:
  n: 3
jobs:
  leaf:
    matrix: {i: [1, 2]}
    steps:
      - run: echo ${{ matrix.i }} ${{ params.n }} > out-${{ matrix.i }}.txt
        outputs: ['out-${{ matrix.i }}.txt']
  join:
    needs: leaf
    steps:
      - run: cat out-1.txt out-2.txt > all.txt
        inputs: [out-1.txt, out-2.txt]
        outputs: [all.txt]
"""


def _loaded(repo: Repo, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """A ``conveyor`` command in a fresh interpreter, and the modules it imported."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('MODULES ' + ' '.join(sys.modules) + '\\n'))\n"
        "from conveyor.cli.main import main\n"
        f"sys.argv = ['conveyor', *{list(args)!r}]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES "))
    return proc, set(line.split()[1:])


def test_a_cold_run_of_a_plain_file_imports_no_pydantic(repo: Repo) -> None:
    repo.pipeline(PLAIN)
    proc, modules = _loaded(repo, "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (repo.path / "all.txt").read_text(encoding="utf-8").split() == ["1", "3", "2", "3"]
    assert "pydantic" not in modules and "conveyor.spec.model" not in modules
    assert sorted(repo.steps()) == ["join.step-1", "leaf[i=1].step-1", "leaf[i=2].step-1"]


def test_a_file_the_reader_declines_gets_the_models_error(repo: Repo) -> None:
    repo.pipeline(PLAIN.replace("outputs: [all.txt]", "ouputs: [all.txt]"))
    proc, modules = _loaded(repo, "run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "unknown key 'ouputs'" in proc.stderr and "did you mean 'outputs'" in proc.stderr
    assert "conveyor.yml:" in proc.stderr and "Traceback" not in proc.stderr
    assert "pydantic" in modules
