"""ANSI colours of a log as escaped HTML, whole or fed in chunks."""

from __future__ import annotations

import html
import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from conveyor.server.web.ansi import AnsiHtml, to_html

TAG = re.compile(r"</?span[^>]*>")


def test_colours_become_classes_and_text_is_escaped() -> None:
    out = to_html("\x1b[1;31mred <b>&\x1b[0m plain \x1b[92mbright\x1b[39m end")
    assert out == (
        '<span class="ansi-red ansi-bold">red &lt;b&gt;&amp;</span> plain '
        '<span class="ansi-green-bright">bright</span> end'
    )


def test_other_sequences_are_dropped() -> None:
    assert to_html("a\x1b[2Kb\x1b]0;title\x07c\x1b[?25ld\x1b") == "abcd"


def test_256_and_rgb_colours_are_skipped_without_eating_text() -> None:
    assert to_html("\x1b[38;5;196mx\x1b[48;2;1;2;3my\x1b[0m") == "xy"


def test_a_sequence_split_between_chunks_is_held_back() -> None:
    stream = AnsiHtml()
    assert stream.feed("one \x1b[3") == "one "
    assert stream.feed("2mgreen") == '<span class="ansi-green">green</span>'
    assert stream.feed("", final=True) == ""


def test_a_script_in_a_log_stays_text() -> None:
    out = to_html("<script>alert(1)</script><img src=x onerror=alert(2)>")
    assert "<script" not in out and "<img" not in out
    assert html.unescape(out) == "<script>alert(1)</script><img src=x onerror=alert(2)>"


texts = st.text(alphabet=st.sampled_from(list("ab<>&\"' \n\x1b[;0123m")), max_size=60)


@given(texts, st.lists(st.integers(0, 60), max_size=5))
def test_chunks_change_nothing_and_only_spans_are_markup(text: str, cuts: list[int]) -> None:
    stream = AnsiHtml()
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    pieces = [stream.feed(text[a:b]) for a, b in itertools.pairwise(bounds)]
    pieces.append(stream.feed("", final=True))
    chunked = "".join(pieces)
    whole = to_html(text)
    assert html.unescape(TAG.sub("", chunked)) == html.unescape(TAG.sub("", whole))
    assert "<" not in TAG.sub("", chunked) and "\x1b" not in chunked
    for piece in pieces:  # every piece closes the spans it opens
        assert piece.count("<span") == piece.count("</span>")
