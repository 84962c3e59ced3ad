"""The CLI against a server: ``run``, ``runs``, ``show`` and ``logs`` with ``--remote``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from conveyor.cli.context import EXIT_CANCELLED, emit_json, param_values, write_out


def run_remote(
    project: Any, ref: str | None, params: Sequence[str], as_json: bool, detach: bool
) -> int:
    from conveyor.sdk.remote import RemoteClient, current_branch

    client = RemoteClient.for_project(project)
    values = param_values(params)
    ref = ref or current_branch(project)
    client.check_pushed(project.root, ref)
    run = client.create_run(ref, values)
    url = client.page_url(str(run["id"]))  # every line naming the run gives its page
    click.echo(f"run {run['id']} {run['status']} on {client.settings.url} · {url}", err=True)
    if detach:
        if as_json:
            emit_json({**run, "url": url})
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
    error = f": {run['error']}" if run["error"] else ""
    click.echo(f"run {run['id']} {run['status']}{error} · {url}", err=True)
    if as_json:
        emit_json({**run, "url": url})
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(run["status"], 1)


def list_remote(project: Any, limit: int, as_json: bool) -> None:
    from conveyor.sdk.remote import RemoteClient

    client = RemoteClient.for_project(project)
    runs = [{**r, "url": client.page_url(str(r["id"]))} for r in client.list_runs(limit)]
    if as_json:
        emit_json(runs)
        return
    if not runs:
        click.echo("no runs yet on the server", err=True)
    for r in runs:
        ref = r["ref"].removeprefix("refs/heads/")
        number = f"#{r['number']}" if r.get("number") is not None else "-"
        click.echo(
            f"{number:>5}  {r['id']:12}  {r['status']:11}  {r['trigger']:14}  {r['commit'][:12]}"
            f"  {ref}  {r['who']}  {r['url']}"
        )


def show_remote(project: Any, run_ref: str, as_json: bool) -> None:
    """``show RUN --remote``: the server's run (``show --json``'s shape) and its page."""
    from conveyor.sdk.inspect import ran_on_text
    from conveyor.sdk.remote import RemoteClient

    client = RemoteClient.for_project(project)
    run = client.get_run(run_ref)
    url = client.page_url(str(run["id"]))
    if as_json:
        emit_json({**run, "url": url})
        return
    number = f"  #{run['number']}" if run.get("number") is not None else ""
    click.echo(f"run       {run['id']}{number}  ({run['status']}) · {url}")
    click.echo(f"pipeline  {run.get('pipeline') or '-'}  ({run.get('pipeline_file') or '-'})")
    click.echo(f"commit    {run['commit']}  ({run['ref'].removeprefix('refs/heads/')})")
    click.echo(f"by        {run['who']} · {run.get('executor') or '-'} executor · {run['trigger']}")
    if run["error"]:
        click.echo(f"note      {run['error']}")
    for read in run.get("datasets", []):
        click.echo(f"dataset   {read['path']}: {read['dataset']}@{read['commit']} ({read['ref']})")
    click.echo(f"steps     {len(run.get('steps', []))}")
    for step in run.get("steps", []):
        cached = " (cached)" if step["cached"] else ""
        click.echo(f"  {step['status']:9} {step['id']}{cached}")
        if step.get("ran_on"):
            where = ran_on_text(step["ran_on"])
            click.echo(f"      ran on {step.get('executor') or 'its executor'} {where}")


def logs_remote(
    project: Any, run_ref: str, step: str | None, tail: int | None, since: float | None
) -> None:
    from conveyor.sdk.logs import prefixed
    from conveyor.sdk.remote import RemoteClient

    client = RemoteClient.for_project(project)
    run = client.get_run(run_ref)
    steps = [step] if step else [s["id"] for s in run.get("steps", []) if s.get("log")]
    for step_id in steps:
        texts = client.stream_log(run["id"], step_id, tail, since)
        pieces = (t.encode() for t in texts) if step else prefixed(texts, f"{step_id} │ ")
        write_out(pieces, each=True)  # a followed log shows each line as it comes
