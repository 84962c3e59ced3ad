"""The position-keeping JSON reader: the same values as the stdlib's, and positions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.errors import SpecError
from conveyor.spec.jsonsource import load_documents

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON, st.sampled_from([None, 2]))
def test_a_document_reads_as_the_stdlib_reads_it(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    ((data, _),) = list(load_documents(text, "f.json"))
    assert data == json.loads(text)


def test_a_stream_is_several_documents_and_each_value_has_its_position() -> None:
    text = '{"a": 1}\n{\n  "b": [true,\n    {"c": "x"}]}\n'
    (first, _), (second, source) = list(load_documents(text, "f.json"))
    assert (first, second) == ({"a": 1}, {"b": [True, {"c": "x"}]})
    assert str(source.position(("b",))) == "f.json:3:3"
    assert str(source.position(("b", 1, "c"))) == "f.json:4:6"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "f.json:1:10: duplicate key 'a'"),
        ('{"a": 1,}', "f.json:1:9: invalid JSON: expected a key in double quotes"),
        ('{"a" 1}', "f.json:1:6: invalid JSON: expected ':' after a key, found '1'"),
        ('{"a": tru}', "f.json:1:7: invalid JSON: unexpected 't'"),
        ('["a\\q"]', "f.json:1:4: invalid JSON: Invalid \\escape"),
        ("[1, 2", "f.json:1:6: invalid JSON: expected ',' or ']', found the end of the file"),
    ],
)
def test_bad_json_is_one_error_with_its_position(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        list(load_documents(text, "f.json"))
    assert str(caught.value) == message
