"""The web pages against a real server: every page and fragment refuses the callers the
API refuses (the route-by-caller matrix, checked against the pages' own route list),
forms need the session's CSRF token and a same-site origin, values from runs and logs
are escaped, and every response carries a CSP without unsafe inline scripts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from blake3 import blake3

from tests.integration.server_support import ROLES, Server, git, make_server
from tests.integration.web_support import csrf_of, web_client

pytestmark = pytest.mark.integration

XSS = "<script>alert(1)</script>"
PIPELINE = """\
params:
  rows: 3
jobs:
  a:
    steps:
      - id: evil
        name: "<script>alert(1)</script>"
        run: |
          printf '\\033[1;31mred\\033[0m <img src=x onerror=alert(2)> & done\\n'
          echo '<script>alert(3)</script>' > report.html
        outputs: [report.html]
      - id: files
        run: |
          mkdir -p out/deep
          printf '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(4)"><script>alert(5)</script></svg>' > out/plot.svg
          printf 'name,note\\n<script>alert(6)</script>,"<b>x</b>"\\n' > out/cells.csv
          awk 'BEGIN { print "x,y,z"; for (i = 0; i < 200000; i++) print "a,<i>b</i>,c" }' > out/deep/huge.csv
          awk 'BEGIN { printf "["; for (i = 0; i < 600000; i++) printf "1,"; print "1]" }' > out/big.json
          printf '%s\\n' '<?xml version="1.0"?>' '<!DOCTYPE lolz [<!ENTITY lol "lol">' \\
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' \\
            '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">' \\
            ']><testsuite name="laughs"><testcase name="&lol3;"/></testsuite>' > out/laughs.xml
          echo 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==' | base64 -d > out/dot.png
          echo 'rows ${{ params.rows }}' > out/rows.txt
          printf '%s\\n' '<testsuites><testsuite name="unit">' \\
            '<testcase classname="t" name="&lt;ok&gt;"/>' \\
            '<testcase classname="t" name="bad"><failure message="&lt;img src=x onerror=alert(7)&gt;"/></testcase>' \\
            '</testsuite></testsuites>' > out/junit.xml
          printf '# Notes\\n\\n<script>alert(8)</script>\\n\\n[click](javascript:alert(9))\\n' > out/notes.md
          printf '%s' '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Notebook notes <script>alert(11)</script>"}, {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "1", "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/html": "<b>x</b><script>alert(12)</script><img src=x onerror=alert(13)>"}}]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}' > out/nb.ipynb
        outputs: [out]
      - id: after
        needs: [evil]
        run: |
          echo "after $TOKEN"
          printf 'name,value\\ntoken,%s\\n' "$TOKEN" > leak.csv
          printf '<p>%s</p>' "$TOKEN" > leak.html
        outputs: [leak.csv, leak.html]
        secrets: {TOKEN: API_TOKEN}
"""
SECRET = "s3cret-page-value-4711"
SUBJECT = "Train <em>faster</em> & better"
P = "/ui/p/demo"
RUN = "RUN"  # the finished run, filled in by each test
REPORT = blake3(b"<script>alert(3)</script>\n").hexdigest()  # report.html's digest
# (method, path, lowest role allowed); "user": any signed-in caller
PAGES: list[tuple[str, str, str]] = [
    ("GET", "/ui/projects", "user"),
    ("GET", P, "viewer"),
    ("GET", f"{P}/runs/{RUN}", "viewer"),
    ("GET", f"{P}/runs/{RUN}/live", "viewer"),
    ("GET", f"{P}/runs/{RUN}/steps/a.evil", "viewer"),
    ("GET", f"{P}/runs/{RUN}/steps/a.evil/log", "viewer"),
    ("GET", f"{P}/runs/{RUN}/artifacts/report.html", "viewer"),
    ("GET", f"{P}/runs/{RUN}/files", "viewer"),
    ("GET", f"{P}/runs/{RUN}/preview/report.html", "viewer"),
    ("GET", f"{P}/runs/{RUN}/raw/report.html", "viewer"),
    ("GET", f"{P}/compare", "viewer"),
    ("GET", f"{P}/lineage?digest={REPORT}&path=report.html", "viewer"),
    ("GET", f"{P}/metrics", "viewer"),
    ("GET", f"{P}/datasets", "viewer"),
    ("GET", f"{P}/datasets/images", "viewer"),
    ("GET", f"{P}/datasets/images/diff?from=master~1&to=master", "viewer"),
    ("GET", f"{P}/datasets/images/files/report.html", "viewer"),
    ("POST", f"{P}/runs/{RUN}/cancel", "member"),
    ("POST", f"{P}/runs/{RUN}/rerun", "member"),
    ("POST", "/ui/signout", "user"),
    ("GET", f"{P}/settings", "lead"),
    ("POST", f"{P}/settings", "lead"),
    ("POST", f"{P}/settings/executors", "lead"),
    ("POST", f"{P}/settings/retention", "lead"),
    ("POST", f"{P}/settings/ci", "lead"),
    ("POST", f"{P}/members", "lead"),
    ("POST", f"{P}/members/nobody/remove", "lead"),
    ("POST", f"{P}/secrets", "lead"),
    ("POST", f"{P}/secrets/NOPE/remove", "lead"),
    ("POST", f"{P}/schedules", "lead"),
    ("POST", f"{P}/schedules/999999/remove", "lead"),
    ("GET", f"{P}/deployments", "viewer"),
    ("GET", f"{P}/deployments/svc", "viewer"),
    ("POST", f"{P}/deployments/svc/disable", "lead"),
    ("POST", f"{P}/deployments/svc/enable", "lead"),
    ("POST", f"{P}/deployments/svc/token", "lead"),
]
SERVER_ONLY = {p for _m, p, _n in PAGES if "/deployments" in p}
"""Pages ``conveyor ui`` does not serve (a laptop has no deployments)."""
OPEN = {("GET", "/ui"), ("GET", "/ui/"), ("GET", "/ui/signin"), ("POST", "/ui/signin")}
CALLERS = ("anonymous", "forged-cookie", "outsider", *ROLES, "admin")


def allowed(caller: str, needed: str) -> bool:
    if caller in ("anonymous", "forged-cookie"):
        return False
    if needed == "user" or caller == "admin":
        return True
    if caller == "outsider":
        return False
    return ROLES.index(caller) >= ROLES.index(needed)


def _commit(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "conveyor.yml").write_text(PIPELINE)
    git(path, "add", "-A")
    git(path, "-c", "user.name=Eve & Co", "-c", "user.email=t@e", "commit", "-qm", SUBJECT)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with one worker and the pipeline above on ``main``."""
    tmp = tmp_path_factory.mktemp("web")
    srv = make_server(tmp, None)
    work = _commit(tmp / "work")
    git(work, "push", "-q", str(srv.data / "projects/demo/repo.git"), "main")
    srv.start(workers=1)
    with srv.api("lead") as lead:
        assert lead.put("/secrets/API_TOKEN", json={"value": SECRET}).status_code == 204
        assert lead.post("/datasets", json={"name": "images"}).status_code == 201
        for body in (b"<script>alert(10)</script>", b"second"):
            put = lead.put("/datasets/images/files/report.html", content=body)
            assert put.status_code == 201, put.text
        made = lead.post("/deployments", json={"name": "svc"})
        assert made.status_code == 201, made.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def run_id(server: Server) -> str:
    """A finished run of the pipeline above."""
    with server.api("member") as member:
        found = str(member.post("/runs", json={"ref": "main"}).json()["id"])
    assert server.wait_run(found)["status"] == "succeeded"
    return found


def _client(server: Server, caller: str) -> httpx.Client:
    if caller == "anonymous":
        return web_client(server, None)
    if caller == "forged-cookie":
        client = web_client(server, None)
        client.cookies.set("conveyor_session", "gAAAAABforged-value")
        return client
    return web_client(server, caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "needed"), PAGES)
def test_every_page_refuses_whom_it_must(
    server: Server, run_id: str, method: str, path: str, needed: str, caller: str
) -> None:
    path = path.replace(RUN, run_id)
    with _client(server, caller) as client:
        data = None
        if method == "POST" and caller not in ("anonymous", "forged-cookie"):
            data = {"csrf": csrf_of(client.get("/ui/projects").text)}
        response = client.request(method, path, data=data)
    if caller in ("anonymous", "forged-cookie"):
        if method == "GET" and not path.endswith(("/live", "/log")):
            assert response.status_code == 303, response.text
            assert response.headers["location"].startswith("/ui/signin?next=")
        else:
            assert response.status_code == 401, response.text
    elif not allowed(caller, needed):
        assert response.status_code == 403, response.text
    else:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_the_matrix_covers_every_page() -> None:
    from conveyor.server.web import deploys, lead
    from conveyor.server.web.pages import routers

    declared = {(m, p.split("?")[0]) for m, p, _ in PAGES} | OPEN
    concrete = {
        (
            method,
            route.path.replace("{project}", "demo")
            .replace("{run_id}", RUN)
            .replace("{path:path}", "report.html")
            .replace("{step_id}", "a.evil")
            .replace("{dataset}", "images")
            .replace("{user_name}", "nobody")
            .replace("{name}", "NOPE")
            .replace("{schedule_id}", "999999")
            .replace("{deployment}", "svc"),
        )
        for router in [*routers(), lead.router, deploys.router]
        for route in router.routes
        for method in getattr(route, "methods", ())
    }
    assert concrete == declared


def test_an_unknown_project_is_not_found(server: Server) -> None:
    with web_client(server, "viewer") as client:
        assert client.get("/ui/p/nope").status_code == 404


def test_a_form_without_the_csrf_token_is_refused(server: Server, run_id: str) -> None:
    run = run_id
    with web_client(server, "lead") as client:
        token = csrf_of(client.get(f"{P}/runs/{run}").text)
        for data in ({}, {"csrf": ""}, {"csrf": "x" * 32}):
            answer = client.post(f"{P}/runs/{run}/rerun", data=data)
            assert answer.status_code == 403, answer.text
            assert "did not come from this site" in answer.text
        foreign = client.post(
            f"{P}/runs/{run}/rerun", data={"csrf": token}, headers={"Origin": "http://evil.test"}
        )
        assert foreign.status_code == 403, foreign.text
        assert "another site" in foreign.text
        good = client.post(f"{P}/runs/{run}/rerun", data={"csrf": token})
        assert good.status_code == 303, good.text
        new_run = good.headers["location"].rsplit("/", 1)[1]
    assert new_run != run
    server.wait_run(new_run)


def test_another_sessions_csrf_token_is_refused(server: Server, run_id: str) -> None:
    run = run_id
    with web_client(server, "lead") as mine, web_client(server, "lead") as theirs:
        token = csrf_of(theirs.get("/ui/projects").text)
        assert mine.post(f"{P}/runs/{run}/rerun", data={"csrf": token}).status_code == 403


def test_a_viewer_sees_no_control_and_a_member_does(server: Server, run_id: str) -> None:
    run = run_id
    with web_client(server, "viewer") as viewer:
        page = viewer.get(f"{P}/runs/{run}").text
    assert "/rerun" not in page and "/cancel" not in page
    with web_client(server, "member") as member:
        page = member.get(f"{P}/runs/{run}").text
    assert f'action="{P}/runs/{run}/rerun"' in page


def test_values_from_runs_and_logs_are_escaped(server: Server, run_id: str) -> None:
    run = run_id
    with web_client(server, "viewer") as client:
        run_page = client.get(f"{P}/runs/{run}").text
        log = client.get(f"{P}/runs/{run}/steps/a.evil/log").text
    assert XSS not in run_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run_page
    assert "<img" not in log and "&lt;img src=x onerror=alert(2)&gt;" in log
    assert '<span class="ansi-red ansi-bold">red</span>' in log
    assert "&amp; done" in log
    with web_client(server, "viewer") as client:
        runs_page = client.get(P).text
    for page in (runs_page, run_page):  # the commit's subject and author, as text
        assert "Train &lt;em&gt;faster&lt;/em&gt; &amp; better" in page
        assert "Eve &amp; Co" in page and "Eve & Co" not in page


def test_a_secret_in_a_log_is_masked_on_the_page(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        log = client.get(f"{P}/runs/{run_id}/steps/a.after/log").text
    assert "after " in log and SECRET not in log and "***" in log


def test_pages_carry_a_csp_and_no_inline_script_without_its_nonce(
    server: Server, run_id: str
) -> None:
    run = run_id
    with web_client(server, "member") as client:
        pages = [
            client.get(path)
            for path in (
                "/ui/signin",
                "/ui/projects",
                P,
                f"{P}/runs/{run}",
                f"{P}/runs/{run}/steps/a.evil",
                "/docs",
            )
        ]
    for page in pages:
        assert page.status_code == 200, page.text
        policy = page.headers["content-security-policy"]
        assert (
            "frame-ancestors 'none'" in policy
            and "'unsafe-inline'" not in policy.split("style-src")[0]
        )
        assert page.headers["x-frame-options"] == "DENY"
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce
        for tag in re.findall(r"<script[^>]*>", page.text):
            assert "src=" in tag or f'nonce="{nonce.group(1)}"' in tag, tag
        assert "cdn" not in page.text.lower()
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert url.startswith(("/", "#", "?")), url


def test_the_api_reference_is_served_from_the_package(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/docs").text
        for asset in re.findall(r"""['"](/docs/assets/[^'"]+)['"]""", page):
            assert client.get(asset).status_code == 200, asset
        assert "/docs/assets/swagger-ui-bundle.js" in page
        assert client.get("/redoc").status_code == 404


def test_the_session_cookie_is_httponly_and_strict(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/ui/signin", data={"token": server.tokens["viewer"]})
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert server.tokens["viewer"] not in answer.headers["set-cookie"]
        bad = client.post("/ui/signin", data={"token": "cvy_not-a-token"})
        assert bad.status_code == 401 and "set-cookie" not in bad.headers


def test_signing_in_never_redirects_off_the_site(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for target in ("//evil.test/x", "https://evil.test/", "/\\evil.test", "/api/v1/server"):
            answer = client.post(
                "/ui/signin", data={"token": server.tokens["viewer"], "next": target}
            )
            assert answer.headers["location"] == "/ui/projects", target


def test_a_revoked_token_ends_the_session(server: Server, tmp_path: Path) -> None:
    from conveyor.server.db.database import open_database

    with web_client(server, "outsider") as client:
        assert client.get("/ui/projects").status_code == 200
        db = open_database(f"sqlite:///{server.data / 'server.db'}")
        db.accounts.revoke_tokens("outsider")
        db.close()
        assert client.get("/ui/projects").status_code == 303


def test_signing_out_needs_the_csrf_token(server: Server) -> None:
    with web_client(server, "viewer") as client:
        assert client.post("/ui/signout", data={}).status_code == 403
        token = csrf_of(client.get("/ui/projects").text)
        out = client.post("/ui/signout", data={"csrf": token})
        assert out.status_code == 303
        client.cookies.clear()
        assert client.get("/ui/projects").status_code == 303


def test_the_runs_list_counts_steps_run_and_served_from_cache(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = client.get(P, params={"status": "succeeded", "trigger": "manual"}).text
    row = page[page.index(f"/runs/{run_id}") :].split("</tr>")[0]
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[-2:] == ["0", "3"], row  # cached, ran
    assert "manual" in cells and "main" in cells


def test_an_output_is_only_ever_a_download(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = client.get(f"{P}/runs/{run_id}").text
        assert f'href="{P}/runs/{run_id}/artifacts/report.html" download' in page
        answer = client.get(f"{P}/runs/{run_id}/artifacts/report.html")
        assert answer.status_code == 200 and answer.text == "<script>alert(3)</script>\n"
        assert answer.headers["content-disposition"] == "attachment; filename*=utf-8''report.html"
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        for bad in ("../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "nope.txt"):
            refused = client.get(f"{P}/runs/{run_id}/artifacts/{bad}")
            assert refused.status_code in (400, 404), bad
            assert "root:" not in refused.text


def _preview(client: httpx.Client, run: str, path: str) -> httpx.Response:
    answer = client.get(f"{P}/runs/{run}/preview/{path}")
    assert answer.status_code == 200, answer.text
    return answer


def test_an_html_report_runs_no_script_in_the_sites_origin(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = _preview(client, run_id, "report.html")
        raw = client.get(f"{P}/runs/{run_id}/raw/report.html")
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame, page.text
    assert re.search(r"\ssandbox[\s>]", frame.group(0)), frame.group(0)  # no allow-* at all
    assert f'src="{P}/runs/{run_id}/raw/report.html"' in frame.group(0)
    assert "<script>alert(3)" not in page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    assert raw.status_code == 200 and raw.text == "<script>alert(3)</script>\n"
    policy = raw.headers["content-security-policy"]
    assert policy.split(";")[0].strip() == "sandbox", policy  # no allow-scripts/same-origin
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert raw.headers["content-type"].startswith("text/html")
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert raw.headers["x-frame-options"] == "SAMEORIGIN"


def test_an_svg_with_script_is_only_an_image_from_the_sandbox(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = _preview(client, run_id, "out/plot.svg").text
        raw = client.get(f"{P}/runs/{run_id}/raw/out/plot.svg")
    assert f'<img class="preview" src="{P}/runs/{run_id}/raw/out/plot.svg"' in page
    assert "alert(4)" not in page and "alert(5)" not in page
    assert raw.headers["content-type"] == "image/svg+xml"
    assert raw.headers["content-security-policy"].startswith("sandbox;")


def test_only_images_and_reports_get_their_own_type(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        image = client.get(f"{P}/runs/{run_id}/raw/out/dot.png")
        csv = client.get(f"{P}/runs/{run_id}/raw/out/cells.csv")
        escape = client.get(f"{P}/runs/{run_id}/raw/..%2F..%2Fetc%2Fpasswd.html")
    assert image.headers["content-type"] == "image/png" and image.content[:4] == b"\x89PNG"
    assert image.headers["content-security-policy"].startswith("sandbox;")
    assert csv.status_code == 404 and "<script>" not in csv.text
    assert escape.status_code in (400, 404) and "root:" not in escape.text


def test_csv_cells_with_markup_are_text(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = _preview(client, run_id, "out/cells.csv").text
    assert "<td>&lt;script&gt;alert(6)&lt;/script&gt;</td>" in page
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page
    assert "<script>alert(6)" not in page


def test_a_huge_csv_and_json_are_read_bounded(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        csv = _preview(client, run_id, "out/deep/huge.csv").text
        big = _preview(client, run_id, "out/big.json").text
    assert csv.count("<td>a</td>") == 100 and "The first 100 rows" in csv
    assert "&lt;i&gt;b&lt;/i&gt;" in csv and len(csv) < 100_000
    assert "larger than 1024 KiB" in big and len(big) < 400_000


def test_a_billion_laughs_report_is_not_expanded(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = _preview(client, run_id, "out/laughs.xml").text
    assert "lollollol" not in page
    assert "&amp;lol3;" in page and 'class="junit"' not in page
    assert len(page) < 20_000


def test_the_tree_links_previews_and_downloads(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = client.get(f"{P}/runs/{run_id}/files").text
    assert "<details open><summary>out/" in page and "<summary>deep/" in page
    assert f'href="{P}/runs/{run_id}/preview/out/deep/huge.csv"' in page
    assert f'href="{P}/runs/{run_id}/artifacts/out/deep/huge.csv" download' in page


def test_compare_shows_parameters_and_changed_outputs(server: Server, run_id: str) -> None:
    with server.api("member") as member:
        other = str(member.post("/runs", json={"ref": "main", "params": {"rows": 7}}).json()["id"])
    assert server.wait_run(other)["status"] == "succeeded"
    with web_client(server, "viewer") as client:
        runs = client.get(P).text
        page = client.get(f"{P}/compare", params=[("run", run_id), ("run", other)])
        alone = client.get(f"{P}/compare", params={"run": run_id}).text
        unknown = client.get(f"{P}/compare", params=[("run", run_id), ("run", "<nope>")])
    assert 'form="compare-form"' in runs and f'value="{run_id}"' in runs
    assert page.status_code == 200, page.text
    assert '<tr class="differs"><th scope="row">rows' in page.text
    assert "not set (default)" in page.text and "<code>7</code>" in page.text
    assert '<th scope="row">out/rows.txt</th>' in page.text
    assert '<th scope="row">report.html</th>' not in page.text  # the same digest
    assert "Pick two or more runs" in alone
    assert unknown.status_code == 404 and "<nope>" not in unknown.text


def test_a_secret_in_an_output_is_masked_in_its_preview(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = _preview(client, run_id, "leak.csv").text
        raw = client.get(f"{P}/runs/{run_id}/raw/leak.html")
    assert "<td>token</td>" in page and SECRET not in page and "***" in page
    assert raw.status_code == 200 and SECRET not in raw.text
    assert raw.headers["content-security-policy"].startswith("sandbox;")


def test_junit_and_markdown_show_their_markup_as_text(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        junit = _preview(client, run_id, "out/junit.xml").text
        notes = _preview(client, run_id, "out/notes.md").text
    assert 'class="junit"' in junit and "1 passed" in junit and "1 failed" in junit
    assert "t.&lt;ok&gt;" in junit and "&lt;img src=x onerror=alert(7)&gt;" in junit
    assert "<img src=x" not in junit
    assert "<h1>Notes</h1>" in notes and "&lt;script&gt;alert(8)" in notes
    assert "<script>alert(8)" not in notes and 'href="javascript:' not in notes
    assert "[click](javascript:alert(9))" in notes  # no link made of it: text


def test_compare_takes_at_most_eight_runs(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        answer = client.get(f"{P}/compare", params=[("run", run_id)] * 9)
    assert answer.status_code == 422, answer.text
    assert "Traceback" not in answer.text


def test_lineage_shows_the_projects_runs_and_checks_its_query(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = client.get(f"{P}/lineage", params={"digest": REPORT, "path": "report.html"})
        assert page.status_code == 200, page.text
        assert f"/ui/p/demo/runs/{run_id}/steps/a.evil" in page.text
        assert "<script>alert" not in page.text
        for digest in ("../../etc/passwd", "A" * 64, REPORT[:-1]):
            bad = client.get(f"{P}/lineage", params={"digest": digest, "path": "x"})
            assert bad.status_code == 422
        unknown = client.get(f"{P}/lineage", params={"digest": "0" * 64, "path": "report.html"})
        assert unknown.status_code == 404


def test_dataset_pages_show_files_as_text_and_downloads(server: Server) -> None:
    with web_client(server, "viewer") as client:
        page = client.get(f"{P}/datasets/images", params={"ref": "master~1"})
        assert page.status_code == 200 and "report.html" in page.text
        assert "Files at <code>/</code>" in page.text
        diff = client.get(f"{P}/datasets/images/diff", params={"from": "master~1", "to": "master"})
        assert "0 added, 0 removed, 1 changed." in diff.text
        down = client.get(f"{P}/datasets/images/files/report.html", params={"ref": "master~1"})
        assert down.content == b"<script>alert(10)</script>"
        assert down.headers["content-type"] == "application/octet-stream"
        assert down.headers["content-disposition"].startswith("attachment")
        for bad in ("../x", "images/../../etc"):
            assert client.get(f"{P}/datasets/{bad}").status_code in (400, 404, 422)
        other = client.get("/ui/p/demo/datasets/images", params={"ref": "../../x"})
        assert other.status_code in (400, 404) and "Traceback" not in other.text


def test_a_notebook_is_rendered_sanitised_only_in_the_sandbox(server: Server, run_id: str) -> None:
    with web_client(server, "viewer") as client:
        page = _preview(client, run_id, "out/nb.ipynb")
        raw = client.get(f"{P}/runs/{run_id}/raw/out/nb.ipynb")
        download = client.get(f"{P}/runs/{run_id}/artifacts/out/nb.ipynb")
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame and re.search(r"\ssandbox[\s>]", frame.group(0)), page.text
    assert f'src="{P}/runs/{run_id}/raw/out/nb.ipynb"' in frame.group(0)
    assert raw.status_code == 200 and "Notebook notes" in raw.text
    assert "<script" not in raw.text.lower() and "<img src=x" not in raw.text
    assert raw.headers["content-security-policy"].split(";")[0].strip() == "sandbox"
    assert raw.headers["content-type"].startswith("text/html")
    assert download.headers["content-type"] == "application/octet-stream"  # the file as it is
    assert "alert(11)" in download.text


def test_only_a_lead_sees_the_settings_link_and_page(server: Server) -> None:
    for who in ("viewer", "member"):
        with web_client(server, who) as client:
            runs = client.get(P).text
            assert f'href="{P}/settings"' not in runs
            assert client.get(f"{P}/settings").status_code == 403
    with web_client(server, "lead") as client:
        assert f'href="{P}/settings"' in client.get(P).text
        page = client.get(f"{P}/settings").text
    assert "API_TOKEN" in page, "a lead sees the secrets' names"
    assert SECRET not in page, "never their values"


def test_a_lead_sets_a_secret_and_a_role_and_no_value_comes_back(server: Server) -> None:
    value = "a-brand-new-secret-value-99"
    with web_client(server, "lead") as client:
        token = csrf_of(client.get(f"{P}/settings").text)
        saved = client.post(f"{P}/secrets", data={"csrf": token, "name": "NEW_ONE", "value": value})
        assert saved.status_code == 303, saved.text
        page = client.get(saved.headers["location"]).text
        assert "NEW_ONE" in page and value not in page and "Secret saved" in page
        short = client.post(f"{P}/secrets", data={"csrf": token, "name": "SHORT", "value": "x"})
        assert short.status_code == 400 and "at least" in short.text
        reserved = {"csrf": token, "name": "CONVEYOR_FORGE_TOKEN", "value": value}
        assert client.post(f"{P}/secrets", data=reserved).status_code == 400
        role = {"csrf": token, "user": "outsider", "role": "viewer"}
        assert client.post(f"{P}/members", data=role).status_code == 303
        bad = client.post(f"{P}/members", data={**role, "role": "owner"})
        assert bad.status_code == 400 and "is not a role" in bad.text
        assert client.post(f"{P}/members/outsider/remove", data={"csrf": token}).status_code == 303
        removed = client.post(f"{P}/secrets/NEW_ONE/remove", data={"csrf": token})
        assert removed.status_code == 303
    with server.api("lead") as api:
        assert "NEW_ONE" not in api.get("/secrets").json()
        assert "outsider" not in {m["user"] for m in api.get("/members").json()}


def test_a_lead_form_without_the_csrf_token_changes_nothing(server: Server) -> None:
    with web_client(server, "lead") as client:
        for data in ({"name": "FORGED", "value": "forged-value-123"}, {"csrf": "x" * 32}):
            answer = client.post(f"{P}/secrets", data={**data, "name": "FORGED"})
            assert answer.status_code == 403, answer.text
        token = csrf_of(client.get(f"{P}/settings").text)
        foreign = client.post(
            f"{P}/members",
            data={"csrf": token, "user": "outsider", "role": "lead"},
            headers={"Origin": "http://evil.test"},
        )
        assert foreign.status_code == 403
    with server.api("lead") as api:
        assert "FORGED" not in api.get("/secrets").json()
        assert "outsider" not in {m["user"] for m in api.get("/members").json()}


def test_a_lead_saves_settings_and_schedules_from_the_page(server: Server) -> None:
    with web_client(server, "lead") as client:
        token = csrf_of(client.get(f"{P}/settings").text)
        saved = client.post(f"{P}/settings", data={"csrf": token, "network": "off"})
        assert saved.status_code == 303, saved.text
        with server.api("lead") as api:
            shown = api.get(f"{server.url}/api/v1/projects/demo").json()
        assert shown["settings"]["network"] is False
        assert 'value="off" selected' in client.get(f"{P}/settings").text
        bad = client.post(f"{P}/settings", data={"csrf": token, "forge_api": "ftp://x"})
        assert bad.status_code == 400 and "not a forge API URL" in bad.text
        cron = {"csrf": token, "cron": "0 3 * * *", "branch": "main"}
        assert client.post(f"{P}/schedules", data=cron).status_code == 303
        wrong = client.post(f"{P}/schedules", data={**cron, "cron": "every day"})
        assert wrong.status_code == 400 and "not a cron expression" in wrong.text
        page = client.get(f"{P}/settings").text
        assert "<code>0 3 * * *</code>" in page
        found = re.search(rf'action="{P}/schedules/(\d+)/remove"', page)
        assert found is not None
        assert client.post(found.group(0)[8:-1], data={"csrf": token}).status_code == 303
        back = client.post(f"{P}/settings", data={"csrf": token, "network": "on"})
        assert back.status_code == 303
    with server.api("lead") as api:
        assert api.get("/schedules").json() == []


def test_a_lead_edits_executor_tables_and_retention_and_others_cannot(server: Server) -> None:
    """The tables and retention go through the API's own check and are stored as the API
    stores them; a member or viewer has no form and the API refuses them the same change."""
    spark = 'master = "spark://127.0.0.1:7077"\nconf."spark.cores.max" = "1"\n'
    with web_client(server, "lead") as client:
        token = csrf_of(client.get(f"{P}/settings").text)
        tables = {"csrf": token, "table-spark": spark, "table-dask": "parallelism = 8"}
        saved = client.post(f"{P}/settings/executors", data=tables)
        assert saved.status_code == 303, saved.text
        keep = {"csrf": token, "keep_last": "500", "keep_branches": "main, release"}
        assert client.post(f"{P}/settings/retention", data=keep).status_code == 303
        with server.api("lead") as api:
            stored = api.get(f"{server.url}/api/v1/projects/demo").json()["settings"]
        assert stored["executors"]["spark"] == {
            "master": "spark://127.0.0.1:7077",
            "conf": {"spark.cores.max": "1"},
        }
        assert stored["executors"]["dask"] == {"parallelism": 8}
        assert stored["retention"] == {"keep_last": 500, "keep_branches": ["main", "release"]}
        page = client.get(f"{P}/settings").text
        assert "conf.&#34;spark.cores.max&#34; = &#34;1&#34;" in page  # the form shows the table
        assert re.search(r'name="keep_last"[^>]*value="500"', page)
        refused = [
            ({**tables, "table-spark": "mastr = 1"}, "unknown setting executors.spark.mastr"),
            ({**tables, "table-spark": "master = "}, "the spark table is not TOML"),
            ({**tables, "table-dask": "scheduler = [1]"}, "executors.dask.scheduler is a list"),
            ({**tables, "table-htcondor": "x" * 8001}, "longer than 8000 characters"),
        ]
        for data, says in refused:
            answer = client.post(f"{P}/settings/executors", data=data)
            assert answer.status_code in (400, 422) and says in answer.text, answer.text
        wrong = client.post(f"{P}/settings/retention", data={"csrf": token, "keep_last": "2.5"})
        assert wrong.status_code == 400 and "keep_last is a whole number" in wrong.text
        negative = client.post(f"{P}/settings/retention", data={"csrf": token, "keep_days": "-1"})
        assert negative.status_code in (400, 422) and "keep_days" in negative.text
        forged = client.post(f"{P}/settings/executors", data={"table-dask": "parallelism = 1"})
        assert forged.status_code == 403
    for who in ("viewer", "member"):
        with web_client(server, who) as client:
            assert 'id="executors-form"' not in client.get(P).text
            assert client.get(f"{P}/settings").status_code == 403
            token = csrf_of(client.get("/ui/projects").text)
            for path in ("executors", "retention"):
                data = {"csrf": token, "table-dask": "parallelism = 1", "keep_last": "1"}
                assert client.post(f"{P}/settings/{path}", data=data).status_code == 403
        with server.api(who) as api:
            put = api.put(
                "/settings",
                json={"executors": {"dask": {"parallelism": 1}}, "retention": {"keep_last": 1}},
            )
            assert put.status_code == 403, put.text
    with server.api("lead") as api:
        stored = api.get(f"{server.url}/api/v1/projects/demo").json()["settings"]
        assert stored["executors"]["dask"] == {"parallelism": 8}  # unchanged by them
        assert stored["retention"]["keep_last"] == 500
        reset = {"executors": {}, "retention": {}}
        assert api.put("/settings", json=reset).status_code < 300
