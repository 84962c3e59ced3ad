"""Drone's substitution (drone/envsubst): ``${VAR}`` and its bash-like forms, ``$$`` as ``$``.

Drone substitutes its own variables (``DRONE_*``, ``CI_*``) into the configuration before
anything runs; a name it does not set becomes empty, as in Drone. The forms are those
drone/envsubst documents: ``${#v}``, ``${v^}``, ``${v^^}``, ``${v,}``, ``${v,,}``,
``${v:n}``, ``${v:n:len}``, ``${v#p}``, ``${v##p}``, ``${v%p}``, ``${v%%p}``,
``${v-d}``, ``${v=d}``, ``${v:-d}``, ``${v:=d}``, ``${v/a/b}``, ``${v//a/b}``,
``${v/#a/b}``, ``${v/%a/b}``. A ``${...}`` in no such form is left as written.

In shell text (:func:`substitute_shell`) each value is quoted for its place
(:mod:`conveyor.plan.shell`): a branch named ``$(rm -rf ~)`` arrives as data, where Drone
would paste it as shell text. Pure: the variables are given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from conveyor.domain.conditions import glob_match
from conveyor.plan.shell import ShellText

__all__ = ["evaluate", "has_substitution", "substitute", "substitute_shell"]

_TOKEN = re.compile(r"\$\$|\$\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def has_substitution(text: str) -> bool:
    return "$" in text and _TOKEN.search(text) is not None


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with every expression replaced by its value, as it is."""
    return _walk(text, variables, lambda literal: literal, lambda value: value)


def substitute_shell(text: str, variables: Mapping[str, str]) -> str:
    """Shell ``text`` with every value quoted for its place (raises ``ShellQuoteError``
    where no quoting keeps it literal)."""
    shell = ShellText()

    def literal(part: str) -> str:
        shell.feed(part)
        return part

    return _walk(text, variables, literal, shell.paste)


def _walk(
    text: str,
    variables: Mapping[str, str],
    literal: Callable[[str], str],
    value: Callable[[str], str],
) -> str:
    parts: list[str] = []
    pending = ""  # literal text not yet handed over (`$$` joins it as `$`)
    start = 0
    for match in _TOKEN.finditer(text):
        pending += text[start : match.start()]
        start = match.end()
        result = None if match.group(0) == "$$" else evaluate(match.group(1), variables)
        if result is None:
            pending += "$" if match.group(0) == "$$" else match.group(0)
            continue
        parts += [literal(pending), value(result)]
        pending = ""
    parts.append(literal(pending + text[start:]))
    return "".join(parts)


def evaluate(body: str, variables: Mapping[str, str]) -> str | None:
    """The value of ``${body}``; None when ``body`` is in none of Drone's forms."""
    if body.startswith("#") and _NAME.fullmatch(body[1:]):
        return str(len(variables.get(body[1:], "")))
    name_match = _NAME.match(body)
    if name_match is None:
        return None
    name, rest = name_match.group(0), body[name_match.end() :]
    value = variables.get(name, "")
    if not rest:
        return value
    for prefix, function in _FUNCTIONS:
        if rest.startswith(prefix):
            return function(value, rest[len(prefix) :])
    return None


def _case(convert: Callable[[str], str], first: bool) -> Callable[[str, str], str | None]:
    def apply(value: str, arg: str) -> str | None:
        if arg:
            return None
        return convert(value[:1]) + value[1:] if first else convert(value)

    return apply


def _unsupported(value: str, arg: str) -> None:
    return None  # drone/envsubst lists `?` and `+` as unsupported: left as written


def _default(value: str, arg: str) -> str:
    return value or arg


def _substring(value: str, arg: str) -> str | None:
    fields = arg.split(":")
    if len(fields) > 2 or not all(re.fullmatch(r"-?[0-9]+", f.strip()) for f in fields):
        return value  # bash and drone/envsubst give the value when it cannot be read
    pos = int(fields[0])
    if pos < 0:
        pos = max(len(value) + pos, 0)
    if len(fields) == 1:
        return value[pos:]
    return value[pos : pos + int(fields[1])]


def _trim_prefix(longest: bool) -> Callable[[str, str], str]:
    def apply(value: str, pattern: str) -> str:
        cuts = [n for n in range(len(value), 0, -1) if glob_match(pattern, value[:n])]
        if not cuts:
            return value
        return value[(cuts[0] if longest else cuts[-1]) :]

    return apply


def _trim_suffix(longest: bool) -> Callable[[str, str], str]:
    # drone/envsubst reverses the value and the pattern and trims a prefix
    def apply(value: str, pattern: str) -> str:
        return _trim_prefix(longest)(value[::-1], pattern[::-1])[::-1]

    return apply


def _replace(where: str) -> Callable[[str, str], str]:
    def apply(value: str, arg: str) -> str:
        old, _, new = arg.partition("/")
        if where == "all":
            return value.replace(old, new) if old else value
        if where == "first":
            return value.replace(old, new, 1) if old else value
        if where == "prefix":
            return new + value[len(old) :] if value.startswith(old) else value
        return value[: len(value) - len(old)] + new if value.endswith(old) else value

    return apply


# longest operators first: `##` before `#`, `:-` before `:`
_FUNCTIONS: tuple[tuple[str, Callable[[str, str], str | None]], ...] = (
    ("^^", _case(str.upper, first=False)),
    ("^", _case(str.upper, first=True)),
    (",,", _case(str.lower, first=False)),
    (",", _case(str.lower, first=True)),
    (":?", _unsupported),
    (":+", _unsupported),
    ("+", _unsupported),
    ("?", _unsupported),
    (":-", _default),
    (":=", _default),
    (":", _substring),
    ("##", _trim_prefix(longest=True)),
    ("#", _trim_prefix(longest=False)),
    ("%%", _trim_suffix(longest=True)),
    ("%", _trim_suffix(longest=False)),
    ("-", _default),
    ("=", _default),
    ("//", _replace("all")),
    ("/#", _replace("prefix")),
    ("/%", _replace("suffix")),
    ("/", _replace("first")),
)
