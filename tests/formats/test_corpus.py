"""The format corpus: pipeline files of every supported format and what they must give.

``cases/NAME/`` holds one pipeline file (its name picks the format, as in a project)
and ``plan.json``, the plan it must compile to; the same file converted to conveyor.yml
must compile to the same plan. ``bad/NAME/`` holds one malformed file and ``error.txt``,
the exact message (with file:line:col) it must be refused with. After an intended
change, rewrite the expected files with::

    CONVEYOR_UPDATE_GOLDEN=1 python -m pytest tests/formats

and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.plan.model import ExecutionPlan
from conveyor.spec.convert import to_native_yaml
from conveyor.spec.formats import load_file
from conveyor.spec.load import parse_pipeline

HERE = Path(__file__).parent
UPDATE = os.environ.get("CONVEYOR_UPDATE_GOLDEN") == "1"
EXPECTED = {"plan.json", "error.txt", "convert.yml"}
CASES = sorted(p.name for p in (HERE / "cases").iterdir() if p.is_dir())
BAD = sorted(p.name for p in (HERE / "bad").iterdir() if p.is_dir())


def pipeline_file(directory: Path) -> Path:
    files = [
        p
        for p in directory.iterdir()
        if p.is_file() and p.name not in EXPECTED and p.suffix in (".yml", ".yaml", ".json")
    ]
    assert len(files) == 1, f"{directory} must hold exactly one pipeline file: {files}"
    return files[0]


def compile_case(name: str) -> ExecutionPlan:
    path = pipeline_file(HERE / "cases" / name)
    return compile_plan(load_file(path, path.name))


def test_the_corpus_covers_every_format() -> None:
    names = {pipeline_file(HERE / "cases" / n).name for n in CASES}
    assert {".drone.yml", ".dotscience.yml", "pipeline.yml"} <= names
    assert len(BAD) >= 20


@pytest.mark.parametrize("name", CASES)
def test_case_compiles_to_its_plan(name: str) -> None:
    actual = compile_case(name).to_json()
    golden = HERE / "cases" / name / "plan.json"
    if UPDATE:
        golden.write_text(json.dumps(actual, indent=2) + "\n", encoding="utf-8")
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CASES)
def test_case_converts_to_a_conveyor_yml_with_the_same_plan(name: str) -> None:
    path = pipeline_file(HERE / "cases" / name)
    spec = load_file(path, path.name)
    text = to_native_yaml(spec, path.name)
    again = parse_pipeline(text, "conveyor.yml")
    assert compile_plan(again) == compile_plan(spec)


@pytest.mark.parametrize("name", CASES)
def test_case_plan_reads_back(name: str) -> None:
    plan = compile_case(name)
    assert ExecutionPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


@pytest.mark.parametrize("name", BAD)
def test_bad_file_is_refused_with_its_message(name: str) -> None:
    path = pipeline_file(HERE / "bad" / name)
    expected = HERE / "bad" / name / "error.txt"
    with pytest.raises(SpecError) as caught:
        compile_plan(load_file(path, path.name))
    if UPDATE:
        expected.write_text(str(caught.value) + "\n", encoding="utf-8")
    assert str(caught.value) == expected.read_text(encoding="utf-8").strip()
