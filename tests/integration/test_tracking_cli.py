"""Experiment tracking through the real CLI: a step that writes a metrics file and calls
``conveyor.log_metric`` from Python, then ``metrics show``/``diff``, ``params diff`` and
``runs compare`` (text and ``--json``); a metrics file that is not JSON; the same
tracking on HTCondor and Spark."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

import conveyor
from conveyor.domain.tracking import tracking_path
from tests.engines import configured, engine_missing
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, run_ids

pytestmark = pytest.mark.integration

SOURCE = Path(conveyor.__file__).parent  # the step's Python imports conveyor
# What `conveyor.log_*` needs on a machine without Conveyor (an HTCondor worker): stdlib only
DOMAIN = ("__init__.py", "states.py", "types.py", "tracking.py")
SHIPPED = ("__init__.py", "tracking.py", "errors.py", *(f"domain/{n}" for n in DOMAIN))

PIPELINE = """\
params:
  lr: {{type: float, default: 0.1}}
jobs:
  train:
    env:
      PYTHONPATH: {path}
    steps:
      - id: fit
        run: python3 fit.py ${{{{ params.lr }}}}
        inputs: [fit.py{lib}]
        metrics: [out/metrics.json, out/history.csv]
        outputs: [out/model.txt]
"""

FIT = """\
import json, os, sys
import conveyor

lr = float(sys.argv[1])
os.makedirs("out", exist_ok=True)
with open("out/metrics.json", "w") as f:
    json.dump({"train": {"loss": round(1 - lr, 3)}, "epochs": 2}, f)
with open("out/history.csv", "w") as f:
    f.write(f"epoch,acc\\n1,0.5\\n2,{lr * 2}\\n")
with open("out/model.txt", "w") as f:
    f.write(str(lr))
conveyor.log_metric("auc", round(0.8 + lr, 3))
conveyor.log_param("seen_lr", lr)
conveyor.log_artifact("out/model.txt")
"""


def _setup(repo: Repo, ship: bool = False) -> None:
    """The pipeline; ``ship``: with Conveyor's tracking modules as an input (``lib``)."""
    if ship:
        for name in SHIPPED:
            repo.write(f"lib/conveyor/{name}", (SOURCE / name).read_text(encoding="utf-8"))
    path = "lib" if ship else str(SOURCE.parent)
    repo.pipeline(PIPELINE.format(path=path, lib=", lib" if ship else ""))
    repo.write("fit.py", FIT)
    repo.commit("pipeline")


def _run(repo: Repo, *args: str) -> str:
    result = repo.run("run", *args, timeout=300)
    assert result.code == 0, result.out + result.err
    run_id: str = repo.show()["id"]
    return run_id


def _json(repo: Repo, *args: str) -> dict[str, object]:
    result = repo.run(*args, "--json")
    assert result.code == 0, result.err
    data: dict[str, object] = result.json()
    return data


EXPECTED_01 = {
    "out/metrics.json": {"train.loss": 0.9, "epochs": 2},
    "out/history.csv": {"epoch": 2, "acc": 0.2},
    "log:train.fit": {"auc": 0.9},
}


def test_metrics_of_files_and_log_calls_shown_diffed_and_compared(repo: Repo) -> None:
    _setup(repo)
    first = _run(repo)
    shown = _json(repo, "metrics", "show")
    assert shown["metrics"] == EXPECTED_01
    assert shown["params"] == {"run": {"lr": 0.1}, "log:train.fit": {"seen_lr": 0.1}}
    assert shown["errors"] == []
    [artifact] = shown["artifacts"]["train.fit"]  # type: ignore[index]
    assert artifact.endswith("/artifacts/model.txt")
    text = repo.run("metrics", "show", first)
    assert "out/metrics.json  train.loss  0.9" in text.out
    assert "log:train.fit     auc         0.9" in text.out

    second = _run(repo, "-p", "lr=0.3")
    diff = _json(repo, "metrics", "diff", first, second)
    changes = {(c["source"], c["key"]): c for c in diff["metrics"]}  # type: ignore[attr-defined]
    assert set(changes) == {
        ("out/metrics.json", "train.loss"),
        ("out/history.csv", "acc"),
        ("log:train.fit", "auc"),
    }
    assert changes["log:train.fit", "auc"] == {
        "source": "log:train.fit",
        "key": "auc",
        "old": 0.9,
        "new": 1.1,
        "delta": 0.2,
    }
    assert "+0.2" in repo.run("metrics", "diff", first, second).out
    params = _json(repo, "params", "diff", first, second)
    assert [(c["source"], c["key"], c["old"], c["new"]) for c in params["params"]] == [  # type: ignore[attr-defined]
        ("log:train.fit", "seen_lr", 0.1, 0.3),
        ("run", "lr", 0.1, 0.3),
    ]

    cached = _run(repo)  # served from the first run's cache: its tracking log with it
    assert repo.show()["steps"][0]["cached"]
    assert _json(repo, "metrics", "show", cached)["metrics"] == EXPECTED_01

    compared = _json(repo, "runs", "compare", first, second, cached)
    assert compared["runs"] == [first, second, cached]
    rows = {(r["source"], r["key"]): r["values"] for r in compared["metrics"]}  # type: ignore[attr-defined]
    assert rows["log:train.fit", "auc"] == [0.9, 1.1, 0.9]
    assert rows["out/metrics.json", "epochs"] == [2, 2, 2]
    changed = {r["key"] for r in compared["changed_outputs"]}  # type: ignore[attr-defined]
    assert changed == {"out/metrics.json", "out/history.csv", "out/model.txt"}
    table = repo.run("runs", "compare", first, second)
    assert table.code == 0 and "changed outputs:" in table.out and "*  run" in table.out

    with conveyor.Client(path=repo.path) as client:  # the SDK gives the same answers
        assert client.get_run(first).metrics == EXPECTED_01
        assert client.get_run(second).tracking()["params"]["run"] == {"lr": 0.3}
        assert client.compare(first, client.get_run(second)) == _json(
            repo, "runs", "compare", first, second
        )


def test_a_metrics_file_that_is_not_json_is_named_and_the_run_kept(repo: Repo) -> None:
    repo.pipeline("""\
        jobs:
          eval:
            steps:
              - id: score
                run: mkdir -p out && echo 'auc = 0.9' > out/metrics.json
                metrics: [out/metrics.json]
        """)
    repo.commit()
    run_id = _run(repo)
    assert repo.show()["status"] == "succeeded"
    shown = repo.run("metrics", "show", run_id)
    assert shown.code == 0, shown.err
    assert shown.err.strip() == (
        "warning: out/metrics.json of step eval.score is not JSON: Expecting value at line 1"
    )
    assert "recorded no metrics" in shown.out
    assert _json(repo, "metrics", "show")["errors"] == [
        "out/metrics.json of step eval.score is not JSON: Expecting value at line 1"
    ]
    assert repo.run("show", run_id, "--json").code == 0
    diffed = _json(repo, "metrics", "diff", run_id, run_id)
    assert diffed["metrics"] == [] and len(diffed["errors"]) == 2  # type: ignore[arg-type]


def test_unknown_runs_are_a_usage_error(repo: Repo) -> None:
    _setup(repo)
    _run(repo)
    for args in (("metrics", "show", "nope"), ("runs", "compare", "latest", "nope")):
        result = repo.run(*args)
        assert result.code == 2, result.err
        assert "no run matches 'nope'" in result.err and "Traceback" not in result.err
    one = repo.run("runs", "compare", "latest")
    assert one.code == 2 and "at least two runs" in one.err


@pytest.mark.parametrize("executor", ["htcondor", "spark"])
def test_tracking_comes_back_from_the_engines(repo: Repo, executor: str) -> None:
    if executor == "htcondor":
        if not (configured("CONDOR_CONFIG") and importlib.util.find_spec("htcondor2")):
            engine_missing("htcondor", "HTCondor pool not configured (scripts/engines)")
    else:
        master = os.environ.get("CONVEYOR_SPARK_MASTER")
        if not master:
            engine_missing("spark", "spark engine not configured (scripts/engines/spark.sh)")
        repo.write(".conveyor/config.toml", f'[executors.spark]\nmaster = "{master}"\n')
    _setup(repo, ship=True)
    _run(repo, "--executor", executor, "-p", "lr=0.1")
    shown = _json(repo, "metrics", "show")
    assert shown["metrics"] == EXPECTED_01
    assert shown["params"] == {"run": {"lr": 0.1}, "log:train.fit": {"seen_lr": 0.1}}
    assert json.loads((repo.path / "out/metrics.json").read_text())["epochs"] == 2


SERVER_PIPELINE = """\
jobs:
  train:
    steps:
      - id: fit
        run: |
          mkdir -p out "$CONVEYOR_PROJECT_DIR/$CONVEYOR_TRACKING"
          echo '{"auc": 0.75}' > out/metrics.json
          echo '{"kind": "metric", "name": "f1", "value": 0.5}' \\
            >> "$CONVEYOR_PROJECT_DIR/$CONVEYOR_TRACKING/log.jsonl"
        metrics: [out/metrics.json]
"""


def test_a_server_run_stores_the_metrics_file_and_the_tracking_log(
    repo: Repo, server: Server
) -> None:
    # the protocol without Conveyor in the step (a sandboxed shell step): lines in the file
    repo.pipeline(SERVER_PIPELINE)
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    [run_id] = run_ids(out)
    run = server.wait_run(run_id)
    assert run["status"] == "succeeded", run
    paths = {o["path"]: o["kind"] for o in run["steps"][0]["outputs"]}
    assert paths == {"out/metrics.json": "file", tracking_path("train.fit"): "tree"}
