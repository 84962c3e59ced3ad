"""The CLI's command table: which module defines each built-in command, so that a command
imports its own module only (``conveyor run`` does not build ``show``'s options)."""

from __future__ import annotations

import importlib

import click

from conveyor.cli import group


def test_every_built_in_command_is_mapped_to_the_module_that_defines_it() -> None:
    defined = {
        command.name: name
        for name in sorted(set(group.COMMAND_MODULES.values()))
        for command in importlib.import_module(f"conveyor.cli.{name}").COMMANDS
    }
    assert defined == group.COMMAND_MODULES


def test_the_group_lists_and_finds_every_built_in_command() -> None:
    ctx = group.cli.make_context("conveyor", ["--help"], resilient_parsing=True)
    names = group.cli.list_commands(ctx)
    assert set(group.COMMAND_MODULES) <= set(names)
    assert names == sorted(names)
    for name in group.COMMAND_MODULES:
        command = group.cli.get_command(ctx, name)
        assert command is not None and command.name == name
    assert group.cli.get_command(ctx, "no-such-command") is None


def test_a_command_comes_with_the_subcommands_other_modules_add() -> None:
    ctx = group.cli.make_context("conveyor", ["--help"], resilient_parsing=True)
    runs = group.cli.get_command(ctx, "runs")
    assert isinstance(runs, click.Group)
    assert "delete" in runs.list_commands(ctx)
