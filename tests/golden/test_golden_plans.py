"""Golden tests: each ``cases/NAME.yml`` compiles to exactly ``cases/NAME.json``.

Optional side files: ``NAME.params`` (one ``name=value`` per line, as ``--param``),
``NAME.only`` (one selection per line, as ``--only``) and ``NAME.files`` (the project's
files, one path per line, for ``datums`` globs and ``python:`` modules). After an intended change to the
plan, rewrite the expected files with::

    CONVEYOR_UPDATE_GOLDEN=1 python -m pytest tests/golden

and review the diff of ``tests/golden/cases/*.json`` before committing it.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli.context import param_values
from conveyor.plan.compile import compile_plan
from conveyor.plan.model import ExecutionPlan
from conveyor.sdk.listing import ProjectFiles
from conveyor.spec.load import load_pipeline

CASES = Path(__file__).with_name("cases")
UPDATE = os.environ.get("CONVEYOR_UPDATE_GOLDEN") == "1"
NAMES = sorted(p.stem for p in CASES.glob("*.yml"))


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def compile_case(name: str) -> ExecutionPlan:
    spec = load_pipeline(CASES / f"{name}.yml", display=f"{name}.yml")
    params = param_values(_lines(CASES / f"{name}.params"))
    with tempfile.TemporaryDirectory() as root:  # the listed files, empty, for real globs
        for rel in _lines(CASES / f"{name}.files"):
            (Path(root) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(root) / rel).touch()
        return compile_plan(spec, params, _lines(CASES / f"{name}.only"), ProjectFiles(Path(root)))


def render(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_there_are_cases() -> None:
    assert len(NAMES) >= 6


def test_every_expected_file_has_a_case() -> None:
    expected = {p.stem for p in CASES.glob("*.json")}
    sides = {p.stem for suffix in ("params", "only", "files") for p in CASES.glob(f"*.{suffix}")}
    assert expected <= set(NAMES), f"JSON without a pipeline: {sorted(expected - set(NAMES))}"
    assert sides <= set(NAMES), f"side files without a pipeline: {sorted(sides - set(NAMES))}"


@pytest.mark.parametrize("name", NAMES)
def test_plan_matches_golden(name: str) -> None:
    actual = render(compile_case(name).to_json())
    golden = CASES / f"{name}.json"
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    if not golden.exists():
        pytest.fail(f"{golden.name} is missing; write it with CONVEYOR_UPDATE_GOLDEN=1")
    expected = golden.read_text(encoding="utf-8")
    if json.loads(expected) != json.loads(actual):
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"{name}.json (expected)",
                f"{name}.json (compiled)",
            )
        )
        pytest.fail(
            f"the plan of {name}.yml changed; if that is intended, rerun with "
            f"CONVEYOR_UPDATE_GOLDEN=1 and review the diff:\n{diff}"
        )


@pytest.mark.parametrize("name", NAMES)
def test_golden_json_reads_back_into_the_same_plan(name: str) -> None:
    golden = CASES / f"{name}.json"
    if not golden.exists():
        pytest.fail(f"{golden.name} is missing; write it with CONVEYOR_UPDATE_GOLDEN=1")
    data = json.loads(golden.read_text(encoding="utf-8"))
    assert ExecutionPlan.from_json(data) == compile_case(name)


@pytest.mark.parametrize("name", NAMES)
def test_golden_plans_are_topologically_ordered(name: str) -> None:
    plan = compile_case(name)
    seen: set[str] = set()
    for step in plan.steps:
        assert set(step.needs) <= seen, f"{step.id} comes before one of {step.needs}"
        seen.add(step.id)
    for consumer, producer, _path in plan.inferred:
        assert producer in plan.step(consumer).needs
