"""``conveyor``: entry point and command definitions.

Imports of the SDK happen inside each command so that ``conveyor --help`` and quick
commands start fast; errors from the domain become one line and an exit code here.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import click

from conveyor.cli.context import EXIT_CANCELLED, Context
from conveyor.errors import ConveyorError

# What a command allocates is mostly what its imports build (modules, classes, functions,
# code): none of it is garbage, yet the collector scans the young generation every 700
# allocations and the older ones with it every ten scans. A first threshold of 20,000 lets
# start-up through with a handful of collections; cycles are still collected.
gc.set_threshold(20_000, 10, 10)

# Built-in command -> the module under conveyor.cli that defines it (in its COMMANDS): a
# command imports its own module only, not every other command's options and imports.
COMMAND_MODULES = {
    **dict.fromkeys(["init", "validate", "plan", "schema", "convert"], "commands_project"),
    **dict.fromkeys(["run", "rerun"], "commands_run"),
    **dict.fromkeys(["runs", "show", "logs", "why", "lineage", "fetch", "gc"], "commands_inspect"),
    **dict.fromkeys(["prune", "verify"], "commands_store"),
    **dict.fromkeys(["pipeline", "job", "datum"], "commands_pipeline"),
    "data": "commands_data",
    **dict.fromkeys(["metrics", "params", "plots"], "commands_tracking"),
    "deploy": "commands_deploy",
}
# Modules that add subcommands to a command defined elsewhere (``runs delete``).
SUBCOMMAND_MODULES = {"runs": ("commands_store", "commands_tracking")}


class _Group(click.Group):
    """Built-in commands, loaded when named, plus those of the ``conveyor.commands``
    entry-point group (the server's)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES, *_plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMAND_MODULES:
            for module in (COMMAND_MODULES[cmd_name], *SUBCOMMAND_MODULES.get(cmd_name, ())):
                name = f"conveyor.cli.{module}"
                __import__(name)  # not importlib.import_module: -X importtime must see it
                for each in sys.modules[name].COMMANDS:
                    self.add_command(each)
            command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _plugin_commands():
            loaded = _plugin_commands()[cmd_name].load()
            if isinstance(loaded, click.Command):
                return loaded
        return command


def _plugin_commands() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {e.name: e for e in entry_points(group="conveyor.commands")}


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Run as if started in this directory.",
)
@click.option(
    "-f",
    "--file",
    "pipeline_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The pipeline file (default: conveyor.yml, .dotscience.yml or .drone.yml in this "
    "directory or a parent).",
)
@click.version_option(package_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, directory: Path, pipeline_file: Path | None) -> None:
    """Conveyor runs the pipeline in your git repository: locally, cached, with provenance.

    \b
    Start here:
      conveyor init            write an example conveyor.yml
      conveyor run             run it (again: unchanged steps come from the cache)
      conveyor show latest     what ran, what was cached, what it produced
      conveyor why STEP        why a step ran again or came from the cache
      conveyor lineage FILE    which step, commit and inputs produced a file
      conveyor data --help     versioned datasets (Pachyderm's repos)

    Exit codes: 0 success, 1 a step failed, 2 bad input, 130 cancelled.
    """
    if not directory.is_dir():
        raise click.BadParameter(f"{directory} is not a directory", param_hint="-C")
    ctx.obj = Context(directory.resolve(), pipeline_file)


def main() -> None:
    """Console-script entry point: maps Conveyor errors to one line and an exit code."""
    try:
        cli.main(standalone_mode=False, prog_name="conveyor")
    except click.exceptions.Abort:
        click.echo("conveyor: aborted", err=True)
        sys.exit(EXIT_CANCELLED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ConveyorError as exc:
        click.echo(f"conveyor: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("conveyor: interrupted", err=True)
        sys.exit(EXIT_CANCELLED)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        click.echo(
            f"conveyor: internal error: {type(exc).__name__}: {exc} "
            "(set CONVEYOR_DEBUG=1 for the traceback and please report it)",
            err=True,
        )
        sys.exit(1)
    finally:
        # The interpreter's exit collects every generation (most objects are modules,
        # classes and functions alive until then): frozen, they are left to the process's end.
        gc.freeze()
