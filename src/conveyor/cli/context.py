"""What every command shares: the invocation context, JSON output, exit codes.

Imports no click: ``conveyor run``'s own parser (``cli/quick.py``) runs the command
without it; the option decorators import click when a command module applies them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.errors import ParamError

if TYPE_CHECKING:
    import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


class Context:
    def __init__(self, directory: Path, pipeline_file: Path | None) -> None:
        self.directory = directory
        self.pipeline_file = pipeline_file

    def project(self) -> Any:
        from conveyor.sdk.project import Project

        return Project.discover(self.directory, self.pipeline_file)


def param_values(given: Sequence[str]) -> dict[str, str]:
    """``-p name=value`` options as a mapping: the command line is the one place where
    parameters are text; the compiler reads each as its declared type."""
    values: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParamError(f"--param takes name=value, got {item!r}")
        values[name] = value
    return values


def echo(text: str, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed, as ``click.echo`` writes it. click itself
    is asked only for what it would change: text holding an escape sequence (stripped
    when the stream is no terminal) or a stream that is not UTF-8."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    if "\x1b" in text or not str(getattr(stream, "encoding", "")).lower().startswith("utf"):
        import click

        click.echo(text, err=err)
        return
    stream.write(text + "\n")
    stream.flush()


def emit_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def file_option(command: F) -> F:
    """``-f PATH`` after the command name too (``conveyor run -f .drone.yml``)."""
    import click

    def remember(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.find_object(Context).pipeline_file = value  # type: ignore[union-attr]

    decorated: F = click.option(
        "-f",
        "--file",
        "pipeline_file_override",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=remember,
        help="The pipeline file: conveyor.yml, .dotscience.yml, .drone.yml, a DataTorch "
        "file or a Python pipeline (pipeline.py).",
    )(command)
    return decorated


def file_argument(command: F) -> F:
    """An optional ``PIPELINE`` argument, as ``-f`` (``conveyor run pipeline.py``)."""
    import click

    def remember(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.find_object(Context).pipeline_file = value  # type: ignore[union-attr]

    decorated: F = click.argument(
        "pipeline_file_argument",
        metavar="[PIPELINE]",
        required=False,
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=remember,
    )(command)
    return decorated


def write_out(pieces: Iterable[bytes], each: bool = False) -> None:
    """Write bytes to stdout (flushed after each piece with ``each``). A reader that went
    away (``| head``) ends the command quietly with exit 0 (click would exit 1): what
    stdout still buffers goes to /dev/null instead of failing again at exit."""
    out = sys.stdout.buffer
    try:
        for piece in pieces:
            out.write(piece)
            if each:
                out.flush()
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        import click

        raise click.exceptions.Exit(0) from None


def payload_option(command: F) -> F:
    """``--payload FILE.json``: the trigger's event that ``${{ event.* }}`` reads (a
    DataTorch annotator button's file and points, a webhook's body), as ``payload``."""
    import click

    def read(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> dict[str, Any]:
        if value is None:
            return {}
        from conveyor.spec.payload import MAX_BYTES, PayloadError, parse_payload

        try:
            with value.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise PayloadError(f"cannot read the event payload {value}: {exc.strerror}") from None
        return parse_payload(data, str(value))

    decorated: F = click.option(
        "--payload",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        callback=read,
        metavar="FILE.json",
        help="The event that triggered this run, a JSON object: what ${{ event.FIELD }} "
        "reads (e.g. a DataTorch annotator button's fileId and flowData.points).",
    )(command)
    return decorated
