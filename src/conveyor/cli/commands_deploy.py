"""``conveyor deploy``: the project's deployments on its server ([remote] settings)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.context import Context, emit_json
from conveyor.errors import UsageError

if TYPE_CHECKING:
    from conveyor.sdk.deployments_remote import RemoteDeployments

pass_context = click.make_pass_decorator(Context)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
TYPES = ("string", "number", "integer", "boolean", "json", "array", "file")
MAX_SETTINGS = 1024**2
MAX_FILE = 64 * 1024**2


def _remote(ctx: Context) -> RemoteDeployments:
    from conveyor.sdk.deployments_remote import RemoteDeployments
    from conveyor.sdk.remote import RemoteClient

    return RemoteDeployments(RemoteClient.for_project(ctx.project()))


@click.group()
def deploy() -> None:
    """Serve the project's pipeline from its server: as an HTTP endpoint or on a schedule.

    \b
    An endpoint runs the pipeline per call (--mode elastic: a run of the queue) or calls
    its one `python: module:function` step in warm workers (--mode low_latency). Inputs
    come from the call's JSON body; a periodic deployment maps them to constants.
    \b
      conveyor deploy create predict --mode low_latency -i x=integer
      conveyor deploy call predict -i x=3
      conveyor deploy create nightly --kind periodic --schedule '0 3 * * *' -c x=7
      conveyor deploy logs predict
    """


def _pairs(items: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option} takes name=value, got {item!r}")
        pairs.append((name.strip(), value))
    return pairs


def _value(text: str) -> Any:
    """A value from the command line: JSON when it reads as JSON (3, true, [1]), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _settings(
    path: Path | None, inputs: Sequence[str], constants: Sequence[str], given: dict[str, Any]
) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if path is not None:
        if path.stat().st_size > MAX_SETTINGS:
            raise UsageError(f"{path}: a settings file is at most 1 MiB")
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not a JSON object of settings: {exc}") from None
        if not isinstance(settings, dict):
            raise UsageError(f"{path}: not a JSON object of settings")
    mapped = list(settings.get("inputs", []))
    for name, kind in _pairs(inputs, "--input"):
        if kind not in TYPES:
            raise UsageError(f"--input {name}={kind}: the type is one of {', '.join(TYPES)}")
        mapped.append({"name": name, "type": kind})
    for name, text in _pairs(constants, "--constant"):
        value = _value(text)
        kind = _kind(value)
        mapped.append({"name": name, "type": kind, "source": "constant", "value": value})
    if mapped:
        settings["inputs"] = mapped
    settings.update(given)
    return settings


def _given(
    schedule: str | None,
    pool_size: int | None,
    timeout: float | None,
    max_parallel_executions: int | None,
    rate_limit: int | None,
) -> dict[str, Any]:
    """The settings given as options (those left out are not in the mapping)."""
    given = {
        "schedule": schedule,
        "pool_size": pool_size,
        "timeout": timeout,
        "max_parallel_executions": max_parallel_executions,
        "rate_limit": rate_limit,
    }
    return {k: v for k, v in given.items() if v is not None}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "json"


SETTINGS_OPTIONS = [
    click.option(
        "-i",
        "--input",
        "inputs",
        multiple=True,
        metavar="NAME=TYPE",
        help="An input of the call; TYPE: string, number, integer, boolean, json, array or "
        "file (sent as a multipart part: deploy call NAME -i NAME=@PATH).",
    ),
    click.option(
        "-c",
        "--constant",
        "constants",
        multiple=True,
        metavar="NAME=VALUE",
        help="An input with a constant value (JSON, else text).",
    ),
    click.option("--schedule", help="periodic: five cron fields (UTC)."),
    click.option("--pool-size", type=int, help="low_latency: warm workers (default 2)."),
    click.option("--timeout", type=float, help="Seconds a call may take (default 60)."),
    click.option("--max-parallel", "max_parallel_executions", type=int, help="Executions at once."),
    click.option("--rate-limit", type=int, help="Calls a minute (0: no limit)."),
    click.option(
        "--settings",
        "settings_file",
        type=click.Path(path_type=Path, exists=True),
        help="A JSON file of settings (inputs, outputs, ...); options add to it.",
    ),
]


def settings_options(command: Any) -> Any:
    for option in reversed(SETTINGS_OPTIONS):
        command = option(command)
    return command


@deploy.command()
@click.argument("name")
@click.option("--kind", type=click.Choice(["endpoint", "periodic"]), default="endpoint")
@click.option("--mode", type=click.Choice(["elastic", "low_latency"]), default="elastic")
@click.option("--ref", default="main", help="The branch to follow (or tag, commit).")
@click.option("--pin", is_flag=True, help="Serve the ref's commit now; never follow pushes.")
@settings_options
@JSON
@pass_context
def create(
    ctx: Context,
    name: str,
    kind: str,
    mode: str,
    ref: str,
    pin: bool,
    as_json: bool,
    settings_file: Path | None,
    inputs: tuple[str, ...],
    constants: tuple[str, ...],
    schedule: str | None,
    pool_size: int | None,
    timeout: float | None,
    max_parallel_executions: int | None,
    rate_limit: int | None,
) -> None:
    """Create a deployment of the pipeline at REF (leads). An endpoint's token is shown
    once: callers send it as `Authorization: EndpointToken TOKEN`."""
    given = _given(schedule, pool_size, timeout, max_parallel_executions, rate_limit)
    settings = _settings(settings_file, inputs, constants, given)
    body = {"name": name, "kind": kind, "mode": mode, "ref": ref, "pin": pin, "settings": settings}
    answer = _remote(ctx).create(body)
    if as_json:
        emit_json(answer)
        return
    click.echo(f"deployment {answer['name']} serves {answer['commit'][:12]} ({answer['mode']})")
    if answer.get("token"):
        click.echo(f"endpoint token (shown once): {answer['token']}")


@deploy.command(name="list")
@JSON
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """The project's deployments."""
    found = _remote(ctx).list_all()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no deployments yet", err=True)
    for d in found:
        state = "enabled" if d["enabled"] else "disabled"
        ref = d["ref"].removeprefix("refs/heads/")
        click.echo(
            f"{d['name']:20} {d['kind']:9} {d['mode']:12} {state:9} {d['commit'][:12]} {ref}"
        )


@deploy.command()
@click.argument("name")
@JSON
@pass_context
def inspect(ctx: Context, name: str, as_json: bool) -> None:
    """A deployment: its settings, commit and executions by status."""
    emit_json(_remote(ctx).inspect(name))


@deploy.command()
@click.argument("name")
@click.option("--ref", help="Serve this branch, tag or commit from now on.")
@click.option("--pin/--follow", default=None, help="Stop or start following the ref.")
@click.option("--rotate-token", is_flag=True, help="A new endpoint token; the old one stops.")
@settings_options
@JSON
@pass_context
def update(
    ctx: Context,
    name: str,
    ref: str | None,
    pin: bool | None,
    rotate_token: bool,
    as_json: bool,
    settings_file: Path | None,
    inputs: tuple[str, ...],
    constants: tuple[str, ...],
    schedule: str | None,
    pool_size: int | None,
    timeout: float | None,
    max_parallel_executions: int | None,
    rate_limit: int | None,
) -> None:
    """Change a deployment (leads): its ref, its settings, its token. New settings
    replace the old ones as a whole; a warm pool is swapped once the new one is ready."""
    remote = _remote(ctx)
    body: dict[str, Any] = {"ref": ref, "pin": pin}
    given = _given(schedule, pool_size, timeout, max_parallel_executions, rate_limit)
    if settings_file or inputs or constants or given:
        current = remote.inspect(name)["settings"]
        changed = _settings(settings_file, inputs, constants, given)
        body["settings"] = {**current, **changed}
    answer = remote.update(name, {k: v for k, v in body.items() if v is not None})
    if rotate_token:
        answer["token"] = remote.rotate_token(name)["token"]
    if as_json:
        emit_json(answer)
        return
    click.echo(f"deployment {name} serves {answer['commit'][:12]}")
    if rotate_token:
        click.echo(f"new endpoint token (shown once): {answer['token']}")


@deploy.command()
@click.argument("name")
@pass_context
def enable(ctx: Context, name: str) -> None:
    """Take calls (and run on schedule) again."""
    _remote(ctx).enable(name, True)
    click.echo(f"deployment {name} enabled")


@deploy.command()
@click.argument("name")
@pass_context
def disable(ctx: Context, name: str) -> None:
    """Refuse calls and stop the schedule until `deploy enable`."""
    _remote(ctx).enable(name, False)
    click.echo(f"deployment {name} disabled")


@deploy.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_context
def delete(ctx: Context, name: str, yes: bool) -> None:
    """Delete a deployment (leads); its token stops at once."""
    if not yes:
        click.confirm(f"delete deployment {name}?", abort=True)
    _remote(ctx).delete(name)
    click.echo(f"deployment {name} deleted")


@deploy.command()
@click.argument("name")
@click.option("-n", "--limit", default=20, show_default=True, help="Executions to show.")
@JSON
@pass_context
def logs(ctx: Context, name: str, limit: int, as_json: bool) -> None:
    """The latest executions (newest first): caller, status, duration, inputs, outputs, logs."""
    found = _remote(ctx).executions(name, limit)
    if as_json:
        emit_json(found)
        return
    for e in found:
        took = f"{e['duration']:.3f}s" if e["duration"] is not None else "running"
        click.echo(f"── {e['id']} {e['status']} {took} by {e['caller']} at {e['created_at']}")
        click.echo(f"   inputs {json.dumps(e['inputs'])} outputs {json.dumps(e['outputs'])}")
        if e.get("error"):
            click.echo(f"   error: {e['error']}")
        for line in (e.get("logs") or "").splitlines():
            click.echo(f"   │ {line}")


@deploy.command()
@click.argument("name")
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An input (JSON, else text): -i x=3 -i label=cat; a file input: -i model=@FILE.",
)
@JSON
@pass_context
def call(ctx: Context, name: str, inputs: tuple[str, ...], as_json: bool) -> None:
    """Call an endpoint with your API token and print its outputs.

    \b
    A file input is sent with @ and its path (the call is then multipart/form-data):
      conveyor deploy call classify -i image=@cat.png -i top=3
    """
    body: dict[str, Any] = {}
    files: dict[str, Path] = {}
    for key, text in _pairs(inputs, "--input"):
        if text.startswith("@"):
            files[key] = _readable(key, Path(text[1:]))
        else:
            body[key] = _value(text)
    answer = _remote(ctx).call(name, body, files)
    if as_json:
        emit_json(answer)
        return
    emit_json(answer["outputs"])


def _readable(key: str, path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"input {key!r}: {path} is not a file")
    if path.stat().st_size > MAX_FILE:
        raise UsageError(f"input {key!r}: {path} is larger than a call's limit (64 MiB)")
    return path


COMMANDS = [deploy]
