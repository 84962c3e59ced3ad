"""The web page in a real browser: Playwright driving Debian's Chromium (never a
downloaded build) against a real ``conveyor server`` with real runs.

Screenshots of the main pages go to ``$CONVEYOR_SCREENSHOTS`` (else the test's tmp
directory), for CI to keep and the README to show."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines import engine_missing
from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  rows: 3
jobs:
  prepare:
    steps:
      - id: fetch
        outputs: [data.csv, plots, report.html]
        run: |
          printf 'a,b\\n1,${{ params.rows }}\\n' > data.csv
          mkdir -p plots
          echo '__PNG__' | base64 -d > plots/dot.png
          echo '<h1>Report</h1><script>document.title = "ran"</script>' > report.html
          printf '\\033[32mfetched\\033[0m rows: 3\\n'
          sleep 3
  train:
    needs: [prepare]
    steps:
      - id: fit
        name: Fit the model <fast>
        inputs: [data.csv]
        run: |
          echo training; sleep 2; echo 'model ready'
"""
# a 16x16 red PNG
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAF0lEQVR4nGP4z8BAEiJN9aiGUQ1DSgMAkPn/"
    "Afnh+ngAAAAASUVORK5CYII="
)
PIPELINE = PIPELINE.replace("__PNG__", PNG)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("CONVEYOR_CHROMIUM")
    if not path or not Path(path).exists():
        engine_missing("chromium", "Chromium not configured; run scripts/engines/chromium.sh up")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        engine_missing("chromium", "the playwright package is missing: pip install playwright")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    srv = make_server(tmp, None)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(PIPELINE)
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    git(work, "push", "-q", str(srv.data / "projects/demo/repo.git"), "main")
    srv.start(workers=1)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("CONVEYOR_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        launched = play.chromium.launch(executable_path=chromium, args=FLAGS)
        yield launched
        launched.close()


def _sign_in(browser: Any, server: Server, who: str, width: int = 1280) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/ui/")
    assert page.url.endswith("/ui/signin")
    page.get_by_label("API token").fill(server.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/projects")
    return page


def test_follow_a_live_run_and_read_a_step_log(browser: Any, server: Server, shots: Path) -> None:
    from playwright.sync_api import expect

    page = _sign_in(browser, server, "member")
    assert page.get_by_role("cell", name="member").is_visible()
    page.screenshot(path=str(shots / "projects.png"), full_page=True)
    with server.api("member") as api:
        run_id = api.post("/runs", json={"ref": "main"}).json()["id"]
    page.goto(f"{server.url}/ui/p/demo/runs/{run_id}")
    page.evaluate("window.__notReloaded = true")
    status = page.locator("#run-status")
    expect(page.locator("#rerun")).to_be_hidden()
    expect(status).to_have_text("running", timeout=30_000)
    # a step's log while it runs: the page follows it to its end
    fetch = page.locator("tr[data-step='prepare.fetch'] [data-field=status]")
    expect(fetch).to_have_text("running", timeout=30_000)
    step = page.context.new_page()
    step.goto(f"{server.url}/ui/p/demo/runs/{run_id}/steps/prepare.fetch")
    expect(step.locator("#log")).to_contain_text("fetched rows: 3", timeout=30_000)
    step.locator("#log[data-done='1']").wait_for(timeout=30_000)
    step.close()
    page.locator(".graph svg").wait_for()
    page.screenshot(path=str(shots / "run-live.png"), full_page=True)
    expect(status).to_have_text("succeeded", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True, "the page was reloaded"
    expect(page.locator("#rerun")).to_be_visible()
    expect(page.locator("#cancel")).to_be_hidden()
    assert status.get_attribute("class") == "status s-succeeded"
    fit = page.locator("tr[data-step='train.fit']")
    assert fit.locator("[data-field=status]").text_content() == "succeeded"
    assert fit.locator("[data-field=attempts]").text_content() == "1"
    assert "Fit the model <fast>" in (fit.text_content() or "")
    assert page.locator("a.node.s-succeeded").count() == 2
    # the timeline drew the two steps as they ran (the page loaded before either started)
    bars = page.locator("#timeline g.bar")
    expect(bars).to_have_count(2)
    assert bars.first.locator("title").text_content().startswith("prepare.fetch: ")
    assert page.locator("#timeline g.bar.s-succeeded").count() == 2
    page.screenshot(path=str(shots / "run.png"), full_page=True)

    page.locator("tr[data-step='prepare.fetch'] a").click()  # a row rendered before it ran
    page.locator("#log[data-done='1']").wait_for(timeout=30_000)
    log = page.locator("#log")
    assert "fetched rows: 3" in (log.text_content() or "")
    assert log.locator("span.ansi-green").first.text_content() == "fetched"
    assert page.get_by_text("cache miss").count() >= 1
    page.screenshot(path=str(shots / "step.png"), full_page=True)

    page.goto(f"{server.url}/ui/p/demo")
    assert page.locator(f"a[href='/ui/p/demo/runs/{run_id}']").is_visible()
    page.screenshot(path=str(shots / "runs.png"), full_page=True)
    phone = _sign_in(browser, server, "member", width=390)
    phone.goto(f"{server.url}/ui/p/demo/runs/{run_id}")
    phone.screenshot(path=str(shots / "run-phone.png"), full_page=True)
    page.context.close()
    phone.context.close()


def test_a_viewer_sees_no_control_and_a_forged_post_is_refused(
    browser: Any, server: Server, shots: Path
) -> None:
    with server.api("member") as api:
        run_id = api.post("/runs", json={"ref": "main"}).json()["id"]
    server.wait_run(run_id)
    viewer = _sign_in(browser, server, "viewer")
    viewer.goto(f"{server.url}/ui/p/demo/runs/{run_id}")
    assert viewer.locator("#run-status").text_content() == "succeeded"
    assert viewer.locator("#cancel, #rerun").count() == 0
    viewer.screenshot(path=str(shots / "run-viewer.png"), full_page=True)
    viewer.context.close()

    member = _sign_in(browser, server, "member")
    member.goto(f"{server.url}/ui/p/demo/runs/{run_id}")
    assert member.locator("#rerun").is_visible()
    # the member's own browser, a form posted without the CSRF token: refused
    forged = member.evaluate(
        """url => fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'csrf=guessed'}).then(r => r.status)""",
        f"/ui/p/demo/runs/{run_id}/rerun",
    )
    assert forged == 403
    with server.api("viewer") as api:
        assert api.get("/runs").json()["total"] == 2, "no run was queued by the forged post"
    member.context.close()


def test_preview_an_image_and_a_csv_and_compare_two_runs(
    browser: Any, server: Server, shots: Path
) -> None:
    from playwright.sync_api import expect

    with server.api("member") as api:
        first = api.post("/runs", json={"ref": "main"}).json()["id"]
        second = api.post("/runs", json={"ref": "main", "params": {"rows": 5}}).json()["id"]
    assert server.wait_run(first)["status"] == "succeeded"
    assert server.wait_run(second)["status"] == "succeeded"
    page = _sign_in(browser, server, "viewer")
    page.goto(f"{server.url}/ui/p/demo/runs/{second}")
    page.get_by_role("link", name="Browse them as a tree, with previews").click()
    expect(page.locator("summary", has_text="plots/")).to_be_visible()
    page.screenshot(path=str(shots / "outputs.png"), full_page=True)
    page.get_by_role("link", name="data.csv", exact=True).click()
    table = page.locator("table.data")
    expect(table.locator("th").first).to_have_text("a")
    expect(table.locator("td").nth(1)).to_have_text("5")
    page.screenshot(path=str(shots / "preview-csv.png"), full_page=True)

    page.goto(f"{server.url}/ui/p/demo/runs/{second}/preview/plots/dot.png")
    image = page.locator("img.preview")
    expect(image).to_be_visible()
    assert image.evaluate("i => i.complete && i.naturalWidth") == 16  # loaded, a real PNG
    page.screenshot(path=str(shots / "preview-image.png"), full_page=True)

    page.goto(f"{server.url}/ui/p/demo/runs/{second}/preview/report.html")
    report = page.frame_locator("iframe.report")
    expect(report.locator("h1")).to_have_text("Report")
    frame = next(f for f in page.frames if f.url.endswith("/raw/report.html"))
    assert frame.evaluate("document.title") != "ran", "the report's script ran"
    assert page.title() != "ran"

    page.goto(f"{server.url}/ui/p/demo")
    page.get_by_label(f"compare run {first}").check()
    page.get_by_label(f"compare run {second}").check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/ui/p/demo/compare?*")
    expect(page.get_by_role("heading", name="Changed outputs")).to_be_visible()
    differs = page.locator("tr.differs")
    expect(differs.first).to_contain_text("rows")
    expect(page.get_by_role("rowheader", name="data.csv", exact=True)).to_be_visible()
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    page.context.close()


def test_a_lead_changes_a_role_and_sets_a_secret_that_a_viewer_never_sees(
    browser: Any, server: Server, shots: Path
) -> None:
    from playwright.sync_api import expect

    value = "browser-secret-value-314159"
    lead = _sign_in(browser, server, "lead")
    lead.goto(f"{server.url}/ui/p/demo")
    lead.get_by_role("link", name="Settings").click()
    lead.wait_for_url("**/ui/p/demo/settings")
    lead.get_by_label("Add user").fill("outsider")
    lead.get_by_label("as", exact=True).select_option("viewer")
    lead.get_by_role("button", name="Add member").click()
    expect(lead.get_by_role("status")).to_have_text("Role saved.")
    lead.get_by_label("Role of outsider").select_option("member")
    lead.get_by_role("button", name="Change role of outsider").click()
    expect(lead.get_by_role("status")).to_have_text("Role saved.")
    with server.api("lead") as api:
        roles = {m["user"]: m["role"] for m in api.get("/members").json()}
    assert roles["outsider"] == "member"

    lead.get_by_label("Secret name").fill("MODEL_KEY")
    lead.get_by_label("Value").fill(value)
    lead.get_by_role("button", name="Save secret").click()
    expect(lead.get_by_role("status")).to_contain_text("Secret saved")
    expect(lead.locator("#secrets li[data-secret='MODEL_KEY']")).to_be_visible()
    assert value not in lead.content(), "a secret's value is never shown back"
    assert lead.get_by_label("Value").input_value() == ""
    lead.screenshot(path=str(shots / "settings.png"), full_page=True)

    # the lead's own browser, a form posted without the CSRF token: refused
    forged = lead.evaluate(
        """url => fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'name=FORGED&value=forged-value-271828'}).then(r => r.status)""",
        "/ui/p/demo/secrets",
    )
    assert forged == 403
    lead.get_by_role("button", name="Remove outsider").click()
    expect(lead.get_by_role("status")).to_have_text("Member removed.")
    lead.context.close()
    with server.api("lead") as api:
        names = api.get("/secrets").json()
        members = {m["user"] for m in api.get("/members").json()}
    assert "MODEL_KEY" in names and "FORGED" not in names and "outsider" not in members

    for who in ("viewer", "member"):
        page = _sign_in(browser, server, who)
        page.goto(f"{server.url}/ui/p/demo")
        assert page.get_by_role("link", name="Settings").count() == 0
        answer = page.goto(f"{server.url}/ui/p/demo/settings")
        assert answer is not None and answer.status == 403
        assert "MODEL_KEY" not in page.content()
        assert page.locator("form[action*='/secrets'], form[action*='/members']").count() == 0
        page.context.close()


# WCAG 2.1 contrast of every visible text against the first opaque background behind it
CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, iframe') || !el.getClientRects().length) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.opacity === '0') continue;
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) low.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`);
  }
  return low;
}"""
# every visible form control has a name a screen reader can say
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden' && el.getClientRects().length)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 80))"""


def test_the_pages_are_keyboard_usable_labelled_readable_and_fit_a_phone(
    browser: Any, server: Server, shots: Path
) -> None:
    with server.api("member") as api:
        run_id = api.post("/runs", json={"ref": "main"}).json()["id"]
    server.wait_run(run_id)
    pages = [
        "/ui/projects",
        "/ui/p/demo",
        f"/ui/p/demo/runs/{run_id}",
        f"/ui/p/demo/runs/{run_id}/steps/prepare.fetch",
        f"/ui/p/demo/runs/{run_id}/files",
        "/ui/p/demo/settings",
    ]
    page = _sign_in(browser, server, "lead")
    for path in pages:
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate(CONTRAST) == [], path
        assert page.evaluate(UNLABELLED) == [], path
    page.evaluate("document.querySelector('footer').style.color = '#aaa'")  # pale text
    assert any(found.startswith("FOOTER") for found in page.evaluate(CONTRAST))
    page.evaluate("document.querySelector('#s-parallelism').removeAttribute('id')")
    assert page.evaluate(UNLABELLED), "the check sees an input without its label"
    # the keyboard: the first Tab reaches the skip link, Enter moves to the content,
    # and the next Tabs walk the page's own controls in order, each visibly focused
    page.goto(f"{server.url}/ui/p/demo/settings")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.evaluate("getComputedStyle(document.activeElement).left") == "8px"
    page.keyboard.press("Enter")
    # the fragment's navigation lands after the key press returns: wait for it (a
    # timeout, 10 s, fails the test as the assertion would)
    page.wait_for_function("location.hash === '#main'", timeout=10_000)
    assert page.url.endswith("#main")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid", f"{reached[-1]} shows no focus"
    assert "s-executor" in reached and reached.index("s-executor") < reached.index("s-parallelism")
    page.context.close()

    phone = _sign_in(browser, server, "lead", width=360)
    for path in pages:
        phone.goto(f"{server.url}{path}")
        wide = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{path} scrolls sideways by {wide} px on a phone"
    phone.goto(f"{server.url}/ui/p/demo/settings")
    phone.screenshot(path=str(shots / "settings-phone.png"), full_page=True)
    phone.context.close()
