"""``python -m conveyor.notebookrun NOTEBOOK RESULT.ipynb RESULT.html PARAMETERS_JSON``:
what a notebook step runs (the command :mod:`conveyor.plan.notebooks` writes).

Executes the notebook with papermill (the parameters injected after the cell tagged
``parameters``, or at the top) in a kernel of this very interpreter, so the step runs in
the project's environment whatever kernels the machine has installed; writes the
executed notebook and an HTML rendering (nbconvert). The cells' printed output goes to
the step's log as it comes. A failing cell fails the step (exit 1) and the log shows
that cell's source and its traceback. Stdlib only until the notebook runs: papermill,
nbconvert and ipykernel are the optional extra ``conveyor[notebooks]``; without them
the step fails with one sentence (exit 2).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

KERNEL = "conveyor-step"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NEEDED = ("papermill", "nbconvert", "ipykernel")
# JupyterLab's page without the scripts it fetches from CDNs (require.js, MathJax, the
# widgets' manager): the HTML output is one file that opens anywhere, offline too
_PAGE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock -%}
{%- block html_head_js_mathjax -%}{%- endblock -%}
{%- block jupyter_widgets -%}{%- endblock -%}
"""


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    notebook, result, html_out, blob = argv
    missing = [name for name in _NEEDED if not _importable(name)]
    if missing:
        print(
            f"conveyor: notebook steps need {', '.join(_NEEDED)} in the step's Python "
            f"({sys.executable}), which lacks {', '.join(missing)}: install them there with "
            "`pip install 'conveyor[notebooks]'` (or set CONVEYOR_PYTHON in the step's env "
            "to a Python that has them)",
            file=sys.stderr,
        )
        return 2
    parameters = json.loads(blob)
    Path(result).parent.mkdir(parents=True, exist_ok=True)
    Path(html_out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-kernel-") as kernels:
        _kernel_here(Path(kernels))
        failed = _execute(notebook, result, parameters)
    _write_html(result, html_out)
    return 1 if failed else 0


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _kernel_here(root: Path) -> None:
    """A kernel spec that starts this interpreter, found first on ``JUPYTER_PATH`` (a
    user's own ``python3`` kernel may point at another environment)."""
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    # the kernel's own warnings (TCP on loopback) are noise in a step's log; a cell's
    # error comes back through papermill whatever the log level
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    argv.append("--IPKernelApp.log_level=ERROR")
    kernel = {"argv": argv, "display_name": "Conveyor step", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(root), os.environ.get("JUPYTER_PATH", "")) if p
    )


def _execute(notebook: str, result: str, parameters: dict[str, Any]) -> bool:
    """Run the notebook into ``result``; True when a cell failed (already reported)."""
    import warnings

    import papermill
    from papermill.exceptions import PapermillExecutionError

    # notebooks saved by older tools lack cell ids; nbformat adds them and warns each time
    warnings.filterwarnings("ignore", message="Cell is missing an id field")

    try:
        papermill.execute_notebook(
            notebook,
            result,
            parameters=parameters,
            kernel_name=KERNEL,
            progress_bar=False,
            log_output=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
            cwd=os.getcwd(),
        )
    except PapermillExecutionError as exc:
        sys.stdout.flush()
        _report(notebook, exc)
        return True
    return False


def _report(notebook: str, exc: Any) -> None:
    """The failed cell (its ``In [N]`` in the executed notebook), its source and its
    traceback without terminal colours."""
    trace = "\n".join(_ANSI.sub("", line) for line in exc.traceback)
    rule = "-" * 72
    print(
        f"conveyor: cell In [{exc.exec_count}] of {notebook} failed: {exc.ename}: {exc.evalue}\n"
        f"{rule}\n{exc.source.rstrip()}\n{rule}\n{trace}",
        file=sys.stderr,
    )


def _write_html(result: str, html_out: str) -> None:
    """The executed notebook as one HTML page (also after a failure, for a person to
    read in the workspace: a failed step's outputs are not stored)."""
    if not os.path.exists(result):
        return
    import nbformat
    from nbconvert import HTMLExporter

    document = nbformat.read(result, as_version=4)  # type: ignore[no-untyped-call]
    # nbconvert validates the notebook; a kernelspec written by hand often lacks this
    kernelspec = document.metadata.get("kernelspec")
    if isinstance(kernelspec, dict) and "name" in kernelspec:
        kernelspec.setdefault("display_name", kernelspec["name"])
    with tempfile.TemporaryDirectory(prefix="conveyor-page-") as place:
        template = Path(place) / "page.html.j2"
        template.write_text(_PAGE, encoding="utf-8")
        exporter = HTMLExporter(template_file=str(template))  # type: ignore[no-untyped-call]
        body, _ = exporter.from_notebook_node(document)
    Path(html_out).write_text(body, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
