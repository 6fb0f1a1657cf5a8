"""engine/jsontext.py writes the JSON values the standard library would, faster: whatever it
writes reads back as json.dumps' text does, and nothing json.dumps accepts is refused."""
import json

import pytest
from hypothesis import given, strategies as st

from engine import jsontext

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text() |
    st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(_values)
def test_reads_back_as_the_standard_library_text_does(value):
    assert json.loads(jsontext.dumps(value)) == json.loads(json.dumps(value, ensure_ascii=False))
    assert jsontext.loads(json.dumps(value)) == json.loads(json.dumps(value))


def test_chinese_text_is_kept_as_characters_and_json_dumps_arguments_are_accepted():
    text = jsontext.dumps({"name": "重大税收违法失信主体"}, ensure_ascii=False)
    assert "重大税收违法失信主体" in text


def test_what_orjson_refuses_falls_back_to_the_standard_library():
    huge = 2**70  # beyond orjson's 64-bit integers
    assert json.loads(jsontext.dumps({"n": huge})) == {"n": huge}
    assert json.loads(jsontext.dumps({1: "a", None: "b"})) == {"1": "a", "null": "b"}
    assert jsontext.loads(json.dumps({"n": huge})) == {"n": huge}
    assert jsontext.loads('{"x": NaN}')["x"] != jsontext.loads('{"x": NaN}')["x"]  # NaN, as json reads it
    try:
        json.loads('{"a": 1,}')
    except json.JSONDecodeError as exc:
        wording = exc.msg
    with pytest.raises(json.JSONDecodeError, match=wording):
        jsontext.loads('{"a": 1,}')
