"""The unmodified ``craft-ai-sdk`` (0.74.7 and 0.72.1, each in its own environment)
against a real ``conveyor server``: a pipeline from a function with typed inputs and a
file output, run, waited for (the SDK's 307 long-poll), its outputs, inputs, logs and
executions read, then deleted; what is not served answers a Craft error naming it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.server.config import ServerConfig
from tests.integration.craft_oracle import VERSIONS, run_scenario
from tests.integration.server_support import Server, make_server

pytestmark = pytest.mark.integration


@pytest.fixture
def craft_server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=1)
    yield srv
    srv.stop()
    print(srv.logs[-6000:])  # shown when a test fails


def settings(server: Server, tmp_path: Path, who: str = "member", **more: Any) -> dict[str, Any]:
    return {
        "url": f"{server.url}/craft/demo",
        "token": server.tokens[who],
        "tmp": str(tmp_path),
        **more,
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_pipeline_from_a_function_runs_with_typed_inputs(
    craft_server: Server, tmp_path: Path, version: str
) -> None:
    given = settings(craft_server, tmp_path, steps=version == "0.72.1")
    seen = run_scenario(version, "typed", given, tmp_path)
    assert seen["created"] == "ready"
    assert seen["listed"] == ["typed"]
    assert seen["outputs"] == {
        "twice": "abab",
        "total": 4.5,  # 2.5 + the default [1, 2]'s length
        "negated": False,
        "echo": {"k": [1]},
        "report": "FILE INPUT\n",
    }
    assert seen["status"] == "Succeeded"
    assert seen["execution_inputs"]["items"] == [1, 2]
    assert seen["execution_inputs"]["doc"] == "file input\n"
    assert seen["input_doc"] == "file input\n"
    assert seen["output_total"] == 4.5
    assert seen["executions"] == [seen["execution_id"]]
    assert seen["last_execution"] == seen["execution_id"]
    assert "hello from the function: ab" in seen["logs"]
    assert seen["bad_type"]["status"] == 400
    assert "'count' expects a number" in seen["bad_type"]["message"]
    assert seen["missing"]["message"] == (
        "required inputs are missing: count (number), flag (boolean), meta (json), doc (file)"
    )
    assert seen["data_store"]["status"] == 501
    assert "Data store" in seen["data_store"]["message"]
    assert seen["deployment"]["status"] == 404  # deployments are served: none of that name
    assert "Environment variables" in seen["env_vars"]["message"]
    assert "Vector databases" in seen["vector"]["message"]
    assert seen["deleted_execution"] == {"execution_id": seen["execution_id"]}
    assert seen["gone_execution"]["status"] == 404
    assert seen["deleted"] == {"pipeline": {"name": "typed"}, "deployments": []}
    assert seen["gone"]["status"] == 404
    repo = ServerConfig(data=craft_server.data).repo_dir("demo")
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/conveyor/"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [r for r in refs if seen["execution_id"] in r]  # the deleted run's refs too
    assert not [r for r in refs if r.startswith("refs/conveyor/craft/pipelines/")]
    if version == "0.72.1":
        assert seen["step"] == "typed-step"
        assert seen["steps"] == ["typed-step"]
        assert seen["deleted_step"] == {"step_name": "typed-step"}


def test_a_failing_function_is_a_failed_execution(craft_server: Server, tmp_path: Path) -> None:
    seen = run_scenario(VERSIONS[0], "failing", settings(craft_server, tmp_path), tmp_path)
    assert seen["run"]["name"] == "ExecutionFailed"
    assert "failed" in seen["run"]["message"]
    assert seen["started"] == ["execution_id"]


def test_a_viewer_cannot_create(craft_server: Server, tmp_path: Path) -> None:
    seen = run_scenario(VERSIONS[0], "viewer", settings(craft_server, tmp_path, "viewer"), tmp_path)
    assert seen["create"]["status"] == 403
    assert "member role" in seen["create"]["message"]
    assert seen["list"] == []


def test_record_metric_value_lands_in_the_runs_metrics(
    craft_server: Server, tmp_path: Path
) -> None:
    """The function uses the real SDK (installed from its requirements into the
    pipeline's environment, built once for both pipelines that share them); its metric
    is a tracking line of the run, as ``conveyor.log_metric`` writes them."""
    given = settings(craft_server, tmp_path, requirements="craft-ai-sdk==0.74.7\n")
    seen = run_scenario(VERSIONS[0], "metric", given, tmp_path)
    with craft_server.api() as client:
        runs = [client.get(f"/runs/{seen[name]}").json() for name in ("metric", "metric-again")]
    for run in runs:
        (step,) = [s for s in run["steps"] if s["id"] == "craft.function"]
        (tracking,) = [o["path"] for o in step["outputs"] if o["path"].startswith(".conveyor/")]
        with craft_server.api() as client:
            log = client.get(f"/runs/{run['id']}/artifacts/{tracking}/log.jsonl")
        assert [json.loads(line) for line in log.text.splitlines()] == [
            {"kind": "metric", "name": "accuracy", "value": 0.75}
        ]
    built = [[s["cached"] for s in run["steps"] if s["id"] == "craft.environment"] for run in runs]
    assert built == [[False], [True]]  # one build per requirements digest
    assert [(m["pipeline_name"], m["value"]) for m in seen["metrics"]] == [
        ("metric", 0.75),
        ("metric-again", 0.75),
    ]
    assert [m["execution_id"] for m in seen["by_pipeline"]] == [seen["metric-again"]]
    assert "Metric lists" in seen["list_metrics"]["message"]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_pipeline_deployed_as_an_endpoint_is_called_with_its_token(
    craft_server: Server, tmp_path: Path, version: str
) -> None:
    """Deployments of Craft pipelines are native deployments; each call is a Craft
    execution (a run of the pipeline's execution commit) recorded as the deployment's."""
    seen = run_scenario(version, "deploy", settings(craft_server, tmp_path, "lead"), tmp_path)
    assert seen["created"] == {
        "name": "adder-ep",
        "execution_rule": "endpoint",
        "mode": "elastic",
        "status": "up",
        "is_enabled": True,
        "endpoint_url_path": "adder-ep",
    }
    assert seen["pipeline"] == "adder"
    assert seen["low_latency"]["status"] == 501
    assert "low_latency" in seen["low_latency"]["message"]
    assert seen["listed"] == [["adder-ep", "adder", "endpoint"]]
    assert seen["outputs"] == {"total": 5}
    assert seen["later"]["outputs"] == {"total": 2}
    assert seen["by_api"]["outputs"] == {"total": 10}
    assert seen["execution"] == ["adder", "adder-ep"]
    assert seen["bad_input"]["status"] == 400
    assert "'a' expects a number" in seen["bad_input"]["message"]
    assert "'c'" in seen["unknown_input"]["message"]
    assert "adding 2 3" in seen["logs"]
    assert seen["old_token"]["status"] == 401
    assert seen["new_token"]["outputs"] == {"total": 3}
    assert seen["last"] == seen["by_api"]["execution_id"]
    assert seen["disabled"] == [False, "disabled"]
    assert seen["when_disabled"]["status"] == 409
    assert seen["enabled"] == "up"
    assert seen["periodic"] == ["periodic", "* * * * * */3"]
    assert seen["periodic_inputs"] == [["a", 1], ["b", 2]]
    assert seen["scheduled"] == {"total": 3}  # a scheduled execution, with the constants
    assert seen["cron_disabled"] == "disabled"
    assert seen["refused"]["status"] == 409
    assert "adder-cron" in seen["refused"]["message"]
    assert seen["deleted_deployment"] == {"name": "adder-cron", "execution_rule": "periodic"}
    assert seen["forced"] == {
        "pipeline": {"name": "adder"},
        "deployments": [{"name": "adder-ep", "execution_rule": "endpoint"}],
    }
    assert seen["gone"]["status"] == 404
    assert seen["listed_after"] == []
    assert seen["files"] == {"upper": "AB\nAB\n", "size": 6}
    with craft_server.api() as client:
        assert client.get("/deployments").json()["deployments"] == []
