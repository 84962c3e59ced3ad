"""The server warms the run page's code at start (a thread): its first page does not
pay for compiling the templates or importing the layout and the plan compiler."""

from __future__ import annotations

import sys

from conveyor.server.web import render


def test_warm_compiles_the_page_templates_and_imports_what_a_run_page_needs() -> None:
    render._environment.cache_clear()
    render.warm()
    env = render._environment()
    loaded = {key[1] for key in env.cache._mapping} if env.cache is not None else set()
    assert {"base.html", "run.html", "runs.html", "step.html"} <= loaded
    assert "grandalf.layouts" in sys.modules and "conveyor.plan.compile" in sys.modules
