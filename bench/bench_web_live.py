"""Web page responsiveness: a 1,000-step run's page open in Chromium while 100 steps a
second change status in the records.

    python bench/bench_web_live.py [--steps 1000] [--rate 100] [--seconds 20]

Needs Chromium (``CONVEYOR_CHROMIUM``, scripts/engines/chromium.sh) and Playwright.
Starts a real ``conveyor server`` (SQLite, no worker) with a pipeline of ``--steps``
steps, queues a run, opens its page as a signed-in viewer, then plays the worker: a
writer thread marks ``--rate`` step changes a second in the server's records (half of
them a step starting, half a step started a second earlier finishing; one transaction
every 20 ms, as the runner batches its writes). It reports:

- live update latency: from the commit of a step's new status to the class change of
  its status cell in the page's DOM (a MutationObserver; both clocks are this
  machine's epoch clock), median, p99 and max;
- main-thread long tasks (the Long Tasks API: tasks over 50 ms): count, total, longest;
- the live endpoint's server time: ``responseStart - requestStart`` of the page's own
  polls (Resource Timing), median and p99, and the fragment's size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_web import pipeline  # noqa: E402
from tests.integration.server_support import git, make_server  # noqa: E402

from conveyor.domain.states import RunStatus, StepStatus  # noqa: E402
from conveyor.metadata.records import RunRecord, StepRunRecord  # noqa: E402
from conveyor.metadata.repository import WriteBatch  # noqa: E402
from conveyor.metadata.sql import open_repository  # noqa: E402

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WATCH = """() => {
  window.__changes = [];
  window.__long = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { window.__long.push(e.duration); }
  }).observe({ type: "longtask", buffered: true });
  const origin = performance.timeOrigin;
  new MutationObserver((records) => {
    const at = origin + performance.now();
    for (const r of records) {
      const row = r.target.closest("tr[data-step]");
      if (!row) { continue; }
      const m = /s-(running|succeeded)/.exec(r.target.className);
      if (m) { window.__changes.push([row.getAttribute("data-step"), m[1], at]); }
    }
  }).observe(document.getElementById("steps"), {  // the folded rows too
    subtree: true, attributes: true, attributeFilter: ["class"] });
}"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def writer(
    url: str, run_id: str, steps: int, rate: int, seconds: float, out: dict[tuple[str, str], float]
) -> None:
    """Start ``rate / 2`` steps a second and finish each one second later."""
    records = open_repository(url)
    tick, per_tick = 0.02, rate * 0.02 / 2
    started: list[tuple[str, float]] = []
    begin = time.time()
    next_step, owed = 0, 0.0
    while time.time() - begin < seconds and next_step < steps:
        batch, now = WriteBatch(), time.time()
        owed += per_tick
        changes: list[tuple[str, str]] = []
        while owed >= 1 and next_step < steps:
            owed -= 1
            sid = f"a.s{next_step}"
            next_step += 1
            batch.put_step_run(StepRunRecord(run_id, sid, "a", StepStatus.RUNNING, started_at=now))
            started.append((sid, now))
            changes.append((sid, "running"))
        while started and now - started[0][1] >= 1.0 and len(changes) < rate:
            sid, at = started.pop(0)
            done = StepRunRecord(
                run_id, sid, "a", StepStatus.SUCCEEDED, exit_code=0, started_at=at, ended_at=now
            )
            batch.put_step_run(done)
            changes.append((sid, "succeeded"))
        if batch:
            records.write(batch)
            committed = time.time()
            for change in changes:
                out[change] = committed
        time.sleep(max(0.0, tick - (time.time() - now)))
    records.close()


def setup(tmp: Path, steps: int) -> tuple[Any, str, str]:
    """A server with the pipeline pushed and a queued run, recorded as running: the
    server, the run's id and the records' database URL."""
    server = make_server(tmp, None)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text(pipeline(steps))
    git(work, "add", "-A")
    git(work, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", "bench")
    git(work, "push", "-q", str(server.data / "projects/demo/repo.git"), "main")
    server.start(workers=0)  # this script plays the worker
    url = f"sqlite:///{server.data / 'server.db'}"
    with server.api("member") as api:
        run_id = str(api.post("/runs", json={"ref": "main"}).json()["id"])
    records = open_repository(url)
    records.create_run(
        RunRecord(run_id, "conveyor.yml", RunStatus.RUNNING, None, False, time.time())
    )
    records.close()
    return server, run_id, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100, help="step changes a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory() as tmp:
        server, run_id, url = setup(Path(tmp), args.steps)
        written: dict[tuple[str, str], float] = {}
        try:
            with sync_playwright() as play:
                browser = play.chromium.launch(executable_path=chromium, args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{server.url}/ui/signin")
                page.get_by_label("API token").fill(server.tokens["viewer"])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/ui/projects")
                started = time.perf_counter()
                page.goto(f"{server.url}/ui/p/demo/runs/{run_id}")
                page.wait_for_selector('tr[data-step="a.s0"]')
                load = time.perf_counter() - started
                navigation = page.evaluate(
                    """() => { const n = performance.getEntriesByType("navigation")[0];
                      return [n.responseStart - n.requestStart, n.domContentLoadedEventEnd]; }"""
                )
                page.evaluate(WATCH)
                page.wait_for_timeout(1500)  # a poll or two before the writer starts
                thread = threading.Thread(
                    target=writer,
                    args=(url, run_id, args.steps, args.rate, args.seconds, written),
                )
                thread.start()
                thread.join()
                page.wait_for_timeout(2500)  # the last polls
                seen: list[list[Any]] = page.evaluate("window.__changes")
                long_tasks: list[float] = page.evaluate("window.__long")
                polls: list[list[float]] = page.evaluate(
                    """() => performance.getEntriesByType("resource")
                      .filter((e) => e.name.endsWith("/live"))
                      .map((e) => [e.responseStart - e.requestStart, e.encodedBodySize])"""
                )
                browser.close()
        finally:
            server.stop()
    print(
        f"run page: server time {navigation[0]:.0f} ms, DOM ready {navigation[1]:.0f} ms "
        "after the navigation started"
    )
    report(args.steps, args.seconds, load, written, seen, long_tasks, polls)


def report(
    steps: int,
    seconds: float,
    load: float,
    written: dict[tuple[str, str], float],
    seen: list[list[Any]],
    long_tasks: list[float],
    polls: list[list[float]],
) -> None:
    shown: dict[tuple[str, str], float] = {}
    for step, status, at in seen:  # the first time the cell showed it (rewrites come later)
        shown.setdefault((step, status), at / 1000)
    latencies = [(shown[k] - t) * 1000 for k, t in written.items() if k in shown]
    missing = len(written) - len(latencies)
    print(f"run page of {steps} steps loaded in {load * 1000:.0f} ms (to the step table)")
    print(
        f"{len(written)} status changes in {seconds:.0f} s "
        f"({len(written) / seconds:.0f}/s); {missing} never shown"
    )
    print(
        f"live update latency: median {statistics.median(latencies):.0f} ms, "
        f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms"
    )
    print(
        f"long tasks: {len(long_tasks)}, total {sum(long_tasks):.0f} ms, "
        f"longest {max(long_tasks, default=0):.0f} ms"
    )
    server_ms = [p[0] for p in polls if p[0] > 0]
    print(
        f"live endpoint: {len(polls)} polls, server time median "
        f"{statistics.median(server_ms):.0f} ms, p99 {percentile(server_ms, 0.99):.0f} ms, "
        f"{max(p[1] for p in polls) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
