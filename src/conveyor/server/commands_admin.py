"""``conveyor server``'s administration commands (projects, users, tokens, roles, gc) and
the server state they and the server open."""

from __future__ import annotations

import os
from typing import Any

import click

from conveyor.server.config import ServerConfig

_PRIVATE_ENV = ("CONVEYOR_SERVER_KEY", "CONVEYOR_SERVER_DATABASE")


def config_of(ctx: click.Context) -> ServerConfig:
    config: ServerConfig = ctx.obj["server_config"]
    return config


def _need_extra() -> None:
    import importlib.util

    missing = [
        m
        for m in ("fastapi", "uvicorn", "cryptography", "croniter")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        from conveyor.errors import UsageError

        raise UsageError(f"the server needs {', '.join(missing)}: pip install 'conveyor[server]'")


def open_state(config: ServerConfig) -> Any:
    _need_extra()
    from conveyor.server.db.database import open_database
    from conveyor.server.db.recent import share_writes
    from conveyor.server.keyring import Keyring
    from conveyor.server.state import ServerState

    # the database, the key and every project's files are the server user's alone
    config.data.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.data.chmod(0o700)
    share_writes(config.data / "answers.stamp")  # the admin commands' writes reach the server
    state = ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))
    for name in _PRIVATE_ENV:  # steps inherit this process's environment: keep these out
        os.environ.pop(name, None)
    return state


@click.command("add-project")
@click.argument("name")
@click.pass_context
def add_project(ctx: click.Context, name: str) -> None:
    """Create a project and its git remote."""
    from conveyor.server.api_projects import add_project as add
    from conveyor.server.api_projects import git_url

    state = open_state(config_of(ctx))
    add(state, name)
    click.echo(f"project {name}: git remote {git_url(state, name)}")


@click.command("delete-project")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@click.pass_context
def delete_project(ctx: click.Context, name: str, yes: bool, as_json: bool) -> None:
    """Delete project NAME and everything of it: its runs and their records, datasets,
    git repository, members, secrets and schedules. This cannot be undone.

    \b
    Refused, with nothing removed, while one of its runs or Pachyderm triggers is
    queued or running, or while it has deployments: cancel or delete those first.
    The blobs only it used are freed by the next `gc`.

    \b
    Examples:
      conveyor server --data /srv/conveyor delete-project demo
      conveyor server --data /srv/conveyor delete-project demo --yes --json
    """
    import json
    import sys

    from conveyor.errors import UsageError
    from conveyor.server.project_deletion import delete_project as delete

    state = open_state(config_of(ctx))
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"deleting project {name} cannot be undone: pass --yes to do it")
        click.confirm(f"Delete project {name}, its runs, datasets and git repository?", abort=True)
    deleted = delete(state, name)
    if as_json:
        click.echo(json.dumps(deleted.__dict__))
        return
    click.echo(
        f"deleted project {name}: {deleted.runs} run(s), {deleted.datasets} dataset(s); "
        "`conveyor server gc` frees the blobs only it used"
    )


@click.command("add-user")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A server admin: lead of every project.")
@click.pass_context
def add_user(ctx: click.Context, name: str, admin: bool) -> None:
    """Create a user and print their API token (shown only this once)."""
    state = open_state(config_of(ctx))
    _, token = state.db.accounts.add_user(name, admin)
    click.echo(token)


@click.command("new-token")
@click.argument("name")
@click.pass_context
def new_token(ctx: click.Context, name: str) -> None:
    """Print a new API token for a user (shown only this once)."""
    click.echo(open_state(config_of(ctx)).db.accounts.new_token(name))


@click.command("revoke-tokens")
@click.argument("name")
@click.pass_context
def revoke_tokens(ctx: click.Context, name: str) -> None:
    """Invalidate every API token of a user at once (then hand out a new one)."""
    count = open_state(config_of(ctx)).db.accounts.revoke_tokens(name)
    click.echo(f"revoked {count} token(s) of {name}")


@click.command("grant")
@click.argument("project")
@click.argument("user")
@click.argument("role", type=click.Choice(["viewer", "member", "lead"]))
@click.pass_context
def grant(ctx: click.Context, project: str, user: str, role: str) -> None:
    """Give USER a ROLE on PROJECT (lead: settings, members, secrets; member: push, run)."""
    open_state(config_of(ctx)).db.accounts.grant(project, user, role)
    click.echo(f"{user} is {role} of {project}")


@click.command("gc")
@click.option(
    "--grace",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="HOURS",
    help="Keep blobs stored or reused in the last HOURS (runs in progress may need them).",
)
@click.option(
    "--dry-run", is_flag=True, help="Delete nothing: count, and list the object store's blobs."
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts and bytes as JSON.")
@click.pass_context
def gc(ctx: click.Context, grace: float, dry_run: bool, as_json: bool) -> None:
    """Remove blobs of the shared store that no run of any project refers to.

    \b
    Runs are deleted by each project's retention setting (see docs/server.md); this
    frees their blobs: in the data directory's store and, with --store-url, in the
    object store (and this machine's cache of it). Safe while the server and its
    workers run: a blob stored or reused within the grace period is kept. Servers and
    workers sharing a bucket share a database: run gc from one of them.

    \b
    Examples:
      conveyor server --data /srv/conveyor gc --dry-run
      conveyor server --data /srv/conveyor --store-url s3://bucket/blobs gc --json
    """
    import json

    from conveyor.server.gc import MIN_SAFE_GRACE, collect

    config = config_of(ctx)
    state = open_state(config)
    if config.store_url and grace * 3600 < MIN_SAFE_GRACE:
        click.echo(
            f"warning: a grace period under {MIN_SAFE_GRACE / 3600:g} hour may delete an object "
            "a worker is about to record",
            err=True,
        )

    def listed(digest: str, size: int) -> None:
        if dry_run and not as_json:
            click.echo(f"would remove {digest} ({size} bytes) from {config.store_url}")

    def progress(done: int, total: int) -> None:
        if done == total or done % 32 == 0:
            click.echo(f"listing the object store: {done}/{total} directories", err=True)

    result = collect(state, grace * 3600, dry_run, listed, progress)
    local, objects = result.local, result.objects
    if as_json:
        shown = dict(local.__dict__)
        if objects is not None:
            shown["objects"] = objects.to_json()
        click.echo(json.dumps(shown))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {local.removed} blobs ({local.freed_bytes} bytes); kept {local.kept}")
    if objects is not None:
        foreign = f"; left {objects.foreign} keys that name no blob" if objects.foreign else ""
        click.echo(
            f"object store {config.store_url}: {verb} {objects.removed} blobs "
            f"({objects.freed_bytes} bytes); kept {objects.kept} ({objects.young} young){foreign}"
        )


ADMIN_COMMANDS = [add_project, delete_project, add_user, new_token, revoke_tokens, grant, gc]
