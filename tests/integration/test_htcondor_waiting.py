"""HTCondor jobs that wait: a job no machine can match is explained in the step's log
and error, and its queue-timeout fails it and removes it from the queue (the real pool
of scripts/engines/htcondor.sh)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo
from tests.integration.test_htcondor import _need_pool, _queued

pytestmark = pytest.mark.integration


def test_a_job_no_machine_matches_is_explained_and_its_queue_timeout_fails_it(
    repo: Repo,
) -> None:
    _need_pool()
    repo.write(".conveyor/config.toml", "[executors.htcondor]\nno_match_after = 2\n")
    repo.pipeline(
        """\
        jobs:
          big:
            resources: {memory: 500G}
            steps:
              - run: echo never
                queue-timeout: 30s
                timeout: 5s
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "htcondor", timeout=300)
    assert result.code == 1, result.out + result.err
    show = repo.show()
    step = {s["id"]: s for s in show["steps"]}["big.step-1"]
    assert step["status"] == "failed"
    assert "did not start within its queue-timeout of 30s" in step["error"]
    # the why, from the job's request against the pool's slots
    assert "no machine matches the job" in step["error"]
    assert "memory (resources.memory)" in step["error"]
    logs = repo.run("logs", "latest", "big.step-1")
    assert "no machine matches the job" in logs.out, logs.err
    assert _queued(show["id"]) == []  # removed from the queue


def test_a_job_no_machine_matches_fails_after_no_capacity_timeout(repo: Repo) -> None:
    """Without a queue-timeout the step does not wait forever either."""
    _need_pool()
    repo.write(
        ".conveyor/config.toml",
        "[executors.htcondor]\nno_match_after = 2\nno_capacity_timeout = 6\n",
    )
    repo.pipeline(
        """\
        jobs:
          big:
            resources: {cpus: 4096}
            steps:
              - run: echo never
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "htcondor", timeout=300)
    assert result.code == 1, result.out + result.err
    show = repo.show()
    step = {s["id"]: s for s in show["steps"]}["big.step-1"]
    assert step["status"] == "failed"
    assert "HTCondor had no machine for the job for" in step["error"]
    assert "(no_capacity_timeout 6s)" in step["error"]
    assert "4096 of CPUs (resources.cpus)" in step["error"]
    assert _queued(show["id"]) == []


def test_a_job_no_machine_matches_is_not_retried(repo: Repo) -> None:
    """Trying again would wait for the same missing machine: one attempt, whatever
    ``retries`` says (as when an executor has no capacity at all)."""
    _need_pool()
    repo.write(
        ".conveyor/config.toml",
        "[executors.htcondor]\nno_match_after = 2\nno_capacity_timeout = 6\n",
    )
    repo.pipeline(
        """\
        jobs:
          big:
            resources: {cpus: 4096}
            steps:
              - run: echo never
                retries: 2
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "htcondor", timeout=300)
    assert result.code == 1, result.out + result.err
    show = repo.show()
    step = {s["id"]: s for s in show["steps"]}["big.step-1"]
    assert step["status"] == "failed"
    assert "HTCondor had no machine for the job for" in step["error"]
    assert step["attempts"] == 1
    assert _queued(show["id"]) == []


def test_a_timed_out_job_keeps_its_partial_output(repo: Repo) -> None:
    _need_pool()
    repo.pipeline(
        """\
        jobs:
          slow:
            steps:
              - run: echo started-the-work; echo a-warning >&2; sleep 120
                timeout: 8s
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "htcondor", timeout=300)
    assert result.code == 1, result.out + result.err
    show = repo.show()
    step = {s["id"]: s for s in show["steps"]}["slow.step-1"]
    assert "timed out after 8s" in step["error"]
    logs = repo.run("logs", "latest", "slow.step-1")
    assert "started-the-work" in logs.out, logs.out + logs.err
    assert "a-warning" in logs.out, logs.out + logs.err
    assert _queued(show["id"]) == []


def test_show_json_says_where_each_step_ran(repo: Repo) -> None:
    """The job id and the slot it ran on (HTCondor's LastRemoteHost), per step run."""
    _need_pool()
    repo.pipeline(
        """\
        jobs:
          one:
            steps:
              - run: echo hello > hello.txt
                outputs: [hello.txt]
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "htcondor", timeout=300)
    assert result.code == 0, result.out + result.err
    step = repo.steps()["one.step-1"]
    assert step["executor"] == "htcondor"
    ran = step["ran_on"]
    assert ran["slot"].startswith("slot") and "@" in ran["slot"]
    assert ran["host"] == ran["slot"].split("@", 1)[1]
    assert ran["job"].split(".")[0].isdigit()
    logs = repo.run("logs", "latest", "one.step-1")
    assert f"ran as HTCondor job {ran['job']} on {ran['slot']}" in logs.out
    lineage = repo.run("lineage", "hello.txt", "--json").json()
    produced = lineage["produced_by"][0]
    assert (produced["executor"], produced["ran_on"]) == ("htcondor", ran)
    shown = repo.run("show", "latest")
    assert f"ran on htcondor job {ran['job']}, slot {ran['slot']}" in shown.out
