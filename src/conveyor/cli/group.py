"""The click command group: every command, its options, help and usage errors.

``conveyor run`` in its common forms is parsed without it (``cli/quick.py``); anything
else comes here, through ``cli/main.py``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from conveyor.cli.context import Context

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

    def invoke(self, ctx: click.Context) -> None:
        # A callback's return value is dropped: outside standalone mode click's ``main``
        # returns it, as it returns an ``Exit``'s code, and only the latter is an exit code.
        super().invoke(ctx)


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


def run_click(args: list[str] | None = None) -> int:
    """Run the group on ``args`` (default: the process's arguments) and return the code a
    command asked for with ``ctx.exit(n)`` (0 when it just returned); other errors propagate."""
    code = cli.main(args=args, standalone_mode=False, prog_name="conveyor")
    return code if isinstance(code, int) else 0


def click_main() -> None:
    """The full command line through click (errors propagate to ``main``'s mapping)."""
    code = run_click()
    if code:
        sys.exit(code)
