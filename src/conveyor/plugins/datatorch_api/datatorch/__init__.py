"""``import datatorch`` for DataTorch python actions run by Conveyor: the action API of
the ``datatorch`` package (0.8.0), which DataTorch's runner gives every python action.

Conveyor puts this directory on a DataTorch action step's ``PYTHONPATH``. Where the real
package is installed further along ``sys.path`` (an action whose ``requirements.txt``
lists it), that one is loaded in this module's place; otherwise this module is the API:
inputs are the JSON object in the last argument, an output is a ``::name::<json>`` line.
Stdlib only; imports nothing of Conveyor.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from typing import Any

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_inputs: dict[str, Any] | None = None


def _real_package() -> bool:
    """Load an installed ``datatorch`` from the rest of ``sys.path`` in this module's place."""
    rest = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    spec = importlib.machinery.PathFinder.find_spec(__name__, rest)
    if spec is None or spec.loader is None or spec.origin == os.path.abspath(__file__):
        return False
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)
    return True


def get_inputs() -> dict[str, Any]:
    """The action's inputs: the JSON object DataTorch passes as the last argument."""
    global _inputs  # noqa: PLW0603 (read once, as the package does)
    if _inputs is None:
        try:
            loaded = json.loads(sys.argv[-1])
        except (IndexError, ValueError):
            loaded = {}
        _inputs = loaded if isinstance(loaded, dict) else {}
    return _inputs


def get_input(key: str) -> Any:
    return get_inputs().get(key)


def set_output(var: str, value: Any) -> None:
    """An output of the step: DataTorch's ``::name::<json>`` line on stdout."""
    print(f"::{var}::{json.dumps(value)}", flush=True)


_real_package()
