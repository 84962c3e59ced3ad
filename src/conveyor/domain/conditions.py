"""Conditions on a run's trigger and host (Drone's ``trigger``/``when``/``platform``).

A step carries the conditions of its job and its own; the scheduler checks them against
the run's :class:`RunFacts` before it launches the step, and a step whose condition is
unmet is skipped with :func:`unmet_reason`. Patterns are Go's ``filepath.Match`` globs,
as Drone matches them: ``*`` and ``?`` never cross a ``/``, ``[...]`` is a class, ``\\``
escapes. Matching is a dynamic programme over pattern and value (no regex: both are
data from a file and a request).

:class:`TriggerContext` is what the run's templates read of its trigger:
``${{ event.* }}``, the payload of the event that started the run (a DataTorch annotator
button's file and points, a server's push or schedule, ``conveyor run --payload``), and
``${{ pipeline.* }}``, the pipeline and its project. Both are data, looked up field by
field and never evaluated; they are fixed before the plan is compiled, so a value read
into a step joins that step's fingerprint.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.jsonshape import JsonShape, shape

__all__ = [
    "CONDITION_KEYS",
    "Condition",
    "RunFacts",
    "condition_holds",
    "glob_match",
    "unmet_reason",
]

CONDITION_KEYS = ("branch", "event", "ref", "repo", "cron", "target", "action", "os", "arch")
"""What a condition may test: the run's trigger, then the host (``os``, ``arch``)."""

# the names a host's architecture goes by (Drone's GOARCH names first)
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386"}


@dataclass(frozen=True)
class Condition(JsonShape):
    """One key's patterns: the value must match an ``include`` (when any) and no ``exclude``."""

    scope: str
    """Where it was declared, for the skip's reason: ``job`` or ``step``."""
    key: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = field(default=(), metadata=shape(omit=True))


@dataclass(frozen=True)
class RunFacts:
    """What a run's conditions are checked against (empty text: not known, or not set)."""

    event: str = "push"
    branch: str = ""
    ref: str = ""
    repo: str = ""
    cron: str = ""
    target: str = ""
    action: str = ""
    os: str = ""
    arch: str = ""

    def value(self, key: str) -> str:
        if key == "arch":
            return _ARCH.get(self.arch, self.arch)
        value: str = getattr(self, key)
        return value


def condition_holds(condition: Condition, facts: RunFacts) -> bool:
    value = facts.value(condition.key)
    if any(glob_match(p, value) for p in condition.exclude):
        return False
    return not condition.include or any(glob_match(p, value) for p in condition.include)


def unmet_reason(conditions: tuple[Condition, ...], facts: RunFacts) -> str | None:
    """Why the first unmet condition is unmet, in one line; None when every one holds."""
    for condition in conditions:
        if not condition_holds(condition, facts):
            value = facts.value(condition.key)
            shown = repr(value) if value else "none"
            where = "the job's" if condition.scope == "job" else "the step's"
            if any(glob_match(p, value) for p in condition.exclude):
                wanted = "excludes " + ", ".join(condition.exclude)
            else:
                wanted = "wants " + ", ".join(condition.include)
            return (
                f"{where} {condition.key} condition {wanted}; this run's {condition.key} is {shown}"
            )
    return None


def glob_match(pattern: str, value: str) -> bool:
    """Go's ``filepath.Match`` on ``/``-separated names (a malformed pattern matches nothing)."""
    tokens = _tokens(pattern)
    if tokens is None:
        return False
    # reachable[j]: the tokens so far can match value[:j]
    reachable = [True] + [False] * len(value)
    for kind, text in tokens:
        if kind == "*":
            nxt = [False] * (len(value) + 1)
            for j in range(len(value) + 1):
                nxt[j] = reachable[j] or (j > 0 and nxt[j - 1] and value[j - 1] != "/")
        else:
            nxt = [False] + [reachable[j] and _one(kind, text, value[j]) for j in range(len(value))]
        reachable = nxt
    return reachable[len(value)]


def _one(kind: str, text: str, char: str) -> bool:
    if kind == "?":
        return char != "/"
    if kind == "=":
        return char == text
    negated = text.startswith("^")
    body, hit = text[1:] if negated else text, False
    i = 0
    while i < len(body):
        low = body[i]
        if i + 2 < len(body) and body[i + 1] == "-":
            hit = hit or low <= char <= body[i + 2]
            i += 3
        else:
            hit = hit or char == low
            i += 1
    return char != "/" and hit != negated


def _tokens(pattern: str) -> list[tuple[str, str]] | None:
    """``*`` (runs merged), ``?``, ``[`` with its class, ``=`` a literal character."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if not out or out[-1][0] != "*":
                out.append(("*", ""))
            i += 1
        elif char == "?":
            out.append(("?", ""))
            i += 1
        elif char == "\\":
            if i + 1 == len(pattern):
                return None
            out.append(("=", pattern[i + 1]))
            i += 2
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                return None
            out.append(("[", pattern[i + 1 : end]))
            i = end + 1
        else:
            out.append(("=", char))
            i += 1
    return out


@dataclass(frozen=True)
class TriggerContext:
    """What ``${{ event.* }}`` and ``${{ pipeline.* }}`` read in a run's expressions."""

    event: Mapping[str, Any] = field(default_factory=dict)
    """The trigger's payload (a JSON object); empty when the run was given none."""
    pipeline: Mapping[str, Any] = field(default_factory=dict)
    """``id``, ``name``, ``projectId`` (see :func:`pipeline_values`)."""

    def names(self) -> dict[str, Mapping[str, Any]]:
        """The template namespaces: always both, so a missing one is explained."""
        return {"event": self.event, "pipeline": self.pipeline}

    def key(self) -> dict[str, Any]:
        """What a cached plan depends on (JSON)."""
        return {"event": dict(self.event), "pipeline": dict(self.pipeline)}


def pipeline_values(pipeline: str, project: str) -> dict[str, str]:
    """``${{ pipeline.* }}``: the pipeline file (its id in a project) and the project
    (DataTorch's ``projectId``; ``project`` too); the plan adds the pipeline's ``name``."""
    return {"id": pipeline, "projectId": project, "project": project}
