"""Pachyderm globs: the linear-time matcher against a backtracking reference.

The reference turns the same pattern into a Python regular expression (a backtracking
engine, like the regexp2 engine Pachyderm's ohmyglob compiles to): ``*`` -> ``[^/]*``,
``**`` -> ``.*``, ``?`` -> ``[^/]``, ``{a,b}`` -> ``(?:a|b)``, ``(...)`` -> ``(...)`` (``|`` inside).
On small random patterns and paths both must agree on the match and on every capture.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conveyor.spec.pachyderm_glob import GlobError, compile_glob, expand, references

ATOMS = ["a", "b", "/", "*", "**", "?", "[ab]", "[!a]"]


@st.composite
def patterns(draw: st.DrawFn, depth: int = 2) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["atom"] * 4 + (["group", "alt"] if depth else [])))
        if kind == "atom":
            parts.append(draw(st.sampled_from(ATOMS)))
        elif kind == "group":
            parts.append("(" + draw(patterns(depth - 1)) + ")")
        else:
            options = draw(st.lists(patterns(depth - 1), min_size=2, max_size=3))
            parts.append("{" + ",".join(options) + "}")
    return "".join(parts)


def reference(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.index("]", i)
            body = pattern[i:end]
            out.append(f"[^/{body[1:]}]" if body.startswith("!") else f"(?:(?!/)[{body}])")
            i = end + 1
        elif ch == "{":
            out.append("(?:")
        elif ch in ",|":  # alternatives of a brace or of a group
            out.append("|")
        elif ch == "}":
            out.append(")")
        else:
            out.append(re.escape(ch) if ch not in "()" else ch)
    return "".join(out)


@settings(max_examples=400, deadline=None)
@given(patterns(), st.text(alphabet="ab/", max_size=8))
@example("(*)*", "ab")  # greedy stars: the first takes all it can
@example("(*)(*)", "ab")
@example("(**)/(*)", "a/b/a")
@example("{(a),(*)}", "a")  # the first alternative wins
@example("(a|*)b", "ab")
def test_the_matcher_agrees_with_a_backtracking_engine(pattern: str, path: str) -> None:
    path = "/" + path
    try:
        glob = compile_glob("/" + pattern)
    except GlobError:
        return  # "//" or a trailing "/": refused before matching (tested below)
    expected = re.fullmatch(reference(glob.pattern), path)
    got = glob.match(path)
    if expected is None:
        assert got is None
    else:
        assert got == tuple(g or "" for g in expected.groups())


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/a//b", "an empty path segment"),
        ("/a/../b", "a '..' segment"),
        ("/[]", "an empty character class"),
        ("/[ab", "a '[' is never closed"),
        ("/[b-a]", "the range b-a is empty"),
        ("/(a", "a '(' is never closed"),
        ("/{a,b", "a '{' is never closed"),
        ("/a)", "an unmatched ')'"),
        ("/!(a)", "extended glob operator '!('"),
        ("/a\\", "escapes nothing"),
    ],
)
def test_a_glob_that_can_never_match_is_refused_with_why(pattern: str, message: str) -> None:
    with pytest.raises(GlobError, match=re.escape(message)):
        compile_glob(pattern)


def test_a_glob_is_cleaned_as_pachyderm_cleans_it() -> None:
    assert compile_glob("*").pattern == "/*"
    assert compile_glob("/*/").pattern == "/*"
    assert compile_glob("").pattern == "/"


def test_join_on_templates() -> None:
    assert references("$1-${2}x$10") == [1, 2, 10]
    assert expand("$1-${2}", ("a", "b")) == "a-b"
    assert expand("$3", ("a",)) == ""
