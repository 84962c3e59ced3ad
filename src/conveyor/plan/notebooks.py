"""Notebook steps, compiled: the command that executes a notebook with papermill, where
the executed notebook and its HTML go, and the values of its ``parameters`` cell.

Pure. The command runs :mod:`conveyor.notebookrun` with the step's interpreter (the
project's environment: ``$CONVEYOR_PYTHON``, else ``python3``); the parameters travel in
the command as JSON, so they are part of the cache key like any command text. The
notebook's own bytes are keyed by its code cells only (``execute/notebooks.py``).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from conveyor.plan.datums import PYTHON, Datum, Renderer, StepContext
from conveyor.spec.expressions import whole_expression
from conveyor.spec.yamlsource import Loc

RUNNER_MODULE = "conveyor.notebookrun"
_TYPED = re.compile(r"(params|matrix)\.([A-Za-z_][A-Za-z0-9_-]*)")


def default_notebook_result(context: StepContext, step_name: str, datum: Datum | None) -> str:
    """``results/JOB/STEP/DATUM.ipynb`` for a datum step, ``results/JOB/STEP.ipynb`` else."""
    base = f"results/{context.job_id}/{step_name}"
    return f"{base}/{datum.name}.ipynb" if datum is not None else f"{base}.ipynb"


def html_path(result: str) -> str:
    """The HTML rendering beside the executed notebook (``x.ipynb`` -> ``x.html``)."""
    return result.removesuffix(".ipynb") + ".html"


def notebook_parameters(parameters: Mapping[str, Any], text: Renderer, loc: Loc) -> dict[str, Any]:
    """The values injected into the notebook: strings rendered as templates, except one
    that is ``${{ params.x }}`` (or ``matrix.x``) alone, which keeps the value's type (a
    float stays a float in the notebook); other values as YAML gave them."""
    values: dict[str, Any] = {}
    for name, value in parameters.items():
        where: Loc = (*loc, "parameters", name)
        if not isinstance(value, str):
            values[name] = value
            continue
        typed = _typed_reference(value, text)
        values[name] = typed if typed is not _NONE else text(value, where)
    return values


_NONE = object()


def _typed_reference(value: str, text: Renderer) -> Any:
    expr = whole_expression(value)
    match = _TYPED.fullmatch(expr) if expr is not None else None
    if match is None:
        return _NONE
    scope, name = match.groups()
    names = text.names[scope]
    if name not in names:
        return _NONE  # the template renderer gives the error with its position
    if scope == "params":
        text.used.add(name)
    return names[name]


def notebook_command(notebook: str, result: str, parameters: Mapping[str, Any]) -> str:
    """The shell command that executes ``notebook`` into ``result`` and its HTML."""
    blob = json.dumps(dict(parameters), sort_keys=True, separators=(",", ":"))
    args = ["-B", "-m", RUNNER_MODULE, notebook, result, html_path(result), blob]
    return f"{PYTHON} {shlex.join(args)}"
