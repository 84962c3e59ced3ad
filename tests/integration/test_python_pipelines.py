"""Pipelines written in Python through the real CLI and SDK: a run, its typed values as
files in the store, the cache keyed by the code a step imports, DataFrames as Parquet,
``Client().run(pipeline, x=3)``, an engine, and shape errors with file:line (exit 2)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
from pathlib import Path

import helpers
import unrelated

import conveyor


@conveyor.step
def make(n: int) -> list[int]:
    print("making", n)
    return list(range(n))


@conveyor.step
def total(values: list[int], scale: float) -> float:
    return helpers.double(sum(values)) * scale


@conveyor.step
def report(value: float, label: str) -> Path:
    out = Path("out/report.txt")
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"{label}: {value}\\n")
    return out


def not_a_step() -> int:
    return unrelated.VALUE


@conveyor.pipeline
def flow(n: int = 4, label: str = "sum") -> None:
    report(total(make(n), 0.5), label)
"""


def _setup(repo: Repo) -> None:
    repo.write("pipeline.py", PIPELINE)
    repo.write("helpers.py", "import maths\n\n\ndef double(x):\n    return maths.times(x, 2)\n")
    repo.write("maths.py", "def times(x, k):\n    return x * k\n")
    repo.write("unrelated.py", "VALUE = 1\n")
    repo.write(".gitignore", "_pyflow/\nout/\n")
    repo.commit("python pipeline")


def _ran(repo: Repo) -> set[str]:
    return {step_id for step_id, step in repo.steps().items() if not step["cached"]}


def _value(repo: Repo, step: str) -> object:
    return json.loads((repo.path / "_pyflow" / step / "return.json").read_text())


def test_a_python_pipeline_runs_with_typed_values_and_caches_by_the_code_it_imports(
    repo: Repo,
) -> None:
    _setup(repo)
    first = repo.run("run", "pipeline.py", "-p", "n=5")
    assert first.code == 0, first.out + first.err
    assert _ran(repo) == {"flow.make", "flow.total", "flow.report"}
    assert _value(repo, "make") == [0, 1, 2, 3, 4]
    assert _value(repo, "total") == 10.0
    assert (repo.path / "_pyflow/report/return").read_text() == "sum: 10.0\n"
    assert "making 5" in Path(repo.steps()["flow.make"]["log"]).read_text()

    assert repo.run("run", "pipeline.py", "-p", "n=5").code == 0
    assert _ran(repo) == set()

    repo.write("unrelated.py", "VALUE = 2\n")  # imported by the file, used by no step
    assert repo.run("run", "pipeline.py", "-p", "n=5").code == 0
    assert _ran(repo) == set()

    repo.write("maths.py", "def times(x, k):\n    return x * k  # same result\n")
    changed = repo.run("run", "pipeline.py", "-p", "n=5")
    assert changed.code == 0, changed.out + changed.err
    assert _ran(repo) == {"flow.total"}  # its result is the same: report is served
    why = repo.run("why", "flow.total")
    assert "input maths.py changed" in why.out, why.out + why.err

    lineage = repo.run("lineage", "_pyflow/total/return.json", "--json")
    assert lineage.code == 0, lineage.err
    assert "_pyflow/make/return.json" in lineage.out

    other = repo.run("run", "pipeline.py", "-p", "n=3", "-p", "label=three words")
    assert other.code == 0, other.out + other.err
    assert (repo.path / "out/report.txt").read_text() == "three words: 3.0\n"


def test_editing_one_step_function_reruns_that_step_only(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run", "pipeline.py").code == 0
    repo.write("pipeline.py", PIPELINE.replace("scale: float", "scale: float = 1.0"))
    changed = repo.run("run", "pipeline.py")
    assert changed.code == 0, changed.out + changed.err
    assert _ran(repo) == {"flow.total"}


DATAFRAMES = """\
import pandas as pd

import conveyor


@conveyor.step
def table(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(rows)), "y": [v * 1.5 for v in range(rows)]})


@conveyor.step
def summary(frame: pd.DataFrame) -> dict[str, float]:
    return {"rows": float(len(frame)), "y": float(frame["y"].sum())}


@conveyor.pipeline
def frames(rows: int = 4) -> None:
    summary(table(rows))
"""


def test_dataframes_travel_between_steps_as_parquet(repo: Repo) -> None:
    pytest.importorskip("pyarrow")
    repo.write("frames.py", DATAFRAMES)
    repo.commit()
    result = repo.run("run", "frames.py")
    assert result.code == 0, result.out + result.err
    parquet = repo.path / "_pyflow/table/return.parquet"
    assert parquet.read_bytes()[:4] == b"PAR1"
    assert _value(repo, "summary") == {"rows": 4.0, "y": 9.0}


def test_the_sdk_runs_a_pipeline_object_with_parameters(repo: Repo) -> None:
    _setup(repo)
    code = (
        "import conveyor, pipeline\n"
        "run = conveyor.Client().run(pipeline.flow, n=3, progress=False)\n"
        "print(run.status, len(run.steps))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(repo.path), *sys.path])},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["succeeded", "3"]
    assert _value(repo, "total") == 3.0
    # the same plan as the CLI's: the CLI's run of the same values is served from cache
    assert repo.run("run", "pipeline.py", "-p", "n=3").code == 0
    assert _ran(repo) == set()


@pytest.mark.parametrize("executor", ["spark", "htcondor"])
def test_an_engine_runs_a_python_pipeline_with_the_local_cache_keys(
    repo: Repo, executor: str
) -> None:
    if executor == "spark":
        master = os.environ.get("CONVEYOR_SPARK_MASTER")
        if not master:
            engine_missing("spark", "spark engine not configured (scripts/engines/spark.sh)")
        settings = f'[executors.spark]\nmaster = "{master}"\n'
    else:  # the pool's machines have a python3 and no Conveyor: the executor sends its own
        if not (os.environ.get("CONDOR_CONFIG") and importlib.util.find_spec("htcondor2")):
            engine_missing("htcondor", "HTCondor pool not configured (scripts/engines)")
        settings = ""
    _setup(repo)
    if os.environ.get("PYTHONPATH"):  # the sources under test, for the workers' Python too
        env = {"PYTHONPATH": os.environ["PYTHONPATH"]}
        text = PIPELINE.replace("@conveyor.pipeline\n", f"@conveyor.pipeline(env={env!r})\n")
        repo.write("pipeline.py", text)
        repo.commit()
    repo.write(".conveyor/config.toml", settings)
    local = repo.run("run", "pipeline.py", "--executor", "local")
    assert local.code == 0, local.out + local.err
    expected = {s: step["outputs"] for s, step in repo.steps().items()}
    forced = repo.run("run", "pipeline.py", "--executor", executor, "--force", timeout=300)
    assert forced.code == 0, forced.out + forced.err
    assert repo.show()["executor"] == executor
    assert _ran(repo) == {"flow.make", "flow.total", "flow.report"}
    if executor == "htcondor":  # the step's log says which job, on which machine
        log = Path(repo.steps()["flow.make"]["log"]).read_text()
        assert re.search(r"conveyor: ran as HTCondor job \d+\.\d+ on \S+", log), log
    assert {s: step["outputs"] for s, step in repo.steps().items()} == expected
    back = repo.run("run", "pipeline.py", "--executor", "local")
    assert back.code == 0 and _ran(repo) == set()


BAD = {
    "untyped": (
        "import conveyor\n\n\n@conveyor.step\ndef f(n) -> int:\n    return n\n",
        "pipeline.py:4:1: step f: parameter 'n' has no type hint",
    ),
    "unserialisable": (
        "import conveyor\n\n\n@conveyor.step\ndef f(n: int) -> set[int]:\n    return {n}\n",
        "pipeline.py:4:1: step f: the return value: set[int] cannot be stored as a typed file",
    ),
    "wrong-type": (
        "import conveyor\n\n\n@conveyor.step\ndef f(n: int) -> str:\n    return str(n)\n\n\n"
        "@conveyor.step\ndef g(n: int) -> int:\n    return n\n\n\n"
        "@conveyor.pipeline\ndef p() -> None:\n    text = f(1)\n    g(text)\n",
        "pipeline.py:17:5: step g: 'n' expects int but is given the result of step f (str)",
    ),
    "cycle": (
        "import conveyor\n\n\n@conveyor.step(after=['g'])\ndef f(n: int) -> int:\n    return n\n"
        "\n\n@conveyor.step(after=['f'])\ndef g(n: int) -> int:\n    return n\n\n\n"
        "@conveyor.pipeline\ndef p() -> None:\n    f(1)\n    g(2)\n",
        "pipeline.py:14:1: the pipeline has a cycle: p.f -> p.g -> p.f",
    ),
    "raises": (
        "import conveyor\n\nLIMIT = 1 / 0\n",
        "pipeline.py:3: ZeroDivisionError: division by zero",
    ),
    "no-pipeline": ("import conveyor\n", "pipeline.py: the file defines no @conveyor.pipeline"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_misshapen_python_pipeline_is_refused_before_any_step_runs(repo: Repo, case: str) -> None:
    text, expected = BAD[case]
    repo.write("pipeline.py", text)
    repo.commit()
    for command in ("plan", "run"):
        result = repo.run(command, "pipeline.py")
        assert result.code == 2, result.out + result.err
        assert expected in result.err
        assert "Traceback" not in result.err
    assert not (repo.path / "_pyflow").exists()
