"""runs, show, logs, why, lineage, fetch, gc."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import click

from conveyor.cli.context import Context, emit_json, write_out

pass_context = click.make_pass_decorator(Context)


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def _took(start: float | None, end: float | None) -> str:
    return f"{end - start:.2f}s" if start is not None and end is not None else "-"


@click.group(invoke_without_command=True)
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--remote", is_flag=True, help="The runs on the project's server.")
@click.pass_context
def runs(click_ctx: click.Context, limit: int, as_json: bool, remote: bool) -> None:
    """List runs, newest first (`runs delete RUN...` deletes runs, `runs compare A B`
    compares them)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    if remote:
        from conveyor.cli.remote import list_remote

        list_remote(ctx.project(), limit, as_json)
        return
    project = ctx.project()
    project.recover_interrupted()
    records = project.records.list_runs(limit)
    if as_json:
        emit_json([r.to_json() for r in records])
        return
    if not records:
        click.echo("no runs yet; start one with `conveyor run`")
        return
    click.echo(
        f"{'#':>5}  {'RUN':12}  {'STATUS':11}  {'STARTED':19}  {'TOOK':>8}  {'COMMIT':13}  PIPELINE"
    )
    for r in records:
        commit = (r.commit or "-")[:12] + ("*" if r.dirty else "")
        number = f"#{r.number}" if r.number is not None else "-"
        click.echo(
            f"{number:>5}  {r.id:12}  {r.status!s:11}  {_when(r.created_at):19}  "
            f"{_took(r.started_at, r.ended_at):>8}  {commit:13}  {r.pipeline}"
        )


@click.command()
@click.argument("run_ref", metavar="RUN", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its steps as JSON.")
@click.option("--remote", is_flag=True, help="A run of the project's server.")
@pass_context
def show(ctx: Context, run_ref: str, as_json: bool, remote: bool) -> None:
    """Show a run: its commit, parameters and every step with its outputs.

    RUN is a run id, a unique prefix of one, its number (`#12`; `12` under 4 digits)
    or `latest` (the default).
    """
    from conveyor.cli.progress import describe
    from conveyor.sdk.inspect import run_json

    project = ctx.project()
    if remote:
        from conveyor.cli.remote import show_remote

        show_remote(project, run_ref, as_json)
        return
    run = project.resolve_run(run_ref)
    if as_json:
        emit_json(run_json(project, run))
        return
    number = f"  #{run.number}" if run.number is not None else ""
    click.echo(f"run       {run.id}{number}  ({run.status})")
    click.echo(f"pipeline  {run.pipeline}  ({run.spec_path})")
    click.echo(f"commit    {run.commit or '-'}" + ("  + uncommitted changes" if run.dirty else ""))
    click.echo(f"started   {_when(run.started_at)}  took {_took(run.started_at, run.ended_at)}")
    click.echo(f"by        {run.who}@{run.host} · {run.executor} executor · {run.trigger}")
    if run.params:
        click.echo("params    " + ", ".join(f"{k}={v}" for k, v in run.params.items()))
    if run.error:
        click.echo(f"note      {run.error}")
    from conveyor.sdk.inspect import _plan_order, ran_on_text, step_extras

    steps = project.records.step_runs(run.id)
    extras = step_extras(project.records, run.id)
    click.echo(f"steps     {len(steps)}")
    for step in sorted(steps, key=_plan_order(steps)):
        click.echo(f"  {step.status!s:9} {step.step_id}  {describe(step)}")
        started = extras.get(step.step_id, {})
        if "image" in started:  # the image asked for, where it ran, and its ID
            image_id = str(started.get("image_id", "")).removeprefix("sha256:")[:12]
            where = " ".join(p for p in (str(started.get("container", "")), image_id) if p)
            click.echo(f"      image {started['image']}  ({where})")
        if ran_on := started.get("ran_on"):  # where the executor ran it: job, slot...
            where = ran_on_text(ran_on)
            click.echo(f"      ran on {started.get('executor', 'its executor')} {where}")
        for output in step.outputs:
            click.echo(f"      > {output.path}  {output.digest[:12]}  {output.size} B")


@click.command()
@click.argument("run_ref", metavar="RUN", default="latest")
@click.argument("step", required=False)
@click.option(
    "--remote", is_flag=True, help="From the project's server (one STEP: follow it while it runs)."
)
@click.option(
    "--tail", type=click.IntRange(min=0), metavar="N", help="Only the last N lines of each log."
)
@click.option(
    "--since",
    metavar="WHEN",
    help="Only the steps that ran since WHEN: a duration before now (10m, 2h, 1d) or an "
    "ISO time (2026-12-02T14:00, local time unless it has a zone).",
)
@pass_context
def logs(
    ctx: Context, run_ref: str, step: str | None, remote: bool, tail: int | None, since: str | None
) -> None:
    """Print the output of a run's steps (or of one STEP), as it was captured."""
    from conveyor.sdk.logs import decoded, parse_since, prefixed, step_logs

    after = parse_since(since, time.time()) if since is not None else None
    project = ctx.project()
    if remote:
        from conveyor.cli.remote import logs_remote

        logs_remote(project, run_ref, step, tail, after)
        return
    run = project.resolve_run(run_ref)
    chosen = step_logs(project.records.step_runs(run.id), run, step, after)
    for log in chosen:  # streamed: memory stays the same whatever the log's size
        texts = decoded(log.chunks(tail))
        write_out((t.encode() for t in texts) if step else prefixed(texts, f"{log.step_id} │ "))
    if chosen:
        return
    if after is not None:
        when = _when(after)
        what = f"step {step} of run {run.id} last ran" if step else f"no step of run {run.id} ran"
        click.echo(f"{what} before {when}" if step else f"{what} since {when}", err=True)
    elif not step:
        click.echo(f"run {run.id} has no step logs (every step was cached or skipped)", err=True)


@click.command()
@click.argument("step")
@click.option("--run", "run_ref", default="latest", show_default=True, help="The run to explain.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@pass_context
def why(ctx: Context, step: str, run_ref: str, as_json: bool) -> None:
    """Explain why STEP was a cache hit or a miss: which part of its fingerprint changed."""
    from conveyor.sdk.inspect import why as explain

    result = explain(ctx.project(), step, run_ref)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(f"{result.step_id} in run {result.run_id}: cache {result.verdict}")
    for reason in result.reasons:
        click.echo(f"  - {reason}")


@click.command()
@click.argument("target", metavar="PATH_OR_DIGEST")
@click.option("--json", "as_json", is_flag=True, help="Print the lineage as JSON.")
@pass_context
def lineage(ctx: Context, target: str, as_json: bool) -> None:
    """Show which step run, commit, inputs and parameters produced a file, and what read it.

    A dataset file (NAME@REF:PATH) shows the dataset commit it is read from, the commit
    that brought its content, and their provenance."""
    if _dataset_target(target):
        _dataset_lineage(ctx, target, as_json)
        return
    from conveyor.sdk.inspect import lineage as trace
    from conveyor.sdk.inspect import ran_on_text

    data = trace(ctx.project(), target)
    if as_json:
        emit_json(data)
        return
    click.echo(f"{data['path'] or ''} {data['digest']}".strip())
    for p in data["produced_by"]:
        dirty = " + uncommitted changes" if p["dirty"] else ""
        inside = f" (in its output {p['path']})" if data["path"] not in (None, p["path"]) else ""
        click.echo(
            f"  produced by {p['step']}{inside} in run {p['run']} "
            f"at commit {(p['commit'] or '-')[:12]}{dirty}"
        )
        click.echo(f"    command: {p['command']}")
        if p.get("ran_on"):
            where = ran_on_text(p["ran_on"])
            click.echo(f"    ran on:  {p.get('executor') or 'its executor'} {where}")
        if p["params"]:
            click.echo("    params:  " + ", ".join(f"{k}={v}" for k, v in p["params"].items()))
        for item in p["inputs"]:
            click.echo(f"    input:   {item['path']}  {item['digest'][:12]}")
        for d in p["datasets"]:
            click.echo(
                f"    dataset: {d['dataset']}@{d['commit']} at {d['path']} "
                f"(the pipeline's {d['ref']}; {len(d['inputs'])} inputs)"
            )
        for up, outs in p["upstream"].items():
            for path, digest in outs.items():
                click.echo(f"    from:    {up} {path}  {digest[:12]}")
    for c in data["consumed_by"]:
        click.echo(f"  read by {c['step']} in run {c['run']} (as {c['path']})")
    if not data["consumed_by"]:
        click.echo("  read by no recorded step run")


@click.command()
@click.argument("run_ref", metavar="RUN", default="latest")
@click.option(
    "--to",
    "destination",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (default: the project).",
)
@click.option(
    "--link", is_flag=True, help="Hard-link read-only files from the store instead of copying."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was fetched as JSON.")
@click.option("--remote", is_flag=True, help="Download RUN's outputs from the project's server.")
@pass_context
def fetch(
    ctx: Context, run_ref: str, destination: Path | None, link: bool, as_json: bool, remote: bool
) -> None:
    """Check out the outputs of RUN from the store (default: into the project)."""
    from conveyor.sdk.maintenance import fetch_outputs

    project = ctx.project()
    if not remote and project.settings.remote is not None:
        from conveyor.domain.runrefs import run_number
        from conveyor.errors import NotFoundError

        try:  # a run this clone does not know may be one of the server's
            project.resolve_run(run_ref)
        except NotFoundError:
            # but a number is this clone's (the server's #N is another run: --remote)
            if run_number(run_ref) is not None:
                raise
            remote = True
    if remote:
        from conveyor.sdk.remote import RemoteClient

        target = destination or project.root
        client = RemoteClient.for_project(project)
        run_id = str(client.get_run(run_ref)["id"])  # `latest` or a prefix: the server's run
        count = client.download(run_id, target)
        url = client.page_url(run_id)
        if as_json:
            emit_json({"run": run_id, "files": count, "destination": str(target), "url": url})
        else:
            click.echo(f"fetched {count} files of run {run_id} into {target} · {url}")
        return

    result = fetch_outputs(project, run_ref, destination, "link" if link else "copy")
    if as_json:
        emit_json(
            {"run": result.run.id, "files": result.files, "destination": str(result.destination)}
        )
    else:
        click.echo(f"fetched {result.files} files of run {result.run.id} into {result.destination}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def gc(ctx: Context, dry_run: bool, as_json: bool) -> None:
    """Remove blobs from the store that no recorded output refers to.

    \b
    Blobs stay as long as a run refers to them: delete runs first with
    `conveyor runs delete RUN...` or `conveyor prune --keep-last N`, then gc.
    """
    from conveyor.sdk.maintenance import collect_garbage

    result = collect_garbage(ctx.project(), dry_run)
    if as_json:
        emit_json(result.__dict__)
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {result.removed} blobs ({result.freed_bytes} bytes); kept {result.kept}")
    sys.exit(0)


COMMANDS = [runs, show, logs, why, lineage, fetch, gc]


def _dataset_target(target: str) -> bool:
    """``NAME@REF[:PATH]`` or ``NAME:PATH`` (NAME a dataset name), not a file here."""
    from conveyor.sdk.datasets.refs import names_dataset

    return names_dataset(target) and not Path(target).exists()


def _dataset_lineage(ctx: Context, target: str, as_json: bool) -> None:
    from conveyor.sdk.datasets.lineage import commit_lineage
    from conveyor.sdk.datasets.refs import parse_ref
    from conveyor.sdk.datasets.service import Datasets

    project = ctx.project()
    ref = parse_ref(target)
    data = Datasets(project).lineage(ref)
    from conveyor.sdk.pachyderm_jobs import Pipelines

    jobs = Pipelines(project).jobs(None)
    data.update(commit_lineage(project.records, ref.dataset, data["commit"]["id"], ref.path, jobs))
    if as_json:
        emit_json(data)
        return
    c, since = data["commit"], data["introduced_by"]
    what = f"{data['digest'][:12]}" if data["digest"] else f"{data['files']} files"
    click.echo(f"{data['dataset']}:{data['path']} {what}")
    click.echo(f"  in dataset commit {c['id']} ({c['branch']}, {c['created_at']})")
    click.echo(f"  content since commit {since['id']} ({since['created_at']}): {since['message']}")
    provenance = since["provenance"]
    click.echo(f"  provenance: {provenance or '(none: put by hand)'}")
    for up in data["upstream"]:
        into = up["into"]
        click.echo(
            f"  from:    {up['dataset']}@{up['commit']} (into {into['dataset']}@"
            f"{into['commit'][:12]} by pipeline {up['pipeline']}, job {(up['job'] or '-')[:12]})"
        )
    for run in data["read_by"]:
        steps = ", ".join(s["step"] for s in run["steps"]) or "no step read these files"
        click.echo(f"  read by run {run['run']} at {run['path']} ({run['ref']}): {steps}")
    for made in data["made_into"]:
        click.echo(
            f"  made into {made['dataset']}@{made['commit']} "
            f"by pipeline {made['pipeline']}, job {(made['job'] or '-')[:12]}"
        )
    for job in data["jobs"]:
        made = f", commit {job['output_commit']}" if job["output_commit"] else ""
        click.echo(
            f"  read by job {job['job']} of pipeline {job['pipeline']} ({job['state']}{made})"
        )
    if not data["read_by"] and not data["jobs"]:
        click.echo("  read by no recorded run or pipeline job")
