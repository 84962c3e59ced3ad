"""The CLI's command table: which module defines each built-in command, so that a command
imports its own module only (``conveyor run`` does not build ``show``'s options)."""

from __future__ import annotations

import importlib
import sys

import click
import pytest

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


@click.command("exits")
@click.pass_context
def _exits(ctx: click.Context) -> None:
    ctx.exit(3)


@click.command("returns")
def _returns() -> int:
    return 5  # a value, not an exit code: click's commands end through ctx.exit or errors


def _exit_code(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    from conveyor.cli import main

    monkeypatch.setitem(group.cli.commands, "exits", _exits)
    monkeypatch.setitem(group.cli.commands, "returns", _returns)
    monkeypatch.setattr(main.gc, "freeze", lambda: None)  # main's last act, for a process
    monkeypatch.setattr(sys, "argv", ["conveyor", *argv])
    try:
        main.main()
    except SystemExit as exc:
        assert isinstance(exc.code, int | None)
        return exc.code or 0
    return 0


def test_a_command_that_calls_ctx_exit_ends_with_its_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _exit_code(["exits"], monkeypatch) == 3


def test_a_command_s_return_value_is_not_an_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _exit_code(["returns"], monkeypatch) == 0


def test_the_notebook_runner_reports_a_ctx_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.cli import magics

    monkeypatch.setitem(group.cli.commands, "exits", _exits)
    monkeypatch.setitem(group.cli.commands, "returns", _returns)
    assert magics.run_command(["exits"], keep=True)[0] == 3
    assert magics.run_command(["returns"], keep=True)[0] == 0
