"""The run page's steps table: every step is in the page (the live script and a reader
find each), the first ones in the table laid out at once, the rest folded in a closed
<details> that the browser parses but does not lay out."""

from __future__ import annotations

import re
from types import SimpleNamespace

from conveyor.domain.states import RunStatus
from conveyor.server.web.render import _environment
from conveyor.server.web.views import StepLine


def page(count: int, shown: int = 100) -> str:
    run = SimpleNamespace(
        id="r1", status=RunStatus.RUNNING, params={}, commit="c" * 40, trigger="push", who="m"
    )
    steps = [StepLine(f"a.s{i}", "", "a", "pending", False, None, 0, "") for i in range(count)]
    context = {
        "run": run,
        "project": "demo",
        "steps": steps,
        "steps_shown": shown,
        "commit": {},
        "nonce": "n0nce",
        "bars": [],
        "span": 0.0,
        "job_status": {},
        "names": {},
    }
    html: str = _environment().get_template("run.html").render(context)
    return html


def test_a_small_run_lists_its_steps_in_one_table_and_folds_nothing() -> None:
    html = page(3)
    assert re.findall(r'<tr data-step="([^"]+)"', html) == ["a.s0", "a.s1", "a.s2"]
    assert "<details" not in html and html.count('<table class="steps">') == 1


def test_a_big_run_folds_the_steps_after_the_first_hundred() -> None:
    html = page(1000)
    rows = re.findall(r'<tr data-step="([^"]+)"', html)
    assert rows == [f"a.s{i}" for i in range(1000)]  # every step once, in plan order
    first, _, folded = html.partition('<details class="more-steps" id="more-steps">')
    assert first.count("<tr data-step=") == 100 and folded.count("<tr data-step=") == 900
    assert "open" not in folded.split(">", 1)[0]  # closed until the reader opens it
    assert "<summary>The other 900 steps</summary>" in folded
    assert "Steps 101 to 1000" in folded  # the folded table is named for a screen reader
    # each row keeps the cells the live script updates
    for field in ("status", "cached", "exit_code", "attempts", "duration"):
        assert html.count(f'data-field="{field}"') == 1000


def test_the_page_marks_when_its_graph_and_timeline_are_drawn_with_its_nonce() -> None:
    html = page(3)
    script = re.search(r"<script nonce=\"[^\"]*\">([^<]*conveyor:drawn[^<]*)</script>", html)
    assert script, "the run page sets the conveyor:drawn mark from a nonce'd script"
