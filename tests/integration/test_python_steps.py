"""Python function steps over datums through the real CLI: locally, then on HTCondor and
Spark with the same outputs, the same cache keys and the same provenance.

The engine tests need ``eval "$(scripts/engines/all.sh env)"`` (CONDOR_CONFIG,
CONVEYOR_SPARK_MASTER); they are skipped without it (failed when scripts/test.sh started
the engine). The workers need ``python3`` and nothing of Conveyor.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.engines import configured, engine_missing
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
jobs:
  count:
    steps:
      - id: words
        python: analysis.words:count
        datums: data/texts/*.txt
        result: results/words/${{ datum.stem }}.json
  total:
    steps:
      - python: analysis.words:total
        inputs: [results/words]
        result: results/total.json
"""

MODULE = """\
import glob
import json


def count(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if text.strip() == "boom":
        raise ValueError(f"cannot count {path}")
    print("counted", path)
    return {"path": path, "words": len(text.split()), "first": text.split()[0]}


def total():
    found = sorted(glob.glob("results/words/*.json"))
    return {"files": len(found), "words": sum(json.load(open(p))["words"] for p in found)}
"""

TEXTS = {"a": "alpha beta\n", "b": "gamma delta epsilon\n", "c": "zeta\n"}


def _setup(repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.write("analysis/__init__.py", "")
    repo.write("analysis/words.py", MODULE)
    for name, text in TEXTS.items():
        repo.write(f"data/texts/{name}.txt", text)
    repo.commit("pipeline")


def _ran(repo: Repo) -> set[str]:
    return {step_id for step_id, step in repo.steps().items() if not step["cached"]}


def _digests(repo: Repo) -> dict[tuple[str, str], str]:
    return {
        (step_id, out["path"]): out["digest"]
        for step_id, step in repo.steps().items()
        for out in step["outputs"]
    }


def _result(repo: Repo, rel: str) -> object:
    return json.loads((repo.path / rel).read_text(encoding="utf-8"))


def test_one_step_run_per_datum_with_json_results_and_a_cache_per_datum(repo: Repo) -> None:
    _setup(repo)
    first = repo.run("run", "--executor", "local")
    assert first.code == 0, first.out + first.err
    assert _ran(repo) == {"count.words[a.txt]", "count.words[b.txt]", "count.words[c.txt]"} | {
        "total.step-1"
    }
    assert _result(repo, "results/words/b.json") == {
        "first": "gamma",
        "path": "data/texts/b.txt",
        "words": 3,
    }
    assert _result(repo, "results/total.json") == {"files": 3, "words": 6}
    log = Path(repo.steps()["count.words[a.txt]"]["log"]).read_text()
    assert "counted data/texts/a.txt" in log
    assert not (repo.path / "analysis" / "__pycache__").exists()  # code inputs stay put

    again = repo.run("run")
    assert again.code == 0, again.out + again.err
    assert _ran(repo) == set()

    repo.write("data/texts/b.txt", "gamma\n")
    repo.write("data/texts/d.txt", "eta theta\n")
    changed = repo.run("run")
    assert changed.code == 0, changed.out + changed.err
    assert _ran(repo) == {"count.words[b.txt]", "count.words[d.txt]", "total.step-1"}
    assert _result(repo, "results/total.json") == {"files": 4, "words": 6}
    why = repo.run("why", "count.words[b.txt]")
    assert "input data/texts/b.txt changed" in why.out


def test_a_raising_function_fails_its_datum_with_the_traceback_in_the_log(repo: Repo) -> None:
    _setup(repo)
    repo.write("data/texts/bad.txt", "boom\n")
    result = repo.run("run", "-j", "2")
    assert result.code == 1
    steps = repo.steps()
    assert steps["count.words[bad.txt]"]["status"] == "failed"
    assert steps["count.words[a.txt]"]["status"] == "succeeded"
    assert steps["total.step-1"]["status"] == "skipped"
    log = Path(steps["count.words[bad.txt]"]["log"]).read_text()
    assert "Traceback (most recent call last)" in log
    assert "ValueError: cannot count data/texts/bad.txt" in log
    assert not (repo.path / "results/words/bad.json").exists()


def test_datums_that_match_nothing_are_a_usage_error(repo: Repo) -> None:
    _setup(repo)
    for name in TEXTS:
        (repo.path / f"data/texts/{name}.txt").unlink()
    result = repo.run("run")
    assert result.code == 2
    assert "conveyor.yml:6:9: datums data/texts/*.txt match no file" in result.err
    assert "Traceback" not in result.err


def _engine(executor: str, repo: Repo) -> None:
    if executor == "htcondor":
        if not (configured("CONDOR_CONFIG") and importlib.util.find_spec("htcondor2")):
            engine_missing("htcondor", "HTCondor pool not configured (scripts/engines)")
    elif executor == "dask":
        scheduler = os.environ.get("CONVEYOR_DASK_SCHEDULER")
        if not scheduler:
            engine_missing("dask", "dask engine not configured (scripts/engines/dask.sh)")
        repo.write(".conveyor/config.toml", f'[executors.dask]\nscheduler = "{scheduler}"\n')
    else:
        master = os.environ.get("CONVEYOR_SPARK_MASTER")
        if not master:
            engine_missing("spark", "spark engine not configured (scripts/engines/spark.sh)")
        repo.write(".conveyor/config.toml", f'[executors.spark]\nmaster = "{master}"\n')


@pytest.mark.parametrize("executor", ["htcondor", "spark", "dask"])
def test_engine_runs_datums_with_the_same_outputs_cache_and_provenance(
    repo: Repo, executor: str
) -> None:
    _engine(executor, repo)
    _setup(repo)
    local = repo.run("run", "--executor", "local")
    assert local.code == 0, local.out + local.err
    expected = _digests(repo)
    assert len(expected) == 4

    shutil.rmtree(repo.path / "results")
    cached = repo.run("run", "--executor", executor, timeout=300)
    assert cached.code == 0, cached.out + cached.err
    assert _ran(repo) == set()  # the local run's cache serves the engine
    assert _result(repo, "results/total.json") == {"files": 3, "words": 6}

    shutil.rmtree(repo.path / "results")
    forced = repo.run("run", "--executor", executor, "--force", timeout=300)
    assert forced.code == 0, forced.out + forced.err
    run = repo.show()
    assert run["executor"] == executor
    assert len(_ran(repo)) == 4
    assert _digests(repo) == expected
    log = Path(repo.steps()["count.words[c.txt]"]["log"]).read_text()
    assert "counted data/texts/c.txt" in log
    if executor == "htcondor":  # the worker's Python that ran each step, with the slot
        ran_on = repo.steps()["count.words[c.txt]"]["ran_on"]
        path, version = ran_on["interpreter"].split(" ")
        assert path.startswith("/") and "python" in path, ran_on
        assert version.startswith("3."), ran_on

    lineage = repo.run("lineage", "results/words/a.json", "--json")
    assert lineage.code == 0, lineage.err
    assert "data/texts/a.txt" in lineage.out

    repo.write("data/texts/a.txt", "alpha\n")
    one = repo.run("run", "--executor", executor, timeout=300)
    assert one.code == 0, one.out + one.err
    assert _ran(repo) == {"count.words[a.txt]", "total.step-1"}
    back = repo.run("run", "--executor", "local")
    assert back.code == 0 and _ran(repo) == set()  # and the engine's results serve local
