"""``conveyor run --remote``: queue on the server, follow, print, exit like a local run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from conveyor.cli.context import EXIT_CANCELLED, emit_json
from conveyor.errors import ParamError


def run_remote(
    project: Any, ref: str | None, params: Sequence[str], as_json: bool, detach: bool
) -> int:
    from conveyor.sdk.remote import RemoteClient, current_branch

    client = RemoteClient.for_project(project)
    values = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ParamError(f"--param {item!r} is not NAME=VALUE")
        values[name] = value
    run = client.create_run(ref or current_branch(project), values)
    url = f"{client.settings.url}/api/v1/projects/{client.settings.project}/runs/{run['id']}"
    click.echo(f"run {run['id']} {run['status']} on {client.settings.url} · {url}", err=True)
    if detach:
        if as_json:
            emit_json(run)
        return 0
    shown: set[str] = set()
    for run in client.follow(str(run["id"])):  # noqa: B020 (each yield is the newer state)
        for step in run.get("steps", []):
            if step["status"] in ("queued", "running") or step["id"] in shown:
                continue
            shown.add(step["id"])
            mark = {"succeeded": "✓", "failed": "✗", "skipped": "-"}.get(step["status"], "·")
            cached = " (cached)" if step["cached"] else ""
            click.echo(f"{mark} {step['id']}{cached}  {step['duration'] or 0:.2f}s", err=True)
    click.echo(
        f"run {run['id']} {run['status']}" + (f": {run['error']}" if run["error"] else ""), err=True
    )
    if as_json:
        emit_json(run)
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(run["status"], 1)
