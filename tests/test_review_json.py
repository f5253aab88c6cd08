"""Answers are encoded by one shared compact encoder: the same bytes json.dumps gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from webhook.admission.review import COMPACT_JSON

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(JSON)
def test_the_shared_encoder_writes_what_json_dumps_writes(value: Any) -> None:
    assert COMPACT_JSON.encode(value) == json.dumps(value, separators=(",", ":"))
