"""``conveyor run``'s command line read without click, for the forms people and scripts
type: ``[-C DIR] [-f FILE] run [PIPELINE]`` with ``-j/--jobs N``, ``--only STEP``,
``-p/--param NAME=VALUE``, ``--force``, ``--no-wait``, ``--json``, ``--executor``,
``--event``, ``--cron``, ``--target``, ``-f/--file``, each as ``--opt VALUE``,
``--opt=VALUE`` or ``-oVALUE``.

Importing click and building the commands' options is a tenth of a no-op run. This reader
reads what click would read from these forms (``tests/unit/test_quick_run.py`` holds both
to the same values) and answers None for anything else: help, ``--version``, an unknown
or misspelt option, a value click would refuse or read otherwise, ``--remote``,
``--sweep``, ``--payload``, shell completion. Those go to click, so every usage error and
help text is click's own."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.cli.context import Context
from conveyor.cli.local_run import RunOptions

# Options before the command name (the group's) and after it (run's): option -> key.
_GROUP = {"-C": "directory", "-f": "file", "--file": "file"}
_VALUES = {
    "-j": "parallelism",
    "--jobs": "parallelism",
    "--only": "only",
    "-p": "params",
    "--param": "params",
    "--executor": "executor",
    "--event": "event",
    "--cron": "cron",
    "--target": "target",
    "-f": "file",
    "--file": "file",
}
_FLAGS = {"--force": "force", "--no-wait": "no_wait", "--json": "as_json"}
_MANY = ("only", "params")


def _split(arg: str, names: Mapping[str, str]) -> tuple[str, str | None] | None:
    """``arg`` as (key, value attached to it or None), if it names one of ``names``."""
    if arg.startswith("--"):
        name, sep, value = arg.partition("=")
        return (names[name], value if sep else None) if name in names else None
    if arg[:2] in names:
        return names[arg[:2]], (arg[2:] or None)
    return None


def _options(
    args: list[str], names: Mapping[str, str], flags: Mapping[str, str], stop: str | None
) -> tuple[dict[str, list[str] | bool], list[str]] | None:
    """The options of ``args`` (values in order) and its other words, reading up to the
    word ``stop`` (then consumed from ``args``) or to the end; None for anything unsure."""
    found: dict[str, list[str] | bool] = {}
    words: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == stop:
            return found, words
        if arg in flags:
            found[flags[arg]] = True
            continue
        split = _split(arg, names)
        if split is None:
            if arg.startswith("-") or not arg or stop is not None:
                return None  # unknown, "-", "--", an empty word, a word before the command
            words.append(arg)
            continue
        key, value = split
        if value is None:
            if not args:
                return None
            value = args.pop(0)
        if not value or value.startswith(("-", "=")):
            return None  # click reads these as values too: they are rare, let click say so
        listed = found.setdefault(key, [])
        assert isinstance(listed, list)
        listed.append(value)
    return (found, words) if stop is None else None


def _file(value: str) -> Path | None:
    """A pipeline file as ``click.Path(dir_okay=False)`` returns it, or None where click
    refuses it (a directory, unreadable)."""
    if os.path.isdir(value) or (os.path.exists(value) and not os.access(value, os.R_OK)):
        return None
    return Path(value)


def _last(found: Mapping[str, list[str] | bool], key: str) -> str | None:
    values = found.get(key)
    return values[-1] if isinstance(values, list) else None


def _many(found: Mapping[str, list[str] | bool], key: str) -> tuple[str, ...]:
    values = found.get(key)
    return tuple(values) if isinstance(values, list) else ()


def parse_run(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[Context, RunOptions] | None:
    """``conveyor ARGV`` as the run's context and options, or None: click reads it."""
    if environ.get("_CONVEYOR_COMPLETE"):
        return None  # click's shell completion
    args = list(argv)
    group = _options(args, _GROUP, {}, "run")
    run = _options(args, _VALUES, _FLAGS, None) if group is not None else None
    if group is None or run is None:
        return None
    (top, _), (found, words) = group, run
    if len(words) > 1 or (words and "file" in found):
        return None  # click's error, or a PIPELINE beside -f (the later one wins)
    directory = _last(top, "directory") or "."
    if not os.path.isdir(directory) or not os.access(directory, os.R_OK):
        return None
    files = [f for f in (_last(top, "file"), _last(found, "file"), *words) if f is not None]
    checked = [_file(f) for f in files]
    if None in checked:
        return None
    jobs = _last(found, "parallelism")
    if jobs is not None and not (jobs.isascii() and jobs.isdigit() and int(jobs) >= 1):
        return None
    context = Context(Path(directory).resolve(), checked[-1] if checked else None)
    options = RunOptions(
        parallelism=int(jobs) if jobs is not None else None,
        only=_many(found, "only"),
        force=bool(found.get("force")),
        params=_many(found, "params"),
        executor=_last(found, "executor"),
        no_wait=bool(found.get("no_wait")),
        event=_last(found, "event"),
        cron=_last(found, "cron") or "",
        payload={},
        target=_last(found, "target") or "",
        as_json=bool(found.get("as_json")),
        sweep=False,
    )
    return context, options
