"""A traced Python pipeline -> the native pipeline data (what ``conveyor.yml`` holds).

One job named after the pipeline; one step per step call, whose ``run`` calls the
function through ``python -m conveyor.pystep`` with each argument as a typed value
or as the file an earlier step wrote, and whose ``needs`` are the steps whose results
it takes (and its ``after``). Results are written to ``_pyflow/STEP/return.*``, the
step's declared output; the files of the code it uses (``spec/pycode.py``) and the
files it takes are its declared inputs; the rest of what importing its module needs is
brought to it unkeyed (``keyed: false``), for executors without a shared filesystem.
Positions point at the ``def`` and the calls.

Stdlib only: the data goes back to the caller as JSON (``spec/pyload.py``).
"""

from __future__ import annotations

import inspect
import json
import shlex
from pathlib import Path, PurePath
from typing import Any

from conveyor.errors import SpecError
from conveyor.spec.pycode import code_digest, code_files, module_files
from conveyor.spec.pyflow import Param, Result, StepCall, TracedPipeline

RESULTS = "_pyflow"
"""The workspace directory where steps write their results."""
PYTHON = '"${CONVEYOR_PYTHON:-python3}"'
"""The interpreter, as ``python:`` steps choose it (``plan/datums.py``)."""
Marks = list[tuple[list[str | int], int, int]]


def result_path(call: StepCall) -> str:
    return f"{RESULTS}/{call.id}/{call.step.result.file}"


def native(traced: TracedPipeline, root: Path) -> tuple[dict[str, Any], Marks]:
    """The native data of the pipeline and the positions of its parts."""
    job = traced.name
    marks: Marks = [([], traced.where.line or 1, 1), (["jobs", job], traced.where.line or 1, 1)]
    params: dict[str, Any] = {}
    for name, (kind, default) in traced.params.items():
        params[name] = {"type": kind.name}
        if default is not inspect.Parameter.empty:
            params[name]["default"] = default
        marks.append((["params", name], traced.where.line or 1, 1))
    steps = []
    code: dict[int, tuple[str, list[str], list[str]]] = {}  # by step function: a step called often
    for index, call in enumerate(traced.calls):
        steps.append(_step(call, root, code))
        marks.append((["jobs", job, "steps", index], call.where.line or 1, call.where.column or 1))
    data: dict[str, Any] = {"name": traced.name}
    if params:
        data["params"] = params
    if traced.env:
        data["env"] = dict(traced.env)
    data["jobs"] = {job: {"steps": steps}}
    return data, marks


def _step(
    call: StepCall, root: Path, code: dict[int, tuple[str, list[str], list[str]]]
) -> dict[str, Any]:
    fn = call.step.fn
    module, qualname = fn.__module__, fn.__qualname__
    if module == "__main__" or "<" in qualname:
        raise SpecError(
            f"step {call.step.name} is defined in {module}.{qualname}; define steps at the "
            "top level of a module of the project so that a worker can import them",
            call.step.where,
        )
    if id(fn) not in code:
        keyed = code_files(fn, root)
        brought = [f for f in module_files(fn, root) if f not in keyed]
        code[id(fn)] = code_digest(fn), keyed, brought
    digest, files, brought = code[id(fn)]
    args = ["-B", "-m", "conveyor.pystep", f"{module}:{qualname}", digest]
    words = [PYTHON, shlex.join(args)]
    inputs = list(files)
    needs: list[str] = []
    for name, value in call.arguments.items():
        kind = call.step.inputs[name]
        if isinstance(value, Result):
            path = result_path(value.call)
            words.append(shlex.join(["--file", name, kind.name, path]))
            inputs.append(path)
            needs.append(value.call.id)
        elif isinstance(value, Param):
            reference = "${{ params." + value.name + " }}"
            words.append(shlex.join(["--value", name, kind.name]) + " " + reference)
        else:
            if isinstance(value, PurePath):
                inputs.append(value.as_posix())
            words.append(shlex.join(["--value", name, kind.name, _text(value)]))
    step: dict[str, Any] = {"id": call.id, "name": f"{module}.{qualname}"}
    result = call.step.result
    if result.name != "none":
        words.append(shlex.join(["--result", result.name, result_path(call)]))
    step["run"] = " ".join(words)
    step["needs"] = sorted({*needs, *call.step.after})
    entries: list[Any] = list(dict.fromkeys(inputs))
    entries += [{"path": f, "keyed": False} for f in brought if f not in inputs]
    if entries:
        step["inputs"] = entries
    if result.name != "none":
        step["outputs"] = [result_path(call)]
    if not call.step.cache:
        step["cache"] = False
    if call.step.retries:
        step["retries"] = call.step.retries
    if call.step.timeout is not None:
        step["timeout"] = call.step.timeout
    return step


def _text(value: object) -> str:
    """A literal argument as the text the runner reads back as its kind."""
    if isinstance(value, str):
        return value
    if isinstance(value, PurePath):
        return value.as_posix()
    return json.dumps(value, sort_keys=True)
