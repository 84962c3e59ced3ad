"""runs delete, prune, verify: making the store smaller, and checking it."""

from __future__ import annotations

import sys
from typing import Any

import click

from conveyor.cli.commands_inspect import runs
from conveyor.cli.context import Context, emit_json

pass_context = click.make_pass_decorator(Context)


def _report(result: Any, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    did = f"would {verb}" if result.dry_run else f"{verb}d"
    click.echo(f"{did} {len(result.deleted)} runs; kept {result.kept}")
    for run_id in result.deleted:
        click.echo(f"  - {run_id}")
    for run_id, why in result.protected.items():
        click.echo(f"  kept {run_id}: {why}")
    if result.deleted and not result.dry_run:
        click.echo("next: `conveyor gc` frees the blobs no kept run refers to")


@runs.command("delete")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Only say which runs would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def delete(ctx: Context, run_refs: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Delete runs (ids, unique id prefixes or `latest`) and their records and logs.

    \b
    The store's blobs are freed by the next `conveyor gc`, once no kept run refers to
    them. A run is never deleted while it is in progress, while the workspace holds
    outputs it recorded, or while a kept run restored outputs it produced from the
    cache; nothing is deleted if any RUN is unknown or kept.

    \b
    Example:
      conveyor runs delete 3f2a9c 77b1 --dry-run
    """
    from conveyor.sdk.retention import delete_runs

    _report(delete_runs(ctx.project(), run_refs, dry_run), as_json, "delete")


@click.command()
@click.option(
    "--keep-last", type=click.IntRange(min=0), metavar="N", help="Keep the N newest runs."
)
@click.option(
    "--keep-days", type=click.FloatRange(min=0), metavar="D", help="Keep runs younger than D days."
)
@click.option(
    "--keep-branch",
    "keep_branches",
    multiple=True,
    metavar="NAME",
    help="Keep runs of commits in this branch's history (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Only say which runs would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def prune(
    ctx: Context,
    keep_last: int | None,
    keep_days: float | None,
    keep_branches: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete the runs a retention policy does not keep; then `conveyor gc` frees space.

    \b
    A run is kept when any rule keeps it. Without options the [retention] table of
    .conveyor/config.toml applies (keep_last, keep_days, keep_branches). Runs in
    progress, runs whose outputs the workspace holds and runs kept runs took cache
    hits from are always kept.

    \b
    Examples:
      conveyor prune --keep-last 20 --keep-branch main --dry-run
      conveyor prune --keep-days 7 && conveyor gc
    """
    from conveyor.errors import UsageError
    from conveyor.sdk.retention import prune as prune_runs
    from conveyor.sdk.settings import RetentionPolicy

    project = ctx.project()
    for branch in keep_branches:
        if not branch or branch.startswith("-"):
            raise UsageError(f"--keep-branch {branch!r} is not a branch name")
    policy = RetentionPolicy(keep_last, keep_days, keep_branches)
    if policy.empty:
        policy = project.settings.retention
    _report(prune_runs(project, policy, dry_run), as_json, "delete")


@click.command()
@click.option("--repair", is_flag=True, help="Move damaged blobs to the store's quarantine/.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def verify(ctx: Context, repair: bool, as_json: bool) -> None:
    """Rehash every blob of the store and report those whose content no longer matches
    their name (exit code 1 when any is damaged or missing and not repaired).

    \b
    With --repair, damaged blobs move to quarantine/ in the store: a step whose cache
    entry needs one runs again instead of restoring it. Restores check what they write
    on their own; verify finds damage before a run does.
    """
    from conveyor.sdk.maintenance import verify_store

    project = ctx.project()
    if sys.stderr.isatty() and not as_json:  # a bar on a terminal; silence in a pipe
        with click.progressbar(length=1, label="verifying", file=sys.stderr, show_pos=True) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            result = verify_store(project, repair, progress)
    else:
        result = verify_store(project, repair)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(f"checked {result.checked} blobs ({result.checked_bytes} bytes)")
        for digest in result.damaged:
            moved = " (quarantined)" if digest in result.quarantined else ""
            click.echo(f"damaged {digest}{moved}")
        for digest in result.missing:
            click.echo(f"missing {digest} (a kept run refers to it)")
        if result.damaged and not repair:
            click.echo("next: `conveyor verify --repair` quarantines the damaged blobs")
    if (result.damaged and not repair) or result.missing:
        sys.exit(1)


COMMANDS = [prune, verify]
