"""The ``function`` step of a Craft pipeline: call the user's function with the
execution's inputs and write its outputs. Stdlib only: the server copies this file into
each pipeline's commit (``craft/runner.py``) and the step runs it with the server's
Python, the pipeline's environment (``craft-env``, built from its requirements) first on
the path. Never imported by the server.

Inputs come from ``craft/inputs.json`` (``values``; ``files`` are in ``craft/files/NAME``
and the function gets ``{"path": ...}``, as Craft AI passes them); outputs go to
``craft-out/outputs.json`` and
``craft-out/files/NAME``.
``record_metric_value`` of the real ``craft_ai_sdk`` is redirected to Conveyor's
tracking log, so a metric lands in the run's metrics without a network call."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path.cwd()
OUT = ROOT / "craft-out"


def _track(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"metric {name!r} must be a finite number, not {value!r}")
    relative = os.environ.get("CONVEYOR_TRACKING")
    if not relative:
        return
    where = Path(os.environ.get("CONVEYOR_PROJECT_DIR", ".")) / relative
    where.mkdir(parents=True, exist_ok=True)
    line = {"kind": "metric", "name": str(name), "value": value}
    with open(where / "log.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _redirect_metrics() -> None:
    """The SDK's metric calls write Conveyor tracking lines (when the SDK is installed)."""
    os.environ.setdefault("CRAFT_AI_EXECUTION_ID", os.environ.get("CONVEYOR_RUN_ID", "local"))
    os.environ.setdefault("CRAFT_AI_SDK_TOKEN", "conveyor-execution")
    os.environ.setdefault("CRAFT_AI_ENVIRONMENT_URL", "http://conveyor.invalid")
    if importlib.util.find_spec("craft_ai_sdk") is None:
        return
    sdk_class = importlib.import_module("craft_ai_sdk").CraftAiSdk

    def record_metric_value(_sdk: Any, name: str, value: float) -> bool:
        _track(name, value)
        return True

    def record_list_metric_values(_sdk: Any, name: str, values: Any) -> bool:
        for value in values if isinstance(values, list) else [values]:
            _track(name, value)
        return True

    sdk_class.record_metric_value = record_metric_value
    sdk_class.record_list_metric_values = record_list_metric_values


def _function(definition: dict[str, Any]) -> Any:
    code = ROOT / "code"
    path = code / definition["function_path"]
    sys.path.insert(0, str(path.parent))
    sys.path.insert(0, str(code))
    spec = importlib.util.spec_from_file_location("craft_pipeline_function", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"craft: cannot load {definition['function_path']}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    name = definition["function_name"]
    if not hasattr(module, name):
        raise SystemExit(f"craft: {definition['function_path']} has no function {name!r}")
    return getattr(module, name)


def _write_outputs(definition: dict[str, Any], result: Any) -> None:
    declared = {o["name"]: o["data_type"] for o in definition.get("outputs", [])}
    if result is None:
        result = {}
    if not isinstance(result, dict):
        raise SystemExit(f"craft: the function returned {type(result).__name__}, not a dict")
    values: dict[str, Any] = {}
    (OUT / "files").mkdir(parents=True, exist_ok=True)
    for name, kind in declared.items():
        if name not in result:
            continue
        value = result[name]
        if kind == "file":
            source = value.get("path") if isinstance(value, dict) else None
            if not isinstance(source, str) or not Path(source).is_file():
                raise SystemExit(f"craft: output {name!r} is a file: return {{'path': FILE}}")
            shutil.copyfile(source, OUT / "files" / name)
        else:
            values[name] = value
    (OUT / "outputs.json").write_text(json.dumps(values), encoding="utf-8")


def main() -> None:
    definition = json.loads((ROOT / "craft" / "pipeline.json").read_text(encoding="utf-8"))
    given = json.loads((ROOT / "craft" / "inputs.json").read_text(encoding="utf-8"))
    arguments = dict(given["values"])
    for name in given["files"]:
        arguments[name] = {"path": str(ROOT / "craft" / "files" / name)}
    _redirect_metrics()
    function = _function(definition)
    sys.stdout.flush()
    result = function(**arguments)
    _write_outputs(definition, result)


if __name__ == "__main__":
    main()
