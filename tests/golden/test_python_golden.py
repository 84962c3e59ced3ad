"""Golden: a pipeline written in Python (``python/pipeline.py``) compiles to exactly the
plan of the same pipeline written as ``conveyor.yml`` (``python/conveyor.yml``), with
the same parameters; the loader runs as ``conveyor plan pipeline.py`` runs it (a child
process), and the project modules a step imports are its inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.plan.compile import compile_plan
from conveyor.sdk.listing import ProjectFiles
from conveyor.sdk.pyflow import load_python_spec
from conveyor.spec.load import load_pipeline

CASE = Path(__file__).with_name("python").resolve()


@pytest.mark.parametrize("params", [{}, {"rows": "3", "name": "sum of it"}])
def test_the_python_pipeline_compiles_to_the_plan_of_its_yaml(params: dict[str, str]) -> None:
    files = ProjectFiles(CASE)
    python = load_python_spec(CASE, CASE / "pipeline.py", "pipeline.py")
    yaml = load_pipeline(CASE / "conveyor.yml", display="conveyor.yml")
    from_python = compile_plan(python, params, (), files).to_json()
    from_yaml = compile_plan(yaml, params, (), files).to_json()
    assert from_python == from_yaml
    steps = {s["id"]: s for s in from_python["steps"]}
    assert steps["golden.prepare"]["needs"] == ["golden.load"]
    assert "features.py" in steps["golden.prepare"]["inputs"]
    assert python.read_files == (str(CASE / "features.py"),)
