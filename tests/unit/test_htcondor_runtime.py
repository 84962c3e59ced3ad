"""The step runner the HTCondor executor sends with a Python pipeline's job: every
module it imports at load time is in the files it sends or the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conveyor.executors.htcondor.runtime import _PACKAGE, FILES, runtime_env

SENT = {
    "conveyor." + name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    for name in FILES
} | {"conveyor"}


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported outside functions (what loading the module imports)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_runner_sent_imports_only_itself_and_the_standard_library() -> None:
    for name in FILES:
        for module in _top_level_imports(_PACKAGE / name):
            top = module.split(".")[0]
            if top == "conveyor":
                assert module in SENT, f"{name} imports {module}, which is not sent"
            else:
                assert top in sys.stdlib_module_names or top == "__future__", (name, module)


def test_the_sent_runner_comes_first_on_the_path() -> None:
    assert runtime_env({})["PYTHONPATH"] == ".conveyor-runtime"
    assert runtime_env({"PYTHONPATH": "lib", "X": "1"}) == {
        "PYTHONPATH": ".conveyor-runtime:lib",
        "X": "1",
    }
