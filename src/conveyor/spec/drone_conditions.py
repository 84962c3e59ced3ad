"""Drone's ``trigger`` (a pipeline's), ``when`` (a step's) and ``platform`` -> native ``when``.

Each condition key takes a glob, a list of globs, or ``{include: ..., exclude: ...}``; the
scheduler checks them against the run's facts (:mod:`conveyor.domain.conditions`).
``status`` is not a fact but a run policy: it is returned apart. ``instance`` and
``paths`` cannot have a meaning here: each is ignored with one warning.
"""

from __future__ import annotations

from typing import Any

from conveyor.spec.translate import expect_list, expect_mapping, expect_text
from conveyor.spec.yamlsource import Loc, SourceMap, describe

__all__ = ["Conditions", "platform_when", "read_conditions"]

_FACTS = ("branch", "event", "ref", "repo", "cron", "target", "action")
_IGNORED = {
    "instance": "there is one Conveyor, not several Drone instances",
    "paths": "Drone core does not read it either (it needs a conversion extension)",
}
_STATUSES = {"success", "failure"}


class Conditions:
    """A ``trigger``/``when`` block read: native ``when`` data, its ``status`` and warnings."""

    def __init__(self) -> None:
        self.when: dict[str, Any] = {}
        self.statuses: set[str] | None = None
        self.warnings: list[str] = []

    def policy(self, default: str = "success()") -> str:
        if self.statuses is None:
            return default
        if self.statuses == _STATUSES:
            return "always()"
        return "failure()" if self.statuses == {"failure"} else "success()"


def read_conditions(value: Any, source: SourceMap, loc: Loc, what: str) -> Conditions:
    """``what``: ``trigger`` or ``when``, for messages."""
    out = Conditions()
    block = expect_mapping(value, source, loc, "conditions")
    for key, item in block.items():
        where: Loc = (*loc, key)
        if key == "status":
            out.statuses = _statuses(item, source, where, what)
        elif key in _FACTS:
            out.when[key] = _patterns(item, source, where)
        elif key in _IGNORED:
            out.warnings.append(
                f"{source.position(where)}: {what}.{key} is ignored: {_IGNORED[key]}"
            )
        else:
            known = ", ".join((*_FACTS, "status", *_IGNORED))
            raise source.error(
                where, f"{describe(where)} is not a Drone condition (known: {known})"
            )
    return out


def platform_when(value: Any, source: SourceMap, loc: Loc) -> dict[str, Any]:
    """``platform: {os, arch}`` -> conditions on the host; ``variant``/``version`` are ignored
    by Drone's docker runner too."""
    block = expect_mapping(value, source, loc, "os and arch")
    when: dict[str, Any] = {}
    for key in ("os", "arch"):
        if key in block:
            when[key] = [expect_text(block[key], source, (*loc, key))]
    return when


def _patterns(value: Any, source: SourceMap, loc: Loc) -> Any:
    if isinstance(value, dict):
        block = expect_mapping(value, source, loc, "include and exclude")
        for key in block:
            if key not in ("include", "exclude"):
                raise source.error((*loc, key), f"{key}: a condition has include and exclude")
        return {k: _globs(v, source, (*loc, k)) for k, v in block.items()}
    return _globs(value, source, loc)


def _globs(value: Any, source: SourceMap, loc: Loc) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = expect_list(value, source, loc, "globs")
    return [expect_text(v, source, (*loc, i)) for i, v in enumerate(items)]


def _statuses(value: Any, source: SourceMap, loc: Loc, what: str) -> set[str]:
    statuses = set(_globs(value, source, loc))
    if not statuses or not statuses <= _STATUSES:
        raise source.error(loc, f"{what}.status lists success, failure or both")
    return statuses
