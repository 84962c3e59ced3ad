"""Run one step of a Python pipeline: ``python -m conveyor.pystep MODULE:FUNCTION DIGEST
[--value NAME KIND TEXT] [--file NAME KIND PATH] [--result KIND PATH]``.

The command a compiled Python step runs (``spec/pyspec.py``) in its workspace, on any
executor: import the function from the project, check that its code is the code the
plan was made from (``DIGEST``, the cache key's part), read each argument as its kind
(text, or a file an earlier step wrote), call it, and write the return value as its
kind's file. Values are JSON, Parquet (pandas DataFrames) or the file or directory a
``Path`` names: never pickled. Stdlib only, pandas imported only for a DataFrame.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

_SCALARS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


class StepInputError(Exception):
    """The command line or an input file is not what the plan says (exit code 2)."""


def read_text(kind: str, text: str) -> Any:
    """A value given on the command line (a literal or a parameter), as its kind."""
    if kind == "str":
        return text
    if kind == "path":
        return Path(text)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StepInputError(f"{text!r} is not a {kind}") from exc
    return _checked(kind, value, text)


def _checked(kind: str, value: Any, origin: str) -> Any:
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = _SCALARS.get(kind)
    if expected is not None and (type(value) is not expected):
        raise StepInputError(f"{origin} holds {value!r}, not a {kind}")
    return value


def read_file(kind: str, path: str) -> Any:
    """A value an earlier step wrote, as its kind."""
    if kind == "path":
        return Path(path)
    if kind == "dataframe":
        import pandas

        return pandas.read_parquet(path)
    with open(path, encoding="utf-8") as handle:
        return _checked(kind, json.load(handle), path)


def write_result(kind: str, path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if kind == "dataframe":
        value.to_parquet(path)
    elif kind == "path":
        _place(Path(value), Path(path))
    else:
        if kind == "float" and type(value) is int:
            value = float(value)
        if kind != "json" and type(value) is not _SCALARS[kind]:  # a bool is no int here
            raise TypeError(f"the step returned {type(value).__name__}, declared {kind}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(value, sort_keys=True, indent=2, allow_nan=False) + "\n")


def _place(source: Path, target: Path) -> None:
    """Copy the file or directory a ``Path`` result names to the step's output."""
    import shutil  # only for a Path result (it imports the compression modules)

    if source.resolve() == target.resolve():
        return
    if not source.exists():
        raise FileNotFoundError(f"the step returned {source}, which does not exist")
    if target.is_dir():
        shutil.rmtree(target)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def parse(argv: list[str]) -> tuple[str, str, dict[str, Any], tuple[str, str] | None]:
    if len(argv) < 2:
        raise StepInputError("usage: python -m conveyor.pystep MODULE:FUNCTION DIGEST [...]")
    target, digest, rest = argv[0], argv[1], argv[2:]
    arguments: dict[str, Any] = {}
    result = None
    while rest:
        flag = rest[0]
        if flag in ("--value", "--file") and len(rest) >= 4:
            name, kind, text = rest[1:4]
            arguments[name] = read_text(kind, text) if flag == "--value" else read_file(kind, text)
            rest = rest[4:]
        elif flag == "--result" and len(rest) >= 3:
            result, rest = (rest[1], rest[2]), rest[3:]
        else:
            raise StepInputError(f"unexpected argument {flag!r}")
    return target, digest, arguments, result


def main(argv: list[str]) -> int:
    try:
        target, digest, arguments, result = parse(argv)
    except StepInputError as exc:
        print(f"conveyor.pystep: {exc}", file=sys.stderr)
        return 2
    module, _, qualname = target.partition(":")
    sys.path.insert(0, os.getcwd())
    function: Any = importlib.import_module(module)
    for part in qualname.split("."):
        function = getattr(function, part)
    from conveyor.spec.pycode import code_digest

    if code_digest(function) != digest:
        print(
            f"conveyor.pystep: the code of {target} is not the code the plan was made from; "
            "plan the pipeline again",
            file=sys.stderr,
        )
        return 2
    value = getattr(function, "fn", function)(**arguments)
    if result is not None:
        write_result(result[0], result[1], value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
