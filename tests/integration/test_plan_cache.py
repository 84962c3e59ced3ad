"""The compiled-plan cache (``.conveyor/cache/plans``) through the real CLI: an entry
whose plan is not of the plan's shape is a miss, compiled again and written anew."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
name: demo
jobs:
  a:
    steps:
      - id: make
        run: mkdir -p out && echo hi > out/a.txt
        outputs: [out/a.txt]
"""


def test_a_cached_plan_of_the_wrong_shape_is_compiled_again(repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.commit()
    assert repo.run("run").code == 0
    (entry,) = (repo.path / ".conveyor" / "cache" / "plans").glob("*.json")
    data = json.loads(entry.read_text(encoding="utf-8"))
    assert data["plan"]["steps"][0]["if"] == "success()"
    data["plan"]["steps"][0]["if"] = "sometimes()"
    entry.write_text(json.dumps(data), encoding="utf-8")

    again = repo.run("run")

    assert again.code == 0, again.err
    assert repo.steps()["a.make"]["status"] == "succeeded"
    rewritten = json.loads(entry.read_text(encoding="utf-8"))
    assert rewritten["plan"]["steps"][0]["if"] == "success()"
