"""The code a Python step depends on: what keys its cache.

- :func:`code_digest`: the step function's source, with the sources of the functions
  and classes of its own module that it uses (transitively) and the values of the
  simple constants it reads. Another function of the same file changing does not
  change it. The runner computes it again on the worker and refuses a mismatch.
- :func:`code_files`: the project's modules the step uses, and every project module
  they import (transitively, by their ``import`` statements): declared as the step's
  inputs, so their content digests key the cache. Installed packages are not project
  files (the environment keys those).
- :func:`module_files`: what importing the step's module needs on a worker without the
  project's filesystem (its file, packages and imports): inputs brought, not keyed.

Stdlib only (the runner imports this on every worker).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_CONSTANTS = (str, int, float, bool, bytes, type(None))


def _names(code: types.CodeType) -> Iterator[str]:
    """Global and attribute names a code object (and the code nested in it) reads."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names(constant)


def _unwrap(value: object) -> object:
    """The plain function behind a decorated step."""
    return getattr(value, "fn", None) or getattr(value, "__wrapped__", None) or value


def code_digest(fn: Callable[..., Any]) -> str:
    """``sha256:HEX`` of the step function's code as described above."""
    function = _unwrap(fn)
    module = getattr(function, "__module__", None)
    hasher = hashlib.sha256()
    seen: set[int] = set()
    todo: list[object] = [function]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        try:
            hasher.update(inspect.getsource(item).encode())  # type: ignore[arg-type]
        except (OSError, TypeError):
            hasher.update(repr(item).encode())
            continue
        code = getattr(item, "__code__", None)
        if code is None:
            continue
        namespace = getattr(item, "__globals__", {})
        for name in sorted(set(_names(code))):
            value = _unwrap(namespace.get(name))
            if isinstance(value, _CONSTANTS) and name in namespace:
                hasher.update(f"\0{name}={value!r}".encode())
            elif getattr(value, "__module__", None) == module and (
                inspect.isfunction(value) or inspect.isclass(value)
            ):
                todo.append(value)
    return f"sha256:{hasher.hexdigest()}"


def code_files(fn: Callable[..., Any], root: Path) -> list[str]:
    """Project-relative paths of the project modules the step uses, transitively."""
    function = _unwrap(fn)
    code = getattr(function, "__code__", None)
    namespace = getattr(function, "__globals__", {})
    names = set(_names(code)) if code is not None else set()
    start: list[types.ModuleType] = []
    for name in names:
        value = namespace.get(name)
        if isinstance(value, types.ModuleType):
            start.append(value)
            # `import pkg.sub` then `pkg.sub.f()`: the submodule too
            start += [m for n in names if (m := sys.modules.get(f"{value.__name__}.{n}"))]
        else:
            owner = sys.modules.get(getattr(value, "__module__", None) or "")
            if owner is not None and owner.__name__ != function.__module__:
                start.append(owner)
    return sorted(_closure(start, root))


def module_files(fn: Callable[..., Any], root: Path) -> list[str]:
    """Project-relative paths of the files a worker needs to import the step's module:
    the module, its packages and every project module it imports, transitively. Brought
    to the step, not keyed (:func:`code_digest` and :func:`code_files` key what it uses)."""
    module = sys.modules.get(getattr(_unwrap(fn), "__module__", None) or "")
    return sorted(_closure([module], root)) if module is not None else []


def _closure(start: list[types.ModuleType], root: Path) -> set[str]:
    files: set[str] = set()
    todo = list(start)
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module.__name__ in seen:
            continue
        seen.add(module.__name__)
        path = project_file(module, root)
        if path is None:
            continue
        files.add(path)
        files.update(_package_inits(module, root))
        todo += _imported(module, root / path)
    return files


def project_file(module: types.ModuleType, root: Path) -> str | None:
    """The module's file relative to ``root``, or None when it is not a project file."""
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    path = Path(filename).resolve()
    if not path.is_relative_to(root) or "site-packages" in path.parts:
        return None
    relative = path.relative_to(root)
    if relative.parts[0].startswith("."):  # .venv, .conveyor: not the project's code
        return None
    return relative.as_posix()


def _package_inits(module: types.ModuleType, root: Path) -> list[str]:
    parts = module.__name__.split(".")
    found = []
    for n in range(1, len(parts)):
        package = sys.modules.get(".".join(parts[:n]))
        path = project_file(package, root) if package is not None else None
        if path is not None:
            found.append(path)
    return found


def _imported(module: types.ModuleType, path: Path) -> list[types.ModuleType]:
    """The modules a module's ``import`` statements name (already imported: it ran)."""
    import ast  # when planning only: a step's runner needs the digest, not the files

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    package = module.__package__ or ""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return [m for name in found if (m := sys.modules.get(name)) is not None]
