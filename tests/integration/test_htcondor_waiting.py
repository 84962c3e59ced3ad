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
