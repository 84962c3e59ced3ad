"""Built-in plugins through real runs: Slack, CircleCI and a generic webhook posting to
HTTP servers on 127.0.0.1 that check what they receive."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    """Records every request; answers ``status`` with ``reply``."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    reply: str = "ok"

    def only(self) -> Received:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            state.requests.append(
                Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
            )
            data = state.reply.encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def drone(url: str, fail: bool = False) -> str:
    return f"""\
kind: pipeline
name: ci
steps:
  - name: build
    commands:
      - {"exit 4" if fail else "echo built"}
  - name: slack
    image: plugins/slack:1.4
    settings:
      webhook:
        from_secret: slack_hook
      channel: dev
      link: https://ci.example/runs/{{run_id}}
    when:
      status: [success, failure]
  - name: downstream
    image: trigger/circleci
    settings:
      token:
        from_secret: circle_token
      base_url: {url}/circle
      slug: gh/acme/models
      branch: release
      parameters:
        model: resnet
        epochs: 3
  - name: hook
    image: webhook
    settings:
      urls: {url}/hook
      headers:
        X-Team: data
    when:
      status: [success, failure]
"""


SECRETS = {"circle_token": "cc-token"}


def secrets(server: Server) -> dict[str, str]:
    return {**SECRETS, "slack_hook": f"{server.url}/services/T1/B2/xyz"}


def test_drone_plugins_post_what_their_services_expect(repo: Repo, server: Server) -> None:
    repo.write(".drone.yml", drone(server.url))
    repo.commit()
    result = repo.run("run", env=secrets(server))
    assert result.code == 0, result.err
    run = repo.show()
    by_path = {r.path: r for r in server.requests}
    assert set(by_path) == {
        "/services/T1/B2/xyz",
        "/circle/api/v2/project/gh/acme/models/pipeline",
        "/hook",
    }

    slack = by_path["/services/T1/B2/xyz"]
    assert slack.method == "POST"
    assert slack.headers["content-type"] == "application/json"
    assert slack.body["channel"] == "dev"
    text = slack.body["text"]
    assert f"run {run['id']} succeeded in " in text
    assert f"https://ci.example/runs/{run['id']}" in text
    assert run["commit"][:12] in text

    circle = by_path["/circle/api/v2/project/gh/acme/models/pipeline"]
    assert circle.method == "POST"
    assert circle.headers["circle-token"] == "cc-token"
    assert circle.body == {"branch": "release", "parameters": {"model": "resnet", "epochs": 3}}

    hook = by_path["/hook"]
    assert hook.headers["x-team"] == "data"
    assert hook.body["run_id"] == run["id"]
    assert hook.body["status"] == "success"
    assert hook.body["commit"] == run["commit"]
    assert hook.body["pipeline"] == "ci"

    steps = repo.steps()
    assert steps["ci.slack"]["container"] == "plugin"
    assert steps["ci.slack"]["image"] == "plugins/slack:1.4"


def test_a_failed_run_is_reported_as_failure(repo: Repo, server: Server) -> None:
    repo.write(".drone.yml", drone(server.url, fail=True))
    repo.commit()
    result = repo.run("run", env=secrets(server))
    assert result.code == 1
    by_path = {r.path: r for r in server.requests}
    assert "/circle/api/v2/project/gh/acme/models/pipeline" not in by_path  # on success only
    assert " failed in " in by_path["/services/T1/B2/xyz"].body["text"]
    assert by_path["/hook"].body["status"] == "failure"


def test_a_refused_request_fails_the_step_in_one_line(repo: Repo, server: Server) -> None:
    server.status, server.reply = 403, "invalid_token"
    repo.write(".drone.yml", drone(server.url))
    repo.commit()
    result = repo.run("run", env=secrets(server))
    assert result.code == 1
    steps = repo.steps()
    assert steps["ci.slack"]["status"] == "failed"
    log = Path(steps["ci.slack"]["log"]).read_text(encoding="utf-8")
    assert log.strip() == (
        f"slack: error: {server.url} answered 403 Forbidden: invalid_token"
    )  # the webhook's secret path is not printed


def test_the_dotscience_seed_plugins_run_after_the_main_steps(repo: Repo, server: Server) -> None:
    repo.write(
        ".dotscience.yml",
        f"""\
kind: pipeline
after:
  - name: circleci
    image: dotscience/dotscience-circleci-plugin:latest
    runPolicy: on-success
    settings:
      token: your-circle-ci-token
      username: rusenask
      project: dotscience-pipeline-demo
      base_url: {server.url}
  - name: notify
    image: dotscience/dotscience-slack-plugin:latest
    pull: always
    runPolicy: always
    environment:
      SLACK_WEBHOOK: {server.url}/slack
""",
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    by_path = {r.path: r for r in server.requests}
    circle = by_path["/api/v2/project/gh/rusenask/dotscience-pipeline-demo/pipeline"]
    assert circle.headers["circle-token"] == "your-circle-ci-token"
    assert circle.body == {"branch": "main"}
    assert "succeeded" in by_path["/slack"].body["text"]


def test_a_native_step_uses_a_plugin_by_image_name(repo: Repo, server: Server) -> None:
    repo.pipeline(
        f"""\
        name: native
        jobs:
          report:
            steps:
              - id: hook
                image: webhook
                env:
                  PLUGIN_URLS: {server.url}/a,{server.url}/b
                  PLUGIN_BODY: '{{"text": "run {{run_id}} is {{status}}"}}'
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    run_id = repo.show()["id"]
    assert [r.path for r in server.requests] == ["/a", "/b"]
    assert server.requests[0].body == {"text": f"run {run_id} is success"}


def test_dotscience_notifies_a_failure_and_skips_on_success_plugins(
    repo: Repo, server: Server
) -> None:
    repo.write(
        ".dotscience.yml",
        f"""\
kind: pipeline
steps:
  - name: train
    commands:
      - exit 1
after:
  - name: circleci
    image: dotscience/dotscience-circleci-plugin:latest
    runPolicy: on-success
    settings:
      token: t
      username: u
      project: p
      base_url: {server.url}
  - name: notify
    image: dotscience/dotscience-slack-plugin:latest
    runPolicy: always
    settings:
      webhook: {server.url}/slack
      template: "{{status}} after {{duration}}: {{link}}"
""",
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 1
    run_id = repo.show()["id"]
    steps = repo.steps()
    assert steps["default.circleci"]["status"] == "skipped"
    assert steps["default.notify"]["status"] == "succeeded"
    text = server.only().body["text"]
    assert text.startswith("failure after ")
    assert text.endswith(f": conveyor show {run_id}")


def test_an_unreachable_service_fails_the_step_in_one_line(repo: Repo) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo.pipeline(
        f"""\
        name: native
        jobs:
          report:
            steps:
              - id: hook
                image: notify/slack
                env:
                  SLACK_WEBHOOK: http://127.0.0.1:{port}/services/SECRET
        """
    )
    repo.commit()
    assert repo.run("run").code == 1
    step = repo.steps()["report.hook"]
    log = Path(step["log"]).read_text(encoding="utf-8").strip()
    assert log.startswith(f"slack: error: cannot reach http://127.0.0.1:{port}: ")
    assert "SECRET" not in log
    assert len(log.splitlines()) == 1
