"""Web page speed: a run page of a big run, its live fragment and the runs list; with
``--browser``, that run page loaded in Chromium too.

    python bench/bench_web.py [--steps 1000] [--repeat 5] [--browser] [--queued]

Starts a real ``conveyor server`` (SQLite, one in-process worker) on 127.0.0.1 in a
temporary directory, runs a pipeline of ``--steps`` steps (chains of five) to its end
(``--queued``: leaves the run queued, no worker, as a page opened while it waits), then
times the pages as a signed-in viewer (median of ``--repeat``). The reference,
measured in the same run, is ``GET /api/v1/projects/demo/runs/RUN``: the same run with
its step runs as JSON.

``--browser`` (Chromium from ``CONVEYOR_CHROMIUM``, scripts/engines/chromium.sh, and
Playwright) loads the run page ``--repeat`` times more in one tab and reports, from
the navigation's start (Navigation and Paint Timing): the server's answer
(``responseStart - requestStart``), the last byte, DOMContentLoaded, load, the first
contentful paint and ``conveyor:drawn``, the mark the page sets once the graph and
the timeline are on screen (the frame after they were parsed). The load average
(``os.getloadavg``) is printed with the figures: on a shared machine it moves them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.server_support import Server, git, make_server  # noqa: E402
from tests.integration.web_support import web_client  # noqa: E402

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# milliseconds from the navigation's start; "drawn" is the page's own mark
TIMINGS = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const drawn = performance.getEntriesByName("conveyor:drawn")[0];
  return {server: n.responseStart - n.requestStart, last_byte: n.responseEnd,
          dom_ready: n.domContentLoadedEventEnd, load: n.loadEventEnd,
          first_paint: paint ? paint.startTime : null, drawn: drawn ? drawn.startTime : null,
          bytes: n.transferSize, nodes: document.getElementsByTagName("*").length};
}"""
BROWSER_FIELDS = ("server", "last_byte", "dom_ready", "load", "first_paint", "drawn")


def pipeline(steps: int) -> str:
    lines = ["jobs:", "  a:", "    steps:"]
    for i in range(steps):
        lines += [f"      - id: s{i}", f"        run: echo {i}"]
        if i % 5:
            lines.append(f"        needs: [s{i - 1}]")
    return "\n".join(lines) + "\n"


def timed(get: object, url: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        answer = get(url)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:300]
        size = len(answer.content)
    return statistics.median(times), size


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def in_browser(server: Server, path: str, repeat: int) -> list[dict[str, Any]]:
    """The run page's timings in Chromium, each a new navigation in the same tab (as a
    reader following links; a fresh tab also starts a renderer process, which on two
    busy cores delays the server's answer by hundreds of milliseconds). The first load
    is the page's first since the server started (its plan compiled, its layout
    computed), reported apart: the first of the list returned."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium")
    found = []
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/ui/signin")
        page.get_by_label("API token").fill(server.tokens["viewer"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ui/projects")
        for _ in range(repeat + 1):
            page.goto(f"{server.url}/ui/projects")  # away, so the next load is a navigation
            page.goto(f"{server.url}{path}", wait_until="load")
            # an older page (PYTHONPATH on another checkout) sets no mark
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_function(
                    "() => performance.getEntriesByName('conveyor:drawn').length > 0",
                    timeout=10_000,
                )
            found.append(page.evaluate(TIMINGS))
        browser.close()
    return found


def queue_run(server: Server, steps: int, queued: bool) -> str:
    work = server.data.parent / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(pipeline(steps))
    git(work, "add", "-A")
    git(work, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", "bench")
    git(work, "push", "-q", str(server.data / "projects/demo/repo.git"), "main")
    server.start(workers=0 if queued else 1)
    with server.api("member") as api:
        run_id = str(api.post("/runs", json={"ref": "main"}).json()["id"])
    if not queued:
        started = time.perf_counter()
        status = server.wait_run(run_id, timeout=1800)["status"]
        print(f"run of {steps} steps: {status} in {time.perf_counter() - started:.1f} s")
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="load the run page in Chromium")
    parser.add_argument("--queued", action="store_true", help="a queued run, not a finished one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = make_server(Path(tmp), None)
        server_load = browser_load = ""
        try:
            run_id = queue_run(server, args.steps, args.queued)
            run_path = f"/ui/p/demo/runs/{run_id}"
            # the browser first: its first load is the run page's first since the start
            loads = in_browser(server, run_path, args.repeat) if args.browser else []
            browser_load = load_text()
            with server.api("viewer") as api, web_client(server, "viewer") as page:
                rows = [
                    ("run page", *timed(page.get, run_path, args.repeat)),
                    ("live fragment", *timed(page.get, f"{run_path}/live", args.repeat)),
                    ("runs list", *timed(page.get, "/ui/p/demo", args.repeat)),
                ]
                if not args.queued:  # a step of a queued run has no page yet
                    step = timed(page.get, f"{run_path}/steps/a.s0", args.repeat)
                    rows.append(("step page", *step))
                reference = timed(api.get, f"/runs/{run_id}", args.repeat)
            server_load = load_text()
        finally:
            server.stop()
    kind = "queued" if args.queued else "finished"
    print(f"{kind} run of {args.steps} steps; {server_load}")
    print(f"reference: GET run JSON {reference[0] * 1000:.0f} ms ({reference[1]} bytes)")
    for name, seconds, size in rows:
        ratio = seconds / reference[0]
        print(f"{name:14} {seconds * 1000:7.0f} ms  {size:8} bytes  {ratio:5.1f}x the JSON")
    if loads:
        report_browser(loads, browser_load)


def report_browser(all_loads: list[dict[str, Any]], load: str) -> None:
    first, loads = all_loads[0], all_loads[1:]
    cold = ", ".join(f"{k} {first[k]:.0f} ms" for k in ("server", "drawn") if first[k])
    print(f"run page in Chromium, first load since the server started: {cold}")
    print(f"run page in Chromium, median of {len(loads)} more loads; {load}")
    print(f"  {loads[0]['bytes']} bytes on the wire, {loads[0]['nodes']} elements")
    for field in BROWSER_FIELDS:
        values = [row[field] for row in loads if row[field] is not None]
        if values:
            spread = f"{min(values):.0f}-{max(values):.0f}"
            print(f"  {field:12} {statistics.median(values):7.0f} ms  ({spread})")


if __name__ == "__main__":
    main()
