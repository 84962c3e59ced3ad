"""``${{ ... }}`` expressions in pipeline text.

Plain references (``${{ params.lr }}``, ``${{ matrix.seed }}``) are resolved by a small
lookup, which is fast and cannot run code; anything richer goes to Jinja2's sandbox.
Every parameter a text refers to is reported so it can join the step's fingerprint.

In shell commands (:func:`render_shell`) each value is quoted for its place in the
command, so that it arrives as data; ``${{ expr | raw }}`` pastes the value as shell
text, on purpose. Elsewhere ``| raw`` changes nothing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from conveyor.plan.shell import ShellQuoteError, ShellText
from conveyor.spec.expressions import EXPRESSION, has_expression, value_text

_RAW = re.compile(r"^(.*?)\s*\|\s*raw$", re.DOTALL)
_REFERENCE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)$")
_PAYLOAD_HINT = {
    "event": "the run has no event payload: pass `conveyor run --payload FILE.json` "
    "(the trigger's event, a JSON object)",
}


class TemplateError(ValueError):
    """An expression that names something unknown or does not evaluate."""


def render(text: str, context: Mapping[str, Mapping[str, Any]], used: set[str]) -> str:
    """Substitute every ``${{ expr }}`` in ``text``; add referenced params to ``used``."""
    if not has_expression(text):
        return text

    def substitute(match: re.Match[str]) -> str:
        return value_text(evaluate(match.group(1), context, used))

    return EXPRESSION.sub(substitute, text)


def render_shell(text: str, context: Mapping[str, Mapping[str, Any]], used: set[str]) -> str:
    """Like :func:`render`, for shell text: each value is quoted for its place."""
    if not has_expression(text):
        return text
    places = _places(text)
    if places is not None:  # the places were scanned once for this text (a matrix's steps)
        return _render_at(text, places, context, used)
    shell = ShellText()
    parts: list[str] = []
    start = 0
    for match in EXPRESSION.finditer(text):
        literal = text[start : match.start()]
        start = match.end()
        value = value_text(evaluate(match.group(1), context, used))
        raw = _RAW.match(match.group(1)) is not None
        try:
            shell.feed(literal)
            if raw:  # the value is shell text, and the scanner reads it as such
                shell.feed(value)
            pasted = value if raw else shell.paste(value)
        except ShellQuoteError as exc:
            raise TemplateError(f"${{{{ {match.group(1)} }}}}: {exc}") from None
        parts += [literal, pasted]
    try:
        shell.feed(text[start:])
    except ShellQuoteError as exc:
        raise TemplateError(str(exc)) from None
    parts.append(text[start:])
    return "".join(parts)


def _render_at(
    text: str,
    places: tuple[ShellText, ...],
    context: Mapping[str, Mapping[str, Any]],
    used: set[str],
) -> str:
    """``text`` with each value quoted for its place, the places scanned before."""
    pieces: list[str] = []
    start = 0
    for match, place in zip(EXPRESSION.finditer(text), places, strict=True):
        pieces.append(text[start : match.start()])
        start = match.end()
        value = value_text(evaluate(match.group(1), context, used))
        try:
            pieces.append(place.quote(value))
        except ShellQuoteError as exc:
            raise TemplateError(f"${{{{ {match.group(1)} }}}}: {exc}") from None
    pieces.append(text[start:])
    return "".join(pieces)


@lru_cache(maxsize=256)
def _places(text: str) -> tuple[ShellText, ...] | None:
    """The scanner's state at each expression of ``text``, when it does not depend on the
    values pasted: no ``| raw`` value (it is shell text) and no here-document (a value is
    part of its lines); None otherwise, and the text is scanned with its values."""
    shell = ShellText()
    places = []
    start = 0
    try:
        for match in EXPRESSION.finditer(text):
            if _RAW.match(match.group(1)) is not None:
                return None
            shell.feed(text[start : match.start()])
            start = match.end()
            if shell.heredoc is not None or shell.pending:
                return None
            places.append(copy.deepcopy(shell))  # quote() reads a state, never changes it
            shell.paste("x")  # the state after any value: previous character not $ or \
        shell.feed(text[start:])
    except ShellQuoteError:
        return None  # the scan with the values raises it in its place
    if shell.heredoc is not None or shell.pending:
        return None
    return tuple(places)


def evaluate(expr: str, context: Mapping[str, Mapping[str, Any]], used: set[str]) -> Any:
    """The value of one expression (without the ``${{ }}``)."""
    expr, scope, path = _parse(expr)
    if scope is not None:
        if scope not in context:
            known = ", ".join(sorted(context)) or "nothing"
            raise TemplateError(f"unknown name {scope!r} in ${{{{ {expr} }}}} (known: {known})")
        if scope == "params":
            used.add(path[0])
        return _walk(scope, context[scope], path, expr)
    return _evaluate_sandboxed(expr, context, used)


@lru_cache(maxsize=1024)
def _parse(expr: str) -> tuple[str, str | None, tuple[str, ...]]:
    """``(expression without | raw, scope, path)`` of a plain reference, else the scope
    None (parsed once per text: a matrix's steps repeat the same expressions)."""
    raw = _RAW.match(expr)
    if raw:  # quoting is decided by the caller; the value is the same
        expr = raw.group(1)
    ref = _REFERENCE.match(expr)
    if ref is None:
        return expr, None, ()
    return expr, ref.group(1), tuple(ref.group(2)[1:].split("."))


def _walk(scope: str, value: Any, path: tuple[str, ...], expr: str) -> Any:
    """``scope.a.b``: field after field, each missing one named (a payload is nested)."""
    if not value and scope in _PAYLOAD_HINT:
        raise TemplateError(f"${{{{ {expr} }}}}: {_PAYLOAD_HINT[scope]}")
    where = scope
    for name in path:
        mapping = type(value) is dict or isinstance(value, Mapping)  # the ABC check is slow
        if not mapping or name not in value:
            if isinstance(value, Mapping):
                known = ", ".join(sorted(map(str, value))) or "none"
                raise TemplateError(f"{where}.{name} is not defined (defined {where}: {known})")
            raise TemplateError(f"{where} is not an object: ${{{{ {expr} }}}} has no value")
        value, where = value[name], f"{where}.{name}"
    return value


def _evaluate_sandboxed(expr: str, context: Mapping[str, Mapping[str, Any]], used: set[str]) -> Any:
    from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    try:
        compiled = env.compile_expression(expr, undefined_to_none=False)
        value = compiled(**{k: dict(v) for k, v in context.items()})
    except TemplateSyntaxError as exc:
        raise TemplateError(f"cannot parse ${{{{ {expr} }}}}: {exc.message}") from exc
    except UndefinedError as exc:
        raise TemplateError(f"in ${{{{ {expr} }}}}: {exc.message}") from exc
    except Exception as exc:
        raise TemplateError(f"cannot evaluate ${{{{ {expr} }}}}: {exc}") from exc
    if isinstance(value, Undefined):  # StrictUndefined raises only when it is used
        known = ", ".join(sorted(context))
        raise TemplateError(f"${{{{ {expr} }}}} names something undefined (known: {known})")
    # a conservative record: every param named anywhere in the expression
    params = context.get("params", {})
    used.update(name for name in params if re.search(rf"\b{re.escape(name)}\b", expr))
    return value
