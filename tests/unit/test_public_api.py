"""The curated public names of ``conveyor`` and the cost of importing it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import conveyor


def test_all_matches_the_export_table() -> None:
    assert conveyor.__all__ == list(conveyor._EXPORTS)
    assert len(set(conveyor.__all__)) == len(conveyor.__all__)


@pytest.mark.parametrize("name", list(conveyor._EXPORTS))
def test_every_public_name_resolves_from_its_module(name: str) -> None:
    value = getattr(conveyor, name)
    module = importlib.import_module(conveyor._EXPORTS[name])
    assert value is getattr(module, name)
    assert getattr(value, "__name__", name) == name


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        conveyor.no_such_thing  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    listed = dir(conveyor)
    assert set(conveyor.__all__) <= set(listed)
    assert "__version__" in listed


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from conveyor import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(conveyor.__all__)


def test_import_conveyor_alone_stays_light() -> None:
    heavy = ["sqlalchemy", "pydantic", "alembic", "yaml", "jinja2", "rich", "blake3"]
    code = (
        "import json, sys; import conveyor; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "sqlalchemy" not in loaded
    assert "pydantic" not in loaded
    assert loaded == []
