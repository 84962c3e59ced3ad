"""``trigger/circleci``: start a downstream pipeline through the CircleCI v2 API.

``POST {base_url}/api/v2/project/{slug}/pipeline`` with the ``Circle-Token`` header.
Settings: ``token`` (usually ``from_secret``; or ``CIRCLECI_TOKEN``), the project as
``slug`` (``gh/org/repo``) or ``username`` + ``project`` (+ ``vcs``, default ``gh``; the
Dotscience plugin's settings), ``branch`` (default ``main``), ``parameters`` (a mapping
of pipeline parameters), ``base_url`` (default ``https://circleci.com``).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from conveyor.plugins._contract import RunFacts, SettingError, Settings, main, post_json

DEFAULT_BASE = "https://circleci.com"


def project_slug(settings: Settings) -> str:
    slug = settings.get("slug") or settings.get("project_slug")
    if slug:
        return slug
    username, project = settings.get("username"), settings.get("project")
    if not username or not project:
        raise SettingError(
            "the project is missing: set slug (gh/org/repo), or username and project"
        )
    return f"{settings.get('vcs') or 'gh'}/{username}/{project}"


def trigger(settings: Settings, run: RunFacts) -> str:
    token = settings.require("token", "CIRCLECI_TOKEN")
    slug = project_slug(settings)
    base = (settings.get("base_url") or DEFAULT_BASE).rstrip("/")
    url = f"{base}/api/v2/project/{urllib.parse.quote(slug, safe='/')}/pipeline"
    body: dict[str, Any] = {"branch": settings.get("branch") or "main"}
    parameters = settings.json_object("parameters")
    if parameters:
        body["parameters"] = parameters
    _, text = post_json(url, body, {"Circle-Token": token}, timeout=settings.timeout())
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:
        answer = {}
    number = answer.get("number") if isinstance(answer, dict) else None
    started = f"pipeline {number}" if number is not None else "a pipeline"
    return f"started {started} of {slug} on branch {body['branch']} (after run {run.run_id})"


if __name__ == "__main__":
    main("circleci", trigger)
