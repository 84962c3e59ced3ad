"""A small YAML text is composed once and its limits checked on the nodes
(``yamlsource._built``); that check must agree with the check on the parser's events
(``_check_limits``) on every side of every limit, or hand the text to it."""

from __future__ import annotations

import pytest

from conveyor.errors import SpecError
from conveyor.spec import yamlsource
from conveyor.spec.yamlsource import MAX_DEPTH, MAX_VALUES, load_documents


def _nested(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


def _bomb(levels: int, width: int) -> str:
    lines = ["x:", "  - &l0 [a, b]"]
    lines += [f"  - &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


CASES = {
    "plain": "jobs: {a: {steps: [{run: x}]}}\n",
    # depth: the document's mapping, then the sequences; at, under and over the limit
    **{f"depth {n}": f"x: {_nested(n)}\n" for n in (MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH)},
    **{f"empty depth {n}": f"x: {_nested(n, '')}\n" for n in (MAX_DEPTH - 1, MAX_DEPTH)},
    **{
        f"alias depth {n}": f"a: &d {_nested(30)}\nb: {'[' * n}*d{']' * n}\n"
        for n in (MAX_DEPTH - 33, MAX_DEPTH - 32, MAX_DEPTH - 31)
    },
    # values: a flat list just under and over (keys count), and aliases that multiply
    **{f"flat {n}": "x: [" + "0, " * (n - 1) + "0]\n" for n in (MAX_VALUES - 3, MAX_VALUES - 2)},
    **{f"bomb {lv}x{w}": _bomb(lv, w) for lv, w in ((4, 10), (5, 10), (6, 10), (17, 2))},
    "recursive": "x: &a [1, *a]\n",
    "recursive mapping": "x: &a {k: *a}\n",
    "merge": "b: &b {a: 1}\nc: {<<: *b, d: 2}\n",
    "complex key": "? [a, b]\n: 1\n",
    "scalar anchor": "a: &s 1\nb: [*s, *s]\n",
    "two documents": "a: 1\n---\n" + "x: [" + "0, " * (MAX_VALUES + 5) + "0]\n",
    "invalid": "a: [\n",
    "unknown alias": "a: *nope\n",
    "duplicate": "a: 1\na: 2\n",
    "tag": "a: !!python/object:os.system {}\n",
}


def _events_accept(text: str) -> bool:
    try:
        yamlsource._check_limits(text, "x.yml")
    except SpecError:
        return False
    except Exception:  # a YAML error: the event pass does not accept it either
        return False
    return True


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_node_check_takes_no_text_the_event_check_refuses(name: str) -> None:
    text = CASES[name]  # load_documents sends a longer text to the events; not so here
    try:
        built = yamlsource._built(text, "x.yml")
    except SpecError:  # a duplicate key and the like: raised by either path alike
        built = None
    if built is not None:
        assert _events_accept(text), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_load_documents_gives_what_the_event_path_gives(name: str) -> None:
    text = CASES[name]

    def outcome(load: object) -> object:
        try:
            return [data for data, _ in load(text, "x.yml")]  # type: ignore[operator]
        except SpecError as exc:
            return str(exc)

    expected = outcome(yamlsource._checked_documents)
    assert outcome(load_documents) == expected


def test_ordinary_files_take_the_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("the event pass ran")

    monkeypatch.setattr(yamlsource, "_check_limits", refuse)
    ((data, source),) = list(load_documents("jobs:\n  a:\n    steps: [{run: x}]\n", "c.yml"))
    assert data == {"jobs": {"a": {"steps": [{"run": "x"}]}}}
    assert source.position(("jobs", "a")).line == 2


def test_the_node_check_agrees_on_the_limits_exactly() -> None:
    deepest, deeper = f"x: {_nested(MAX_DEPTH - 2)}\n", f"x: {_nested(MAX_DEPTH - 1)}\n"
    assert yamlsource._built(deepest, "x.yml") is not None and _events_accept(deepest)
    assert yamlsource._built(deeper, "x.yml") is None and not _events_accept(deeper)
    at = "x: [" + "0, " * (MAX_VALUES - 4) + "0]\n"  # and the mapping, the key, the list
    over = "x: [" + "0, " * (MAX_VALUES - 3) + "0]\n"
    assert yamlsource._built(at, "x.yml") is not None and _events_accept(at)
    assert yamlsource._built(over, "x.yml") is None and not _events_accept(over)
