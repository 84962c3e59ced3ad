"""``conveyor ui``: the web pages over a real project's own records and store (a real
git repository, real ``conveyor run``s, the stdlib SQLite records), served by the real
command on a free loopback port; and a run page opened in Debian's Chromium."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo
from tests.integration.ui_support import serve_ui

pytestmark = pytest.mark.integration

PIPELINE = """\
name: local-demo
params:
  rows: 3
jobs:
  prepare:
    steps:
      - id: fetch
        outputs: [data.csv]
        run: |
          printf 'name,rows\\nalpha,${{ params.rows }}\\n' > data.csv
          printf '\\033[32mfetched\\033[0m rows: ${{ params.rows }}\\n'
  train:
    needs: [prepare]
    steps:
      - id: fit
        inputs: [data.csv]
        outputs: [model/weights.txt]
        metrics: [scores.json]
        run: |
          mkdir -p model && wc -l data.csv > model/weights.txt && echo fitted
          printf '{"loss": %s, "note": "text is not plotted"}' "$(tail -1 data.csv | cut -d, -f2)" > scores.json
  report:
    steps:
      - id: publish
        inputs: [data/table.parquet, data/analysis.ipynb]
        outputs: [table.parquet, analysis.ipynb]
        run: cp data/table.parquet data/analysis.ipynb .
"""


def _documents(where: Path) -> None:
    """A Parquet table and a notebook (with a script in a cell and an output), committed."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    nbformat = pytest.importorskip("nbformat")
    where.mkdir()
    table = {"city": ["Lyon", "<b>Oslo</b>"], "people": [522_000, 709_000]}
    pq.write_table(pa.table(table), where / "table.parquet")
    code = nbformat.v4.new_code_cell("print('fitted')")
    code.outputs = [nbformat.v4.new_output("stream", text="accuracy 0.93\n")]
    cells = [nbformat.v4.new_markdown_cell("# Analysis\n<script>alert(1)</script>"), code]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(where / "analysis.ipynb"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    path = tmp_path_factory.mktemp("ui") / "project"
    path.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.invalid"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    repo = Repo(path)
    repo.pipeline(PIPELINE)
    _documents(path / "data")
    repo.commit("Fit a <small> model")
    for params in (["-p", "rows=3"], ["-p", "rows=5"]):
        result = repo.run("run", *params)
        assert result.code == 0, result.err
    return repo


@pytest.fixture(scope="module")
def ui(project: Repo) -> Iterator[str]:
    with serve_ui(project.path) as url:
        yield url


def _runs(project: Repo) -> list[dict[str, Any]]:
    result = project.run("runs", "--json")
    assert result.code == 0, result.err
    runs: list[dict[str, Any]] = result.json()
    if isinstance(runs, dict):
        runs = runs["runs"]
    return runs


def test_it_listens_on_loopback_and_names_the_project(ui: str, project: Repo) -> None:
    assert ui.startswith("http://127.0.0.1:")
    assert ui.endswith(f"/ui/p/{project.path.name}")


def test_the_runs_list_shows_the_projects_runs_without_a_sign_in(ui: str, project: Repo) -> None:
    page = httpx.get(ui, timeout=30)
    assert page.status_code == 200
    for run in _runs(project):
        assert run["id"] in page.text
    assert "Fit a &lt;small&gt; model" in page.text  # the commit's subject, escaped
    assert "Sign out" not in page.text and "conveyor_session" not in page.headers.get(
        "set-cookie", ""
    )
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_the_runs_list_filters_by_pipeline_and_status(ui: str, project: Repo) -> None:
    mine = httpx.get(ui, params={"pipeline": "local-demo"}, timeout=30)
    other = httpx.get(ui, params={"pipeline": "another"}, timeout=30)
    failed = httpx.get(ui, params={"status": "failed"}, timeout=30)
    assert "2 runs match" in mine.text
    assert "0 runs match" in other.text and "No runs match" in other.text
    assert "0 runs match" in failed.text


def test_a_run_page_shows_its_graph_steps_and_outputs(ui: str, project: Repo) -> None:
    first = _runs(project)[-1]["id"]
    page = httpx.get(f"{ui}/runs/{first}", timeout=30)
    assert page.status_code == 200, page.text
    assert "<svg" in page.text  # the graph of the pipeline
    for text in ("prepare.fetch", "train.fit", "data.csv", "model/weights.txt"):
        assert text in page.text
    assert "Cancel run" not in page.text and "Run again" not in page.text  # read-only
    live = httpx.get(f"{ui}/runs/{first}/live", timeout=30).json()
    assert live["status"] == "succeeded" and live["final"]
    assert set(live["steps"]) == {"prepare.fetch", "train.fit", "report.publish"}


def test_a_run_is_reached_by_its_number_as_the_cli_names_it(ui: str, project: Repo) -> None:
    runs = _runs(project)
    first = runs[-1]
    for ref in (f"%23{first['number']}", str(first["number"])):  # #N, and N under 4 digits
        page = httpx.get(f"{ui}/runs/{ref}", timeout=30)
        assert page.status_code == 200, page.text
        assert first["id"] in page.text
    assert httpx.get(f"{ui}/runs/%23999", timeout=30).status_code == 404
    bad = httpx.get(f"{ui}/runs/%23x1", timeout=30)
    assert bad.status_code == 400 and "is not a run number" in bad.text, bad.text


def test_a_step_its_log_and_its_why(ui: str, project: Repo) -> None:
    latest = _runs(project)[0]["id"]
    step = httpx.get(f"{ui}/runs/{latest}/steps/prepare.fetch", timeout=30)
    assert step.status_code == 200
    assert "cache" in step.text  # the `conveyor why` explanation
    log = httpx.get(f"{ui}/runs/{latest}/steps/prepare.fetch/log", timeout=30)
    assert log.status_code == 200
    assert '<span class="ansi-green">fetched</span> rows: 5' in log.text


def test_outputs_preview_download_and_compare(ui: str, project: Repo) -> None:
    latest, first = (r["id"] for r in _runs(project)[:2])
    preview = httpx.get(f"{ui}/runs/{latest}/preview/data.csv", timeout=30)
    assert preview.status_code == 200 and "<td>alpha</td>" in preview.text
    down = httpx.get(f"{ui}/runs/{latest}/artifacts/model/weights.txt", timeout=30)
    assert down.status_code == 200 and down.text.startswith("2 data.csv")
    assert down.headers["content-disposition"].startswith("attachment")
    tree = httpx.get(f"{ui}/runs/{latest}/files", timeout=30)
    assert "weights.txt" in tree.text
    compared = httpx.get(
        f"{ui.rsplit('/', 1)[0]}/{project.path.name}/compare",
        params=[("run", first), ("run", latest)],
        timeout=30,
    )
    assert compared.status_code == 200
    assert "rows" in compared.text and "data.csv" in compared.text
    metrics = compared.text.split('id="metrics-title"')[1].split("</section>")[0]
    assert "<code>loss</code>" in metrics and 'class="differs"' in metrics
    assert "<code>3</code>" in metrics and "<code>5</code>" in metrics


def test_lineage_of_an_output_across_its_producer_and_readers(ui: str, project: Repo) -> None:
    latest = _runs(project)[0]["id"]
    run_page = httpx.get(f"{ui}/runs/{latest}", timeout=30).text
    link = re.search(r'href="(/ui/p/[^"]+/lineage\?[^"]*data\.csv[^"]*)"', run_page)
    assert link, "the outputs table links each file's lineage"
    page = httpx.get(
        ui.split("/ui/", maxsplit=1)[0] + link.group(1).replace("&amp;", "&"), timeout=30
    )
    assert page.status_code == 200, page.text
    assert "<svg" in page.text
    for text in ("prepare.fetch", "train.fit", "model/weights.txt", f"/runs/{latest}"):
        assert text in page.text
    assert "<h1>Lineage of <code>data.csv</code></h1>" in page.text
    assert "(in its output" not in page.text  # produced as itself, not inside a directory


def test_metrics_are_plotted_across_the_runs(ui: str, project: Repo) -> None:
    page = httpx.get(ui + "/metrics", params={"pipeline": "local-demo"}, timeout=30)
    assert page.status_code == 200, page.text
    assert "<code>loss</code>" in page.text and "from scores.json" in page.text
    summary = re.search(r"last ([^,]+), lowest ([^,]+), highest ([^,]+), (\d+) runs", page.text)
    assert summary, page.text
    assert summary.groups() == ("5", "3", "5", "2"), summary.groups()  # rows=3, then rows=5
    assert page.text.count('class="point"') == 2
    assert "note" not in page.text.split("Values")[0]  # text values are not charts
    empty = httpx.get(ui + "/metrics", params={"pipeline": "another"}, timeout=30)
    assert "None of these runs recorded a number" in empty.text


def test_a_parquet_table_and_a_notebook_are_previewed(ui: str, project: Repo) -> None:
    latest = _runs(project)[0]["id"]
    table = httpx.get(f"{ui}/runs/{latest}/preview/table.parquet", timeout=30)
    assert table.status_code == 200, table.text
    assert "<td>Lyon</td>" in table.text and "<td>&lt;b&gt;Oslo&lt;/b&gt;</td>" in table.text
    assert "<td>709000</td>" in table.text
    page = httpx.get(f"{ui}/runs/{latest}/preview/analysis.ipynb", timeout=30)
    frame = re.search(r'<iframe class="report" sandbox src="([^"]+)"', page.text)
    assert frame, page.text
    raw = httpx.get(ui.split("/ui/", maxsplit=1)[0] + frame.group(1), timeout=60)
    assert raw.status_code == 200
    assert raw.headers["content-security-policy"].startswith("sandbox")
    assert raw.headers["content-type"].startswith("text/html")
    assert "accuracy 0.93" in raw.text and "Analysis" in raw.text
    assert "<script" not in raw.text.lower()


def test_the_ui_is_read_only_and_serves_one_project(ui: str, project: Repo) -> None:
    latest = _runs(project)[0]["id"]
    for path in (f"{ui}/runs/{latest}/cancel", f"{ui}/runs/{latest}/rerun"):
        assert httpx.post(path, timeout=30).status_code == 403
    assert (
        httpx.post(ui.split("/ui/", maxsplit=1)[0] + "/ui/signout", timeout=30).status_code == 403
    )
    assert httpx.get(ui.split("/ui/", maxsplit=1)[0] + "/ui/p/other", timeout=30).status_code == 404
    signin = httpx.get(ui.split("/ui/", maxsplit=1)[0] + "/ui/signin", timeout=30)
    assert signin.status_code == 303 and signin.headers["location"] == "/ui/projects"
    projects = httpx.get(ui.split("/ui/", maxsplit=1)[0] + "/ui/projects", timeout=30)
    assert f"/ui/p/{project.path.name}" in projects.text
    assert _runs(project)[0]["status"] == "succeeded"  # nothing changed


def test_a_browser_opens_a_run_page(ui: str, project: Repo) -> None:
    chromium = os.environ.get("CONVEYOR_CHROMIUM")
    if not chromium or not Path(chromium).exists():
        engine_missing("chromium", "Chromium not configured; run scripts/engines/chromium.sh up")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        engine_missing("chromium", "the playwright package is missing: pip install playwright")
    from tests.integration.test_web_browser import FLAGS

    latest = _runs(project)[0]["id"]
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(ui)
            page.get_by_role("link", name=latest).click()
            page.wait_for_url(f"**/runs/{latest}")
            assert page.locator("svg").first.is_visible()
            page.get_by_role("link", name="prepare.fetch").first.click()
            page.wait_for_url("**/steps/prepare.fetch")
            page.get_by_text("rows: 5").first.wait_for()
            page.go_back()
            page.get_by_role("link", name="lineage of data.csv").click()
            page.wait_for_url("**/lineage?**")
            assert "Lineage of" in page.locator("h1").inner_text(), page.content()[:3000]
            assert page.locator(".graph .node.step").count() >= 2
            shots = os.environ.get("CONVEYOR_SCREENSHOTS")
            if shots:  # for CI to keep, beside the server's pages
                Path(shots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(shots) / "ui-lineage.png"), full_page=True)
                page.goto(f"{ui}/metrics")
                page.locator(".chart svg").first.wait_for()
                page.screenshot(path=str(Path(shots) / "ui-metrics.png"), full_page=True)
        finally:
            browser.close()


def _ui(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from tests.integration.ui_support import UI

    return subprocess.run(
        [*UI, *args], cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_its_help_teaches_and_bad_input_is_one_sentence(project: Repo, tmp_path: Path) -> None:
    helped = _ui(project.path, "ui", "--help")
    assert helped.returncode == 0
    for text in ("read-only", "--port", "--open", "127.0.0.1", "conveyor ui --open"):
        assert text in helped.stdout
    port = _ui(project.path, "ui", "--port", "70000")
    assert port.returncode == 2 and "Traceback" not in port.stderr
    host = _ui(project.path, "ui", "--host", "192.0.2.1")  # an address of no interface here
    assert host.returncode == 2, host.stderr
    assert host.stderr.startswith("conveyor: error: cannot listen on 192.0.2.1:0")
    assert "Traceback" not in host.stderr
    nowhere = _ui(tmp_path, "ui")
    assert nowhere.returncode == 2 and "no pipeline file" in nowhere.stderr


def test_the_entry_point_names_the_command() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    entry = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry["conveyor.commands"]["ui"] == "conveyor.server.web.ui:ui"
