"""``conveyor run``'s quick reader (``cli/quick.py``) reads what click reads: for every
command line it accepts, the run gets the same directory, pipeline file and options
as through the click command; every other command line goes to click."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import local_run, main
from conveyor.cli.group import cli
from conveyor.cli.quick import parse_run

# Command lines the quick reader takes: each must give what click gives.
ACCEPTED = [
    ["run"],
    ["run", "-j", "4"],
    ["run", "-j4"],
    ["run", "--jobs", "2"],
    ["run", "--jobs=2"],
    ["run", "-j", "007"],
    ["run", "-j", "1", "-j", "3"],
    ["run", "--force", "--no-wait", "--json"],
    ["run", "--force", "--force"],
    ["run", "--only", "a.b", "--only", "c"],
    ["run", "--only=a.b"],
    ["run", "--only", "run"],
    ["run", "-p", "lr=0.1", "--param", "depth=3", "-px=1", "--param=y=a=b"],
    ["run", "-p", "x="],
    ["run", "-p", "x"],
    ["run", "-p", "x=-1"],
    ["run", "--executor", "htcondor", "--executor=local"],
    ["run", "--event", "tag", "--cron", "nightly", "--target", "prod"],
    ["run", "--event=cron", "--cron=n", "--target=t"],
    ["run", "pipe.yml"],
    ["run", "pipe.yml", "-j", "2", "--force"],
    ["run", "-f", "pipe.yml"],
    ["run", "--file=pipe.yml"],
    ["run", "-fpipe.yml"],
    ["run", "-f", "a.yml", "-f", "pipe.yml"],
    ["run", "-f", "missing.yml"],
    ["run", "missing.py"],
    ["-C", "sub", "run"],
    ["-Csub", "run", "-j", "2"],
    ["-C", "sub", "-C", ".", "run"],
    ["-f", "pipe.yml", "run"],
    ["--file", "pipe.yml", "run", "--force"],
    ["--file=pipe.yml", "run", "-f", "a.yml"],
    ["-f", "pipe.yml", "run", "a.yml"],
    ["-f", "run", "run"],
    ["-C", "sub", "-f", "pipe.yml", "run", "--only", "x", "-j", "9", "--json"],
]

# Command lines left to click: help, versions, mistakes and the rarer options.
REFUSED = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["run", "--help"],
    ["run", "-h"],
    ["run", "-j", "0"],
    ["run", "-j", "-1"],
    ["run", "-j", "x"],
    ["run", "-j", " 4"],
    ["run", "-j", "4_0"],
    ["run", "-j", "٣"],
    ["run", "-j"],
    ["run", "--jobs="],
    ["run", "-j=4"],
    ["run", "--bogus"],
    ["run", "--forc"],
    ["run", "--force=1"],
    ["run", "--only"],
    ["run", "--only", "--force"],
    ["run", "--only", ""],
    ["run", "--remote"],
    ["run", "--remote", "--detach", "--ref", "main"],
    ["run", "--sweep", "-p", "x=1,2"],
    ["run", "--payload", "event.json"],
    ["run", "a.yml", "b.yml"],
    ["run", "a.yml", "-f", "pipe.yml"],
    ["run", "-"],
    ["run", "--"],
    ["run", "--", "pipe.yml"],
    ["run", ""],
    ["run", "sub"],
    ["run", "-f", "sub"],
    ["-f", "sub", "run"],
    ["-C", "pipe.yml", "run"],
    ["-C", "missing", "run"],
    ["-C", "", "run"],
    ["--force", "run"],
    ["-j", "2", "run"],
    ["show", "latest"],
    ["runs"],
    ["rerun", "abc"],
    ["x", "run"],
    ["-C", "sub"],
]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with pipeline files and a subdirectory, as the working directory."""
    (tmp_path / "sub").mkdir()
    for name in ("pipe.yml", "a.yml", "b.yml", "event.json", "run"):
        (tmp_path / name).write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("_CONVEYOR_COMPLETE", raising=False)
    monkeypatch.setattr(main.gc, "freeze", lambda: None)  # main's last act, for a process
    return tmp_path


def _seen(context: Any, options: local_run.RunOptions) -> tuple[Any, ...]:
    return (context.directory, context.pipeline_file, options)


def _through_click(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """What the click command hands to the run, for ``conveyor ARGV``."""
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(local_run, "run_here", lambda c, o: seen.append(_seen(c, o)))
    cli.main(args=argv, prog_name="conveyor", standalone_mode=False)
    (found,) = seen
    return found


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_the_quick_reader_reads_what_click_reads(
    here: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = parse_run(argv, os.environ)
    assert parsed is not None, "not read"
    assert _seen(*parsed) == _through_click(argv, monkeypatch)


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a) or "(none)")
def test_what_the_quick_reader_does_not_read_goes_to_click(
    here: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_run(argv, os.environ) is None
    went: list[str] = []
    monkeypatch.setattr(local_run, "run_here", lambda *_: went.append("quick"))
    monkeypatch.setattr("conveyor.cli.group.click_main", lambda: went.append("click"))
    monkeypatch.setattr(sys, "argv", ["conveyor", *argv])
    main.main()
    assert went == ["click"]


def test_an_accepted_command_line_runs_without_click(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    went: list[tuple[Any, ...]] = []
    monkeypatch.setattr(local_run, "run_here", lambda c, o: went.append(_seen(c, o)))
    monkeypatch.setattr("conveyor.cli.group.click_main", lambda: went.append(("click",)))
    monkeypatch.setattr(sys, "argv", ["conveyor", "run", "-j", "2", "--only", "x"])
    main.main()
    ((directory, file, options),) = went
    assert (directory, file) == (here.resolve(), None)
    assert (options.parallelism, options.only) == (2, ("x",))


def test_shell_completion_goes_to_click(here: Path) -> None:
    assert parse_run(["run"], {"_CONVEYOR_COMPLETE": "bash_complete"}) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_pipeline_file_goes_to_click(here: Path) -> None:
    (here / "pipe.yml").chmod(0)
    assert parse_run(["run", "-f", "pipe.yml"], os.environ) is None
    assert parse_run(["run", "pipe.yml"], os.environ) is None
