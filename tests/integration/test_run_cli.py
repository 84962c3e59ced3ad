"""The main user journey through the real CLI: run, cache, change, inspect."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
name: demo
params:
  factor: 2
jobs:
  prepare:
    steps:
      - name: split
        run: mkdir -p out && cp data/a.txt out/a.txt && cp data/b.txt out/b.txt
        inputs: [data/a.txt, data/b.txt]
        outputs: [out/a.txt, out/b.txt]
  count:
    matrix:
      part: [a, b]
    steps:
      - name: wc
        run: wc -l < out/${{ matrix.part }}.txt > out/${{ matrix.part }}.count
        inputs:
          - out/${{ matrix.part }}.txt
        outputs:
          - out/${{ matrix.part }}.count
  total:
    needs: [count]
    steps:
      - name: sum
        run: cat out/a.count out/b.count | awk '{s+=$1} END {print s * ${{ params.factor }}}' > out/total.txt
        inputs: [out/a.count, out/b.count]
        outputs: [out/total.txt]
"""


def _setup(repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.write("data/a.txt", "1\n2\n3\n")
    repo.write("data/b.txt", "4\n5\n")
    repo.commit("pipeline")


def test_first_run_executes_everything_and_records_outputs(repo: Repo) -> None:
    _setup(repo)
    result = repo.run("run", "-j", "2")
    assert result.code == 0, result.out + result.err
    assert (repo.path / "out/total.txt").read_text().strip() == "10"
    run = repo.show()
    assert run["status"] == "succeeded"
    assert run["dirty"] is False
    assert len(run["commit"]) == 40
    assert run["started_at"] and run["ended_at"]
    steps = {s["id"]: s for s in run["steps"]}
    assert set(steps) == {"prepare.split", "count[part=a].wc", "count[part=b].wc", "total.sum"}
    for step in steps.values():
        assert step["status"] == "succeeded"
        assert step["cached"] is False
        assert step["exit_code"] == 0
        assert len(step["fingerprint"]) == 64
    total = steps["total.sum"]["outputs"]
    assert [o["path"] for o in total] == ["out/total.txt"]
    assert len(total[0]["digest"]) == 64


def test_second_run_is_all_cache_hits(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    first = repo.show()["id"]
    result = repo.run("run")
    assert result.code == 0
    run = repo.show()
    assert run["id"] != first
    assert all(s["cached"] for s in run["steps"]), run["steps"]
    assert "4 cached" in result.out


def test_changing_one_input_reruns_exactly_downstream(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    repo.write("data/b.txt", "4\n5\n6\n")
    assert repo.run("run").code == 0
    ran = sorted(k for k, s in repo.steps().items() if not s["cached"])
    # split reads b.txt; count[a] sees an unchanged out/a.txt and is served from cache
    assert ran == ["count[part=b].wc", "prepare.split", "total.sum"]
    assert (repo.path / "out/total.txt").read_text().strip() == "12"


def test_cache_hit_restores_deleted_outputs(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    (repo.path / "out/total.txt").unlink()
    assert repo.run("run").code == 0
    assert all(s["cached"] for s in repo.steps().values())
    assert (repo.path / "out/total.txt").read_text().strip() == "10"


def test_param_changes_only_steps_that_use_it(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    assert repo.run("run", "--param", "factor=3").code == 0
    ran = sorted(k for k, s in repo.steps().items() if not s["cached"])
    assert ran == ["total.sum"]
    assert (repo.path / "out/total.txt").read_text().strip() == "15"
    assert repo.show()["params"] == {"factor": 3}


def test_why_names_the_changed_input(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    repo.write("data/a.txt", "changed\n")
    assert repo.run("run").code == 0
    why = repo.run("why", "prepare.split", "--json")
    assert why.code == 0, why.err
    data = why.json()
    assert data["verdict"] == "miss"
    assert any("input data/a.txt changed" in r for r in data["reasons"]), data
    hit = repo.run("why", "count[part=b].wc").out
    assert "cache hit" in hit


def test_force_reruns_everything_and_why_says_so(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    assert repo.run("run", "--force").code == 0
    assert not any(s["cached"] for s in repo.steps().values())
    assert "forced" in repo.run("why", "total.sum").out


def test_only_runs_selected_steps_and_their_upstream(repo: Repo) -> None:
    _setup(repo)
    result = repo.run("run", "--only", "count[part=a].wc")
    assert result.code == 0, result.err
    assert set(repo.steps()) == {"prepare.split", "count[part=a].wc"}


def test_failed_step_exit_code_failure_policy_and_log_tail(repo: Repo) -> None:
    repo.pipeline(
        """\
        jobs:
          main:
            steps:
              - id: ok
                run: echo fine
              - id: boom
                run: echo "about to fail"; exit 3
              - id: after
                run: echo never
              - id: cleanup
                if: failure()
                run: echo cleaning up
              - id: always
                if: always()
                run: echo always
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 1
    assert "about to fail" in result.out  # the failed step's log tail is shown
    steps = repo.steps()
    assert steps["main.boom"]["status"] == "failed"
    assert steps["main.boom"]["exit_code"] == 3
    assert steps["main.after"]["status"] == "skipped"
    assert steps["main.cleanup"]["status"] == "succeeded"
    assert steps["main.always"]["status"] == "succeeded"
    assert repo.show()["status"] == "failed"
    logs = repo.run("logs", "latest", "main.boom")
    assert logs.code == 0 and "about to fail" in logs.out


def test_timeout_and_retries(repo: Repo) -> None:
    repo.pipeline(
        """\
        jobs:
          main:
            steps:
              - id: slow
                run: sleep 30
                timeout: 0.5s
              - id: flaky
                if: always()
                retries: 2
                run: |
                  n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
                  test $n -ge 3
        """
    )
    repo.commit()
    started = time.monotonic()
    result = repo.run("run")
    assert time.monotonic() - started < 20
    assert result.code == 1
    steps = repo.steps()
    assert steps["main.slow"]["status"] == "failed"
    assert "timed out" in steps["main.slow"]["error"]
    assert steps["main.flaky"]["status"] == "succeeded"
    assert steps["main.flaky"]["attempts"] == 3
    assert (repo.path / "count").read_text().strip() == "3"


def test_parallel_steps_overlap(repo: Repo) -> None:
    jobs = "\n".join(
        f"  j{i}:\n    steps:\n      - run: date +%s.%N > t{i}.start; sleep 0.6; date +%s.%N > t{i}.end"
        for i in range(2)
    )
    repo.pipeline(f"jobs:\n{jobs}\n")
    repo.commit()
    assert repo.run("run", "-j", "2").code == 0
    start = [float((repo.path / f"t{i}.start").read_text()) for i in range(2)]
    end = [float((repo.path / f"t{i}.end").read_text()) for i in range(2)]
    assert max(start) < min(end), "with -j 2 the two steps must run at the same time"


def test_runs_list_prefix_and_latest(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    assert repo.run("run").code == 0
    listed = repo.run("runs", "--json").json()
    assert len(listed) == 2
    assert {"id", "status", "commit", "dirty", "started_at", "ended_at"} <= set(listed[0])
    assert "steps" not in listed[0]
    newest = listed[0]["id"]
    assert repo.show(newest[:5])["id"] == newest
    assert repo.show("latest")["id"] == newest
    missing = repo.run("show", "zzzz")
    assert missing.code == 2 and "no run matches" in missing.err


def test_dirty_flag_and_diff_digest(repo: Repo) -> None:
    _setup(repo)
    repo.write("data/a.txt", "uncommitted\n")
    assert repo.run("run").code == 0
    run = repo.show()
    assert run["dirty"] is True
    assert len(run["diff_digest"]) == 64


def test_lineage_names_producer_inputs_and_consumers(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    data = repo.run("lineage", "out/a.count", "--json").json()
    producer = data["produced_by"][0]
    assert producer["step"] == "count[part=a].wc"
    assert producer["commit"] == repo.show()["commit"]
    assert [i["path"] for i in producer["inputs"]] == ["out/a.txt"]
    assert any(c["step"] == "total.sum" for c in data["consumed_by"])
    by_digest = repo.run("lineage", data["digest"][:16], "--json").json()
    assert by_digest["digest"] == data["digest"]
    unknown = repo.run("lineage", "data/nothing.txt")
    assert unknown.code == 2


def test_fetch_checks_out_outputs_elsewhere(repo: Repo, tmp_path: Path) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    dest = tmp_path / "fetched"
    result = repo.run("fetch", "latest", "--to", str(dest))
    assert result.code == 0, result.err
    assert (dest / "out/total.txt").read_text().strip() == "10"
    assert (dest / "out/a.count").exists()


def test_gc_drops_only_unreferenced_blobs(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    store = repo.path / ".conveyor/store/objects"
    stray = store / "ab" / ("c" * 62)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"orphan")
    before = sum(1 for _ in store.rglob("*") if _.is_file())
    result = repo.run("gc", "--json")
    assert result.code == 0, result.err
    assert result.json()["removed"] == 1
    assert not stray.exists()
    assert sum(1 for _ in store.rglob("*") if _.is_file()) == before - 1
    (repo.path / "out").rename(repo.path / "gone")
    assert repo.run("run").code == 0  # cache hits restore from the kept blobs
    assert all(s["cached"] for s in repo.steps().values())


def test_rerun_reproduces_outputs_from_the_commit(repo: Repo) -> None:
    _setup(repo)
    assert repo.run("run").code == 0
    original = repo.show()["id"]
    repo.write("data/a.txt", "later change\n")  # the workspace moves on; the commit does not
    result = repo.run("rerun", original, "--json")
    assert result.code == 0, result.out + result.err
    data = result.json()
    assert data["reproduced"] is True
    assert data["original"] == original
    assert len(data["outputs"]) == 5 and all(o["match"] for o in data["outputs"])


def test_rerun_reports_a_mismatch(repo: Repo) -> None:
    repo.pipeline(
        """\
        jobs:
          main:
            steps:
              - run: date +%s%N > stamp.txt
                outputs: [stamp.txt]
        """
    )
    repo.commit()
    assert repo.run("run").code == 0
    result = repo.run("rerun", "latest")
    assert result.code == 1
    assert "NOT reproduced" in result.out


def test_init_writes_a_pipeline_that_runs(repo: Repo) -> None:
    result = repo.run("init")
    assert result.code == 0, result.err
    assert (repo.path / ".conveyor/config.toml").exists()
    assert repo.run("validate").code == 0
    repo.commit("init")
    run = repo.run("run")
    assert run.code == 0, run.out + run.err
    assert (repo.path / "results/table.txt").exists()
    again = repo.run("init")
    assert again.code == 2 and "--force" in again.err


def test_plan_json_and_schema(repo: Repo) -> None:
    _setup(repo)
    plan = repo.run("plan", "--json").json()
    assert plan["steps"][0]["id"] == "prepare.split"
    assert {"step": "count[part=a].wc", "needs": "prepare.split", "path": "out/a.txt"} in plan[
        "inferred_needs"
    ]
    schema = repo.run("schema").json()
    assert "jobs" in schema["properties"]
    assert {"uses", "with", "run"} <= set(schema["$defs"]["StepSpec"]["properties"])


def test_project_found_from_a_subdirectory(repo: Repo) -> None:
    _setup(repo)
    sub = repo.path / "data"
    assert repo.run("-C", str(sub), "run").code == 0
    assert os.path.exists(repo.path / ".conveyor/conveyor.db")


def test_big_inputs_and_outputs_go_through_the_file_work_pool(repo: Repo) -> None:
    # above the size the runner hashes and stores in its loop: real processes, real pool
    repo.pipeline(
        """\
        name: big
        jobs:
          copy:
            steps:
              - run: mkdir -p out && cp data/big.bin out/big.bin && cp -r data/tree out/tree
                inputs: [data/big.bin, data/tree]
                outputs: [out/big.bin, out/tree]
          small:
            steps:
              - run: echo small > small.txt
                outputs: [small.txt]
          use:
            needs: [copy, small]
            steps:
              - run: wc -c < out/big.bin > size.txt
                inputs: [out/big.bin]
                outputs: [size.txt]
        """
    )
    big = os.urandom(3 * 1024 * 1024)
    (repo.path / "data" / "tree").mkdir(parents=True)
    (repo.path / "data" / "big.bin").write_bytes(big)
    (repo.path / "data" / "tree" / "t.txt").write_text("tree\n")
    repo.commit("big pipeline")
    result = repo.run("run", "-j", "2")
    assert result.code == 0, result.out + result.err
    assert (repo.path / "size.txt").read_text().strip() == str(len(big))
    steps = repo.steps()
    assert all(s["status"] == "succeeded" for s in steps.values()), steps
    (repo.path / "out" / "big.bin").unlink()
    assert repo.run("run", "-j", "2").code == 0
    assert all(s["cached"] for s in repo.steps().values())
    assert (repo.path / "out" / "big.bin").read_bytes() == big
