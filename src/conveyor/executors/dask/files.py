"""The driver's side of a task's files: inputs read from the project, outputs written back
only under the invocation's declared outputs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from conveyor.errors import ExecutorError
from conveyor.executors.base import Invocation

InputFile = tuple[str, int, bytes]


def safe_relative(rel: str) -> bool:
    return bool(rel) and not os.path.isabs(rel) and ".." not in rel.split("/") and "\0" not in rel


def input_files(invocation: Invocation) -> list[InputFile]:
    """(project-relative path, mode, content) of every file the declared inputs name;
    absolute inputs are left out (the step reads them where they are)."""
    return [(rel, os.stat(full).st_mode, _read(full)) for rel, full in _inputs(invocation)]


def _inputs(invocation: Invocation) -> Iterator[tuple[str, str]]:
    root = str(invocation.workdir)
    for given in invocation.inputs:
        rel = os.path.normpath(given)
        if not safe_relative(rel):
            continue
        full = os.path.join(root, rel)
        if os.path.isdir(full):
            for dirpath, dirnames, filenames in os.walk(full):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    if os.path.isfile(path):
                        yield os.path.relpath(path, root), path
        elif os.path.isfile(full):
            yield rel, full


def write_outputs(
    invocation: Invocation, outputs: Sequence[tuple[str, str, int, bytes]], tag: str
) -> None:
    """Write what the task returned into the project: each path must lie under a declared
    output and its parent inside the project (no link leads out)."""
    root = str(invocation.workdir)
    real_root = os.path.realpath(root)
    declared = [
        os.path.normpath(o) for o in invocation.outputs if safe_relative(os.path.normpath(o))
    ]
    for given, kind, mode, data in outputs:
        rel = os.path.normpath(str(given))
        if not safe_relative(rel) or not any(rel == o or rel.startswith(o + "/") for o in declared):
            raise ExecutorError(f"the Dask task returned {rel!r}, which is not a declared output")
        full = os.path.join(root, rel)
        parent = os.path.realpath(os.path.dirname(full))
        if parent != real_root and not parent.startswith(real_root + os.sep):
            raise ExecutorError(f"output {rel!r} leads outside the project directory")
        if kind == "dir":
            os.makedirs(full, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        part = f"{full}.conveyor-part-{tag}"
        try:
            with open(part, "wb") as handle:
                handle.write(data)
            os.chmod(part, mode & 0o777)
            os.replace(part, full)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()
