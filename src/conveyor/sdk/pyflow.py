"""A Python pipeline file (``pipeline.py``) -> :class:`PipelineSpec`.

Loading the file runs its code, so it runs in a child process
(``python -m conveyor.spec.pyload``) that answers with the native pipeline data; that
data is then validated like a ``conveyor.yml`` and compiled by the one compiler. On a
server whose steps run sandboxed the child runs in the same sandbox as the steps (the
local executor's ``sandbox`` table): a pushed ``pipeline.py`` can read no more of the
server than its steps can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.executors.sandbox import Sandbox
from conveyor.spec.model import PipelineSpec

LOAD_TIMEOUT = 300.0
"""Seconds a pipeline file may take to load and trace."""
MAX_ANSWER = 16 << 20


def load_python_spec(
    root: Path,
    path: Path,
    display: str,
    sandbox_setting: object = None,
    name: str | None = None,
) -> PipelineSpec:
    """Trace the pipeline that ``path`` defines (``name``: which one, when several)."""
    from conveyor.spec.load import validate
    from conveyor.spec.yamlsource import SourceMap

    answer = _run_loader(root, path, Sandbox.from_setting(sandbox_setting), name)
    if "error" in answer:
        where = answer.get("path")
        shown = display if where == _relative(root, path) else where
        raise SpecError(
            str(answer["error"]),
            Position(str(shown or display), answer.get("line"), answer.get("column")),
        )
    try:  # the child ran the user's code: its answer is data to check, like a YAML file
        marks = {
            tuple(loc): (int(line), int(column))
            for loc, line, column in answer["marks"]
            if isinstance(loc, list) and all(isinstance(k, str | int) for k in loc)
        }
        read = [f for f in answer["read_files"] if isinstance(f, str)]
    except (KeyError, TypeError, ValueError):
        raise SpecError(
            "the pipeline file's loader gave an unusable answer", Position(display)
        ) from None
    spec = validate(answer.get("data"), SourceMap(display, marks), "python")
    return spec.with_read_files(tuple(_project_files(root, path, read)))


def _project_files(root: Path, path: Path, names: list[str]) -> list[str]:
    """The project files among ``names`` (relative paths that stay in the project), as
    absolute paths: what the plan cache digests."""
    found = []
    for name in names:
        candidate = (root / name).resolve()
        if not Path(name).is_absolute() and candidate.is_relative_to(root) and candidate != path:
            found.append(str(candidate))
    return found


def _relative(root: Path, path: Path) -> str:
    return path.resolve().relative_to(root).as_posix()


def _run_loader(
    root: Path, path: Path, sandbox: Sandbox | None, name: str | None
) -> Mapping[str, Any]:
    command = [sys.executable, "-B", "-m", "conveyor.spec.pyload", str(root), str(path)]
    command += [name] if name else []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if sandbox is not None:
        command = sandbox.argv(root, command)
        env = sandbox.environment({"PYTHONDONTWRITEBYTECODE": "1"})
    try:
        done = subprocess.run(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # stderr is the caller's: what the file prints
            timeout=LOAD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SpecError(
            f"loading the pipeline took more than {LOAD_TIMEOUT:.0f} s; a pipeline file "
            "should only define steps (do the work inside them)",
            Position(_relative(root, path)),
        ) from None
    try:
        answer = json.loads(done.stdout[:MAX_ANSWER]) if len(done.stdout) <= MAX_ANSWER else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise SpecError(
            f"the pipeline file could not be loaded (exit code {done.returncode}); "
            "see the messages above",
            Position(_relative(root, path)),
        )
    return answer
