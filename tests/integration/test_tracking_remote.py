"""Metrics over the server's API: ``GET .../runs/RUN/metrics`` and ``.../params`` on a
real server's run (the metrics file, ``log_*`` lines, the run's parameters), the
project's secrets masked in names and values, and ``conveyor metrics show --remote``."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, run_ids

pytestmark = pytest.mark.integration

SECRET = "s3cret-Val-42"
PIPELINE = """\
params:
  lr: 0.25
jobs:
  train:
    steps:
      - id: fit
        secrets: {KEY: TOKEN}
        run: |
          mkdir -p out "$CONVEYOR_PROJECT_DIR/$CONVEYOR_TRACKING"
          echo '{"auc": 0.75, "lr": ${{ params.lr }}}' > out/metrics.json
          log="$CONVEYOR_PROJECT_DIR/$CONVEYOR_TRACKING/log.jsonl"
          echo '{"kind": "metric", "name": "f1", "value": 0.5}' >> "$log"
          echo "{\\"kind\\": \\"param\\", \\"name\\": \\"key\\", \\"value\\": \\"$KEY\\"}" >> "$log"
        metrics: [out/metrics.json]
"""


@pytest.fixture
def finished(repo: Repo, server: Server) -> str:
    with server.api("lead") as lead:
        assert lead.put("/secrets/TOKEN", json={"value": SECRET}).status_code == 204
    repo.pipeline(PIPELINE)
    repo.write(".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n')
    repo.commit()
    [run_id] = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)
    run = server.wait_run(run_id)
    assert run["status"] == "succeeded", run
    return run_id


def test_a_viewer_reads_a_runs_metrics_and_params(server: Server, finished: str) -> None:
    with server.api("viewer") as viewer:
        found = viewer.get(f"/runs/{finished}/metrics").json()
        params = viewer.get(f"/runs/{finished}/params").json()
        latest = viewer.get("/runs/latest/metrics").json()
    assert found["run"] == finished == latest["run"]
    assert found["metrics"] == {
        "out/metrics.json": {"auc": 0.75, "lr": 0.25},
        "log:train.fit": {"f1": 0.5},
    }
    assert params["params"]["run"] == {"lr": 0.25}
    assert SECRET not in str(found) and SECRET not in str(params)  # masked
    assert params["params"]["log:train.fit"]["key"] != ""


def test_metrics_show_remote_prints_the_servers_answer(
    repo: Repo, server: Server, finished: str
) -> None:
    env = {"CONVEYOR_TOKEN": server.tokens["viewer"]}
    shown = repo.run("metrics", "show", finished[:8], "--remote", "--json", env=env)
    assert shown.code == 0, shown.err
    assert shown.json()["metrics"]["log:train.fit"] == {"f1": 0.5}
    text = repo.run("metrics", "show", "--remote", env=env).out
    assert "out/metrics.json" in text and "0.75" in text
    unknown = repo.run("metrics", "show", "nosuchrun", "--remote", env=env)
    assert unknown.code == 2 and "Traceback" not in unknown.err


def test_the_sdk_reads_a_server_runs_metrics(server: Server, finished: str) -> None:
    import conveyor

    token = server.tokens["viewer"]
    with conveyor.Client(server.url, token=token, project="demo") as client:
        found = client.get_run(finished).tracking()
    assert found["metrics"]["log:train.fit"] == {"f1": 0.5}
    assert SECRET not in str(found)
