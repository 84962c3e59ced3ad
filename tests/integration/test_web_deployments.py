"""The deployments pages on a real server: the list (kind, mode, pipeline, commit,
enabled, last call), a deployment's executions (caller, status, duration, inputs,
outputs, logs, the run of an elastic call), read-only for viewers, a lead's enable,
disable and rotate forms (the new token shown once, the old one stops), no token on
any page, and values from calls escaped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, make_server
from tests.integration.test_deployments import call, create, push
from tests.integration.web_support import csrf_of, web_client

pytestmark = pytest.mark.integration
P = "/ui/p/demo"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=1)
    yield srv
    srv.stop()


def test_the_pages_show_deployments_and_executions(repo: Repo, server: Server) -> None:
    commit = push(repo, server, 2)
    token = create(server, "double", "elastic")["token"]
    inputs = [{"name": "x", "type": "integer"}, {"name": "note", "type": "string"}]
    with server.api("lead") as lead:
        made = lead.post("/deployments", json={"name": "idle", "settings": {"inputs": inputs}})
        assert made.status_code == 201, made.text
    answer = call(server, "double", {"x": 3})
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["run_id"]
    assert call(server, "idle", {"x": 1, "note": XSS}).status_code in (200, 500)
    with web_client(server, "viewer") as viewer:
        listed = viewer.get(f"{P}/deployments")
        page = viewer.get(f"{P}/deployments/double")
        idle = viewer.get(f"{P}/deployments/idle").text
        runs = viewer.get(P).text
    assert listed.status_code == 200 and page.status_code == 200
    assert f'href="{P}/deployments"' in runs
    for name in ("double", "idle"):
        assert f'href="{P}/deployments/{name}"' in listed.text
    assert commit[:12] in listed.text and "elastic" in listed.text and "(follows)" in listed.text
    assert "succeeded" in listed.text and "never" not in listed.text
    assert f'href="{P}/runs/{run_id}"' in page.text  # the elastic call's run
    assert "member" in page.text and "{&#34;x&#34;: 3}" in page.text
    assert "predicting 3" in page.text  # its logs
    assert XSS not in idle and "&lt;script&gt;alert(1)&lt;/script&gt;" in idle
    for html in (listed.text, page.text, idle):
        assert token not in html and "/disable" not in html and "/token" not in html


def test_a_lead_disables_enables_and_rotates_from_the_page(repo: Repo, server: Server) -> None:
    push(repo, server, 2)
    old = create(server, "double", "elastic")["token"]
    with web_client(server, "lead") as lead:
        page = lead.get(f"{P}/deployments/double").text
        csrf = csrf_of(page)
        assert f'action="{P}/deployments/double/disable"' in page and old not in page
        assert lead.post(f"{P}/deployments/double/disable", data={}).status_code == 403
        off = lead.post(f"{P}/deployments/double/disable", data={"csrf": csrf})
        assert off.status_code == 303, off.text
        assert "disabled" in lead.get(off.headers["location"]).text
        assert call(server, "double", {"x": 1}).status_code == 409
        on = lead.post(f"{P}/deployments/double/enable", data={"csrf": csrf})
        assert on.status_code == 303, on.text
        rotated = lead.post(f"{P}/deployments/double/token", data={"csrf": csrf})
        assert rotated.status_code == 200, rotated.text
        again = lead.get(f"{P}/deployments/double").text
    fresh = rotated.text.split('<code id="new-token">')[1].split("</code>")[0]
    assert fresh and fresh != old and fresh not in again  # shown once
    assert rotated.headers["cache-control"] == "no-store"
    assert call(server, "double", {"x": 1}, token=old).status_code == 401
    assert call(server, "double", {"x": 1}, token=fresh).status_code == 200
