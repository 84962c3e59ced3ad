"""The SDK's form bodies (``multipartify``): ``inputs[0][name]=x`` keys, every value as
text, back into nested data; typed values checked against a pipeline's declarations."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from conveyor.server.craft.errors import bad_input

KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[A-Za-z0-9_]*\])*)$")
MAX_INDEX = 1000


def unflatten(items: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in items:
        match = KEY.fullmatch(key)
        if not match:
            raise bad_input(f"{key[:100]!r} is not a field of this request")
        parts = [match.group(1), *re.findall(r"\[([A-Za-z0-9_]*)\]", match.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            slot: Any = int(part) if part.isdigit() else part
            if isinstance(slot, int):
                if slot > MAX_INDEX:
                    raise bad_input(f"{key[:100]!r}: more than {MAX_INDEX} items")
                if not isinstance(node, dict):
                    raise bad_input(f"{key[:100]!r} mixes lists and fields")
            if last:
                node[slot] = value
            else:
                node = node.setdefault(slot, {})
    return {k: _lists(v) for k, v in root.items()}


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(isinstance(k, int) for k in value):
            return [_lists(value[k]) for k in sorted(value)]
        return {str(k): _lists(v) for k, v in value.items()}
    return value


def boolean(text: Any) -> bool | None:
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        return text
    return str(text).lower() in ("true", "1", "yes")


def _leaves(value: Any) -> Any:
    """Form text back to JSON values, leaf by leaf (the form lost their types: a leaf that
    reads as JSON is taken as such, else it stays text)."""
    if isinstance(value, list):
        return [_leaves(v) for v in value]
    if isinstance(value, dict):
        return {k: _leaves(v) for k, v in value.items()}
    try:
        return json.loads(value)
    except ValueError:
        return value


def text_default(kind: str, text: Any) -> Any:
    """A declared default as the SDK sent it (text, or fields of text) -> its value."""
    if not isinstance(text, str):
        return check_value("default value", kind, _leaves(text))
    if kind == "string":
        return text
    try:
        value = json.loads(text)
    except ValueError:
        if kind == "boolean":
            return boolean(text)
        raise bad_input(f"the default value {text[:100]!r} is not a {kind}") from None
    return check_value("default value", kind, value)


def check_value(name: str, kind: str, value: Any) -> Any:
    ok = {
        "string": isinstance(value, str),
        "number": isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "json": True,
    }.get(kind, False)
    if not ok:
        given = type(value).__name__ if value is not None else "null"
        raise bad_input(f"input {name!r} expects a {kind}, not a {given}: {str(value)[:80]!r}")
    return value


def io_list(raw: Any, what: str, inputs: bool) -> list[dict[str, Any]]:
    """Declared inputs or outputs from the form (text) -> typed declarations."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise bad_input(f"{what} must be a list of declarations")
    out = []
    for item in raw:
        entry: dict[str, Any] = {"name": item.get("name"), "data_type": item.get("data_type")}
        if item.get("description"):
            entry["description"] = str(item["description"])
        if inputs:
            required = boolean(item.get("is_required"))
            # unsaid: required unless it has a default (the function needs a value)
            entry["is_required"] = "default_value" not in item if required is None else required
            if "default_value" in item and entry["data_type"] in (
                "string",
                "number",
                "boolean",
                "json",
                "array",
            ):
                entry["default_value"] = text_default(
                    str(entry["data_type"]), item["default_value"]
                )
        out.append(entry)
    return out


def typed_inputs(
    definition: dict[str, Any], values: dict[str, Any], files: dict[str, bytes]
) -> dict[str, Any]:
    """The values of a run's inputs checked against the declared ones (unknown names,
    wrong types, missing required ones: a 400 naming them); defaults filled in."""
    declared = {i["name"]: i for i in definition.get("inputs", [])}
    for name in [*values, *files]:
        if name not in declared:
            raise bad_input(f"the pipeline has no input {name[:100]!r}")
    checked = {}
    missing = []
    for name, item in declared.items():
        kind = item["data_type"]
        if kind == "file":
            if name in values:
                raise bad_input(f"input {name!r} is a file: send it as a file")
            if name not in files and item.get("is_required"):
                missing.append(f"{name} ({kind})")
            continue
        if name in values and values[name] is not None:
            checked[name] = check_value(name, kind, values[name])
        elif "default_value" in item:
            checked[name] = item["default_value"]
        elif item.get("is_required"):
            missing.append(f"{name} ({kind})")
    if missing:
        raise bad_input(f"required inputs are missing: {', '.join(missing)}")
    return checked
