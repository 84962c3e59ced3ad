"""Load a Python pipeline file in a process of its own: ``python -m conveyor.spec.pyload
ROOT FILE [NAME]`` imports FILE as a module of the project at ROOT, traces its
``@conveyor.pipeline`` (the one it defines, or NAME) and prints one JSON object:

- ``{"data": ..., "marks": [[loc, line, column], ...], "read_files": [...]}``: the
  native pipeline data, its positions, and the project's Python files that loading read
  (they key the plan cache);
- or ``{"error": ..., "path": ..., "line": ..., "column": ...}`` and exit code 2.

Loading runs the user's code, so it happens here and never in the caller's process: a
server runs this command inside the sandbox of its steps (``sdk/pyflow.py``). What the
file prints goes to stderr. Stdlib only.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.spec.pycode import project_file
from conveyor.spec.pyflow import PipelineFunction
from conveyor.spec.pyspec import native


def module_name(root: Path, path: Path) -> str:
    """The dotted name a project file is imported under (``flows/main.py``: ``flows.main``)."""
    relative = path.resolve().relative_to(root)
    parts = list(relative.with_suffix("").parts)
    if not parts or not all(p.isidentifier() for p in parts):
        raise SpecError(
            f"{relative} is not importable as a Python module; use a name of letters, "
            "digits and _ (e.g. pipeline.py)",
            Position(relative.as_posix()),
        )
    return ".".join(parts)


def find_pipeline(module: Any, name: str | None, shown: str) -> PipelineFunction[..., Any]:
    found = {
        value.name: value
        for value in vars(module).values()
        if isinstance(value, PipelineFunction) and value.fn.__module__ == module.__name__
    }
    if name is not None:
        if name not in found:
            raise SpecError(
                f"no pipeline named {name} (found: {', '.join(found) or 'none'})", Position(shown)
            )
        return found[name]
    if len(found) != 1:
        raise SpecError(
            "the file defines no @conveyor.pipeline"
            if not found
            else f"the file defines several pipelines ({', '.join(sorted(found))}); name one",
            Position(shown),
        )
    return next(iter(found.values()))


def load(root: Path, path: Path, name: str | None) -> dict[str, Any]:
    """Import, trace and translate (see the module's docstring)."""
    shown = path.resolve().relative_to(root).as_posix()
    modname = module_name(root, path)
    sys.path.insert(0, str(root))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            module = importlib.import_module(modname)
            traced = find_pipeline(module, name, shown).trace()
            data, marks = native(traced, root)
    except SpecError:
        raise
    except Exception as exc:  # the user's code failed while loading: where, and what
        raise SpecError(f"{type(exc).__name__}: {exc}", _user_frame(exc, root)) from None
    files = {project_file(m, root) for m in list(sys.modules.values())}
    return {"data": data, "marks": marks, "read_files": sorted(f for f in files if f)}


def _user_frame(exc: BaseException, root: Path) -> Position:
    """The innermost frame of the project's code in the exception's traceback."""
    position = Position("<unknown>")
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_absolute() and path.resolve().is_relative_to(root):
            position = Position(path.resolve().relative_to(root).as_posix(), frame.lineno)
    return position


def _shown(position: Position | None, root: Path) -> dict[str, Any]:
    if position is None:
        return {"path": None, "line": None, "column": None}
    path = Path(position.path)
    if path.is_absolute() and path.resolve().is_relative_to(root):
        path = path.resolve().relative_to(root)
    return {"path": path.as_posix(), "line": position.line, "column": position.column}


def main(argv: list[str]) -> int:
    root = Path(argv[0]).resolve()
    try:
        answer = load(root, Path(argv[1]), argv[2] if len(argv) > 2 else None)
    except SpecError as exc:
        answer = {"error": exc.detail, **_shown(exc.position, root)}
        sys.stdout.write(json.dumps(answer))
        return 2
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
