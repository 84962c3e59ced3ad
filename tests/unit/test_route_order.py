"""The server tries its hottest routes first (the health check, the deployments'
calls): none of them may take a request meant for a route that comes after it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from conveyor.server.app import create_app


def _routes() -> list[Any]:
    """Every route in the order a request tries them (included routers unfolded)."""
    state: Any = SimpleNamespace(config=SimpleNamespace(workers=0))
    return [r for r in _unfold(create_app(state, workers=0).router.routes) if r.path_regex]


def _unfold(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "effective_candidates"):  # an included router
            yield from _unfold(route.effective_candidates())
        elif hasattr(route, "path_regex"):
            yield route


def _path(route: Any) -> str:
    return str(getattr(route, "path_format", None) or route.path)


def _concrete(path: str) -> str:
    """A path the route serves: each parameter filled in."""
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else "x", path)


def test_the_call_and_health_routes_come_first() -> None:
    paths = [_path(r) for r in _routes()][:20]
    assert "/api/v1/health" in paths
    assert "/api/v1/projects/{project}/deployments/{deployment}/call" in paths


def test_no_route_tried_first_shadows_a_later_one() -> None:
    routes = _routes()
    first = [
        r
        for r in routes
        if r.path.startswith(("/api/v1/health", "/api/v1/projects/{project}/deployments"))
    ]
    for early in first:
        for later in routes[routes.index(early) + 1 :]:
            if later in first or not set(getattr(later, "methods", ()) or ()) & early.methods:
                continue
            shadowed = early.path_regex.fullmatch(_concrete(_path(later)))
            assert not shadowed, (_path(early), _path(later))
