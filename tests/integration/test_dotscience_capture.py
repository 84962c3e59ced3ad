"""Dotscience scripts run unchanged: the runs the real ``dotscience`` library publishes
(``ds.publish()`` prints ``[[DOTSCIENCE-RUN:...]]`` blocks) are captured into the step's
provenance and shown by ``metrics show`` and ``params diff``, cache hits included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.dotscience_oracle import dotscience_python

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  lr: {{type: float, default: 0.1}}
jobs:
  train:
    steps:
      - id: fit
        run: {python} train.py ${{{{ params.lr }}}}
        inputs: [train.py, data/points.csv]
        outputs: [out/model.txt]
"""

# a Dotscience user's script as they wrote it: nothing of Conveyor in it
SCRIPT = """\
import os, sys
import dotscience as ds

ds.script()
ds.start()
lr = ds.parameter("lr", float(sys.argv[1]))
ds.add_parameters(epochs=3)
rows = open(ds.input("data/points.csv")).read().split()
os.makedirs("out", exist_ok=True)
with open(ds.output("out/model.txt"), "w") as model:
    model.write(str(lr * len(rows)))
ds.add_label("team", "forecast")
ds.metric("loss", round(1 - lr, 3))
ds.add_metric("rows", len(rows))
print("[[DOTSCIENCE-RUN:not-a-run]]no json here[[/DOTSCIENCE-RUN:not-a-run]]")
ds.publish("fit the model")
"""


@pytest.fixture
def project(repo: Repo) -> Repo:
    python = dotscience_python()
    repo.pipeline(PIPELINE.format(python=python))
    repo.write("train.py", SCRIPT)
    repo.write("data/points.csv", "1\n2\n3\n4\n")
    repo.commit("dotscience script")
    return repo


def test_published_runs_join_the_steps_provenance(project: Repo) -> None:
    assert project.run("run").code == 0
    shown = project.run("metrics", "show", "--json").json()
    assert shown["metrics"]["dotscience:train.fit"] == {"loss": 0.9, "rows": 4}
    assert shown["params"]["dotscience:train.fit"] == {"epochs": 3, "lr": 0.1}
    [published] = shown["dotscience"]["train.fit"]
    assert published["description"] == "fit the model"
    assert published["labels"] == {"team": "forecast"}
    assert published["input"] == ["data/points.csv"]
    assert published["output"] == ["out/model.txt"]
    text = project.run("metrics", "show").out
    assert "dotscience:train.fit" in text and "loss" in text
    assert "fit the model" in text  # the description of what was published


def test_params_diff_and_a_cache_hit_keep_the_published_values(project: Repo) -> None:
    assert project.run("run", "-p", "lr=0.1").code == 0
    first = project.show()["id"]
    assert project.run("run", "-p", "lr=0.3").code == 0
    second = project.show()["id"]
    diff = project.run("params", "diff", first, second, "--json").json()
    changed = {(c["source"], c["key"]): (c["old"], c["new"]) for c in diff["params"]}
    assert changed[("dotscience:train.fit", "lr")] == (0.1, 0.3)
    assert ("dotscience:train.fit", "epochs") not in changed
    assert project.run("run", "-p", "lr=0.1").code == 0
    assert project.steps()["train.fit"]["cached"] is True
    again = project.run("metrics", "show", "--json").json()
    assert again["params"]["dotscience:train.fit"]["lr"] == 0.1


def test_the_capture_matches_what_the_library_printed(project: Repo, tmp_path: Path) -> None:
    assert project.run("run").code == 0
    log = project.run("logs", "latest", "train.fit").out
    start = log.index("[[DOTSCIENCE-RUN:", log.index("[[/DOTSCIENCE-RUN:not-a-run]]"))
    run_id = log[start + len("[[DOTSCIENCE-RUN:") : log.index("]]", start)]
    body = log[log.index("]]", start) + 2 : log.index(f"[[/DOTSCIENCE-RUN:{run_id}]]")]
    printed = json.loads(body)
    [captured] = project.run("metrics", "show", "--json").json()["dotscience"]["train.fit"]
    assert captured["id"] == run_id
    for key in ("input", "output", "labels", "parameters", "summary", "description"):
        assert captured[key] == printed[key]
