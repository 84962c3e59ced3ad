"""``webhook`` (also ``plugins/webhook``): an HTTP POST with a JSON body.

Settings: ``urls`` (one or more, comma-separated; or ``url``), ``body`` (a mapping sent
as given, or text in which ``{run_id}``, ``{status}``, ``{commit}``, ``{pipeline}``,
``{duration}``, ``{step}`` are replaced; default: the run's id, pipeline, status,
commit, step and duration), ``headers`` (a mapping, or ``Name=value`` items),
``method`` (default ``POST``).
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.plugins._contract import (
    RunFacts,
    SettingError,
    Settings,
    fill,
    main,
    post_json,
)


def default_body(run: RunFacts) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "status": run.status,
        "commit": run.commit,
        "step": run.step,
        "duration": None if run.duration is None else round(run.duration, 3),
    }


def body_of(settings: Settings, run: RunFacts) -> object:
    text = settings.get("body") or settings.get("template")
    if text is None:
        return default_body(run)
    filled = fill(text, run.placeholders(""))
    try:
        return json.loads(filled)
    except json.JSONDecodeError:
        return filled  # plain text: sent as a JSON string


def headers_of(settings: Settings) -> dict[str, str]:
    text = settings.get("headers")
    if not text:
        return {}
    if text.lstrip().startswith("{"):
        found = settings.json_object("headers") or {}
        return {str(k): str(v) for k, v in found.items()}
    headers = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SettingError(f"the header {item!r} is not Name=value")
        headers[name.strip()] = value.strip()
    return headers


def send(settings: Settings, run: RunFacts) -> str:
    urls = [u.strip() for u in settings.require("urls", "PLUGIN_URL").split(",") if u.strip()]
    body = body_of(settings, run)
    headers = headers_of(settings)
    method = (settings.get("method") or "POST").upper()
    for url in urls:
        post_json(url, body, headers, timeout=settings.timeout(), method=method)
    return f"sent the {run.status} of run {run.run_id} to {len(urls)} URL(s)"


if __name__ == "__main__":
    main("webhook", send)
