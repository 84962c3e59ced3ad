"""Datums packed into Spark tasks (``datums_per_task``), against the real cluster of
scripts/engines/spark.sh: the same per-datum results and records as one task per datum,
and a failing datum reported alone while its task-mates' results stand."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

COUNT = 8
PATIENCE = 900  # seconds a run may take on a loaded machine: never a speed assertion
PIPELINE = """\
jobs:
  datum:
    steps:
      - id: square
        datums: data/*.txt
        run: >-
          n=$(cat ${{ datum.path }}) && echo "datum $n" &&
          if [ "$n" = "$FAIL_AT" ]; then echo "no good: $n"; exit 3; fi &&
          mkdir -p out && echo $((n * n)) > out/${{ datum.stem }}.txt
        outputs: ["out/${{ datum.stem }}.txt"]
        env:
          FAIL_AT: "%s"
"""


@pytest.fixture
def master() -> str:
    found = os.environ.get("CONVEYOR_SPARK_MASTER")
    if not found:
        engine_missing("spark", "spark engine not configured; start scripts/engines/spark.sh up")
    return str(found)


def _project(repo: Repo, master: str, fail_at: str) -> None:
    for i in range(1, COUNT + 1):
        repo.write(f"data/d{i}.txt", f"{i}\n")
    repo.write(".gitignore", "out/\n")
    repo.pipeline(PIPELINE % fail_at)
    repo.commit("datums")
    _pack(repo, master, 1)


def _pack(repo: Repo, master: str, per_task: int) -> None:
    repo.write(
        ".conveyor/config.toml",
        f'[executors.spark]\nmaster = "{master}"\ndatums_per_task = {per_task}\n'
        "start_timeout = 180\n",  # a loaded machine: the context start is not under test
    )


def _records(repo: Repo) -> dict[str, dict[str, Any]]:
    """What each datum's step run recorded that packing must not change."""
    found = {}
    for name, step in repo.steps().items():
        found[name] = {
            "status": step["status"],
            "exit_code": step.get("exit_code"),
            "fingerprint": step["fingerprint"],  # its inputs' digests too
            "error": step["error"],
            "outputs": {o["path"]: o["digest"] for o in step["outputs"]},
            "log": Path(step["log"]).read_text(),
        }
    return found


def _tasks(repo: Repo) -> dict[str, str]:
    """The Spark task each datum ran in (from its ``ran_on``)."""
    return {name: json.dumps(s["ran_on"]["task"]) for name, s in repo.steps().items()}


def _packs(repo: Repo) -> list[list[str]]:
    """The datums of each Spark task. Which datums share one depends on how many were
    ready at each turn of the runner (a batch is cut into packs), so tests check sizes."""
    found: dict[str, list[str]] = {}
    for name, task in sorted(_tasks(repo).items()):
        found.setdefault(task, []).append(name)
    return list(found.values())


def test_packed_datums_record_what_one_task_per_datum_does(repo: Repo, master: str) -> None:
    _project(repo, master, "none")
    single = repo.run("run", "--executor", "spark", timeout=PATIENCE)
    assert single.code == 0, single.out + single.err
    expected = _records(repo)
    assert len(expected) == COUNT and len(set(_tasks(repo).values())) == COUNT
    assert (repo.path / "out" / "d7.txt").read_text() == "49\n"

    _pack(repo, master, 4)
    packed = repo.run("run", "--executor", "spark", "--force", timeout=PATIENCE)
    assert packed.code == 0, packed.out + packed.err
    assert _records(repo) == expected
    assert not any(s["cached"] for s in repo.steps().values())
    sizes = sorted(len(pack) for pack in _packs(repo))
    assert sizes[-1] > 1 and sizes[-1] <= 4, sizes  # really packed, never more than 4
    assert "datum 3\n" in Path(repo.steps()["datum.square[d3.txt]"]["log"]).read_text()


def test_a_failing_datum_in_a_pack_is_reported_alone(repo: Repo, master: str) -> None:
    _project(repo, master, "5")
    _pack(repo, master, 4)  # packs d1-d4 and d5-d8: d5 fails first in its pack
    result = repo.run("run", "--executor", "spark", timeout=PATIENCE)
    assert result.code == 1, result.out + result.err
    steps = repo.steps()
    failed = sorted(name for name, s in steps.items() if s["status"] != "succeeded")
    assert failed == ["datum.square[d5.txt]"], steps
    assert steps["datum.square[d5.txt]"]["exit_code"] == 3
    assert "no good: 5" in Path(steps["datum.square[d5.txt]"]["log"]).read_text()
    for i in (6, 7, 8):  # its task-mates ran after it, with their own results
        assert (repo.path / "out" / f"d{i}.txt").read_text() == f"{i * i}\n"
        assert "no good" not in Path(steps[f"datum.square[d{i}.txt]"]["log"]).read_text()
    mates = next(p for p in _packs(repo) if "datum.square[d5.txt]" in p)
    assert len(mates) > 1, _packs(repo)  # it shared its task, and only it failed


# -- python: datums in one reused child per pack -----------------------------------------
PYTHON_PIPELINE = """\
jobs:
  datum:%s
    steps:
      - id: step
        python: fn.pack:step
        datums: data/*.txt
        result: out/${{ datum.stem }}.json
        timeout: 20s
        env:
          MODE: "%s"
"""
PACK_MODULE = """\
import os, time

SEEN = []  # module state: carried from one datum to the next in one child

def step(path):
    n = int(open(path).read())
    SEEN.append(n)
    print(f"datum {n} after {SEEN[:-1]}", flush=True)
    if n == 2 and os.environ["MODE"] == "crash":
        os._exit(7)
    if n == 2 and os.environ["MODE"] == "sleep":
        time.sleep(120)
    return {"n": n, "seen": SEEN}
"""
PY_COUNT = 4


def _python_project(repo: Repo, master: str, mode: str, isolate: bool = False) -> None:
    for i in range(1, PY_COUNT + 1):
        repo.write(f"data/d{i}.txt", f"{i}\n")
    repo.write("fn/__init__.py", "")
    repo.write("fn/pack.py", PACK_MODULE)
    repo.write(".gitignore", "out/\n")
    table = "\n    spark:\n      isolate: true" if isolate else ""
    repo.pipeline(PYTHON_PIPELINE % (table, mode))
    repo.commit("python datums")
    _pack(repo, master, PY_COUNT)


def _seen(repo: Repo) -> dict[int, list[int]]:
    """What each datum that succeeded saw of its child's module state."""
    found = {}
    for i in range(1, PY_COUNT + 1):
        path = repo.path / "out" / f"d{i}.json"
        if path.exists():
            found[i] = json.loads(path.read_text())["seen"]
    return found


def _name(i: int) -> str:
    return f"datum.step[d{i}.txt]"


def test_python_datums_of_a_pack_share_one_child(repo: Repo, master: str) -> None:
    _python_project(repo, master, "plain")
    result = repo.run("run", "--executor", "spark", timeout=PATIENCE)
    assert result.code == 0, result.out + result.err
    tasks, seen = _tasks(repo), _seen(repo)
    for i, values in seen.items():  # what came before it in its own task, then itself
        assert values[-1] == i
        assert all(tasks[_name(j)] == tasks[_name(i)] for j in values), (seen, tasks)
        log = Path(repo.steps()[_name(i)]["log"]).read_text()
        assert log == f"datum {i} after {values[:-1]}\n"  # its own output only
    packs = _packs(repo)
    assert max(len(p) for p in packs) > 1, packs
    assert max(len(v) for v in seen.values()) == max(len(p) for p in packs), (seen, packs)


def test_isolate_runs_each_python_datum_in_its_own_fork(repo: Repo, master: str) -> None:
    _python_project(repo, master, "plain", isolate=True)
    result = repo.run("run", "--executor", "spark", timeout=PATIENCE)
    assert result.code == 0, result.out + result.err
    assert max(len(p) for p in _packs(repo)) > 1, _packs(repo)
    assert _seen(repo) == {i: [i] for i in range(1, PY_COUNT + 1)}


def test_a_datum_that_crashes_its_child_fails_alone(repo: Repo, master: str) -> None:
    _python_project(repo, master, "crash")
    result = repo.run("run", "--executor", "spark", timeout=PATIENCE)
    assert result.code == 1, result.out + result.err
    steps = repo.steps()
    assert [n for n, s in steps.items() if s["status"] != "succeeded"] == [_name(2)], steps
    assert steps[_name(2)]["exit_code"] == 7
    assert "datum 2 after" in Path(steps[_name(2)]["log"]).read_text()
    seen = _seen(repo)
    assert sorted(seen) == [1, 3, 4]
    assert all(2 not in values for values in seen.values())  # later datums: a fresh child
    tasks = _tasks(repo)
    assert any(tasks[_name(j)] == tasks[_name(2)] for j in (3, 4)), tasks  # d3 or d4 after it


def test_a_datum_that_times_out_in_a_pack_fails_alone(repo: Repo, master: str) -> None:
    _python_project(repo, master, "sleep")
    result = repo.run("run", "--executor", "spark", timeout=PATIENCE)
    assert result.code == 1, result.out + result.err
    steps = repo.steps()
    assert [n for n, s in steps.items() if s["status"] != "succeeded"] == [_name(2)], steps
    assert "timed out" in (steps[_name(2)]["error"] or ""), steps[_name(2)]
    assert "datum 2 after" in Path(steps[_name(2)]["log"]).read_text()
    seen = _seen(repo)
    assert sorted(seen) == [1, 3, 4]
    assert all(2 not in values for values in seen.values())
