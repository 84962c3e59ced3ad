"""``notify/slack`` (also ``plugins/slack``): the run's status, duration and link, posted
to a Slack incoming webhook.

Settings: ``webhook`` (the URL, usually ``from_secret``; or the ``SLACK_WEBHOOK``
variable), optional ``channel``, ``username``, ``icon_emoji``, ``link`` (the run's page:
``{run_id}`` is replaced; default ``CONVEYOR_RUN_URL``, else ``conveyor show <run>``) and
``template`` (the message text, with ``{status}``, ``{duration}``, ``{link}``,
``{run_id}``, ``{pipeline}``, ``{commit}``, ``{short_commit}``, ``{step}``).
"""

from __future__ import annotations

from typing import Any

from conveyor.plugins._contract import RunFacts, Settings, fill, main, post_json

DEFAULT_TEMPLATE = "{icon} {pipeline} run {run_id} {verb} in {duration} ({short_commit}): {link}"


def notify(settings: Settings, run: RunFacts) -> str:
    url = settings.require("webhook", "SLACK_WEBHOOK")
    link = run_link(settings, run)
    values = run.placeholders(link)
    ok = run.status == "success"
    values["icon"] = ":white_check_mark:" if ok else ":x:"
    values["verb"] = "succeeded" if ok else "failed" if run.status == "failure" else run.status
    body: dict[str, Any] = {"text": fill(settings.get("template") or DEFAULT_TEMPLATE, values)}
    for key in ("channel", "username", "icon_emoji"):
        value = settings.get(key)
        if value:
            body[key] = value
    post_json(url, body, timeout=settings.timeout())
    return f"posted the {run.status} of run {run.run_id} to Slack"


def run_link(settings: Settings, run: RunFacts) -> str:
    template = settings.get("link", "CONVEYOR_RUN_URL")
    if template:
        return fill(template, {"run_id": run.run_id})
    return f"conveyor show {run.run_id}"


if __name__ == "__main__":
    main("slack", notify)
