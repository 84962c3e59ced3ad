"""Golden tests of Pachyderm datums: ``pachyderm/NAME.case.json`` (a spec of the format
corpus and a listing per input: ``[path, digest]`` pairs) gives exactly
``pachyderm/NAME.datums.json``, as ``conveyor pipeline datums --json`` prints it.

After an intended change, rewrite the expected files with
``CONVEYOR_UPDATE_GOLDEN=1 python -m pytest tests/golden`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conveyor.plan.pachyderm_datums import datum_json, datums, transform_digest
from conveyor.spec.pachyderm import load_specs

CASES = Path(__file__).with_name("pachyderm")
UPDATE = os.environ.get("CONVEYOR_UPDATE_GOLDEN") == "1"
NAMES = sorted(p.name.removesuffix(".case.json") for p in CASES.glob("*.case.json"))


@pytest.mark.parametrize("name", NAMES)
def test_a_spec_and_listings_give_the_recorded_datums(name: str) -> None:
    case = json.loads((CASES / f"{name}.case.json").read_text())
    (spec,) = load_specs(CASES / case["spec"]).pipelines
    listings = {k: [(path, digest) for path, digest in v] for k, v in case["listings"].items()}
    transform = transform_digest(spec.transform)
    got = [datum_json(d, transform, spec.salt) for d in datums(spec.input, listings)]
    expected_file = CASES / f"{name}.datums.json"
    if UPDATE:
        expected_file.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(expected_file.read_text())
