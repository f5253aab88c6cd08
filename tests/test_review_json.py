"""Answers are encoded by one shared compact encoder: the same bytes json.dumps gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from webhook.admission.review import COMPACT_JSON, compact_json

# Floats at or above 1e-4 in magnitude, or zero: below that json and orjson write the same
# number in different notations (see compact_json).
FLOATS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f == 0 or abs(f) >= 1e-4)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(JSON)
def test_the_shared_encoder_writes_what_json_dumps_writes(value: Any) -> None:
    assert COMPACT_JSON.encode(value) == json.dumps(value, separators=(",", ":"))


@given(JSON)
def test_the_fast_encoder_writes_the_same_bytes(value: Any) -> None:
    assert compact_json(value) == json.dumps(value, separators=(",", ":")).encode()


def test_what_orjson_writes_otherwise_goes_through_json() -> None:
    # Each is a case where orjson alone would differ: raw UTF-8, a raw DEL, a refused integer,
    # a key that is not a string.
    for value in ({"é": "\u2028"}, ["\x7f"], 2**70, {1: "one"}, {"ok": [1, "two", None]}):
        assert compact_json(value) == json.dumps(value, separators=(",", ":")).encode()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_reads_back_as_the_same_number(value: float) -> None:
    assert json.loads(compact_json(value)) == value
