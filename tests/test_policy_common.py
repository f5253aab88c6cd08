"""What every policy shares (webhook.policies.common): how values are shown in messages."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.policies.common import Violation, show

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def shown_by_json_dumps(value: object) -> str:
    """The definition: JSON text, ASCII-only, cut at 120 characters."""
    text = json.dumps(value, ensure_ascii=True, separators=(", ", ": "))
    return text if len(text) <= 120 else text[:117] + "..."


@settings(max_examples=500, deadline=None)
@given(st.text() | st.lists(st.text(), max_size=6) | json_values)
def test_show_is_json_text_cut_to_length(value: object) -> None:
    assert show(value) == shown_by_json_dumps(value)


def test_show_of_strings_quotes_escapes_and_cuts() -> None:
    assert show("shop.example.com") == '"shop.example.com"'
    assert show('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert show("é") == '"\\u00e9"'
    assert show("\U0001f600") == '"\\ud83d\\ude00"'
    assert show("x" * 200) == '"' + "x" * 116 + "..."
    assert show(["a", 1, None]) == '["a", 1, null]'
    assert show([]) == "[]"
    assert show([".", "istio-system"]) == '[".", "istio-system"]'
    assert show(["é", 'q"']) == '["\\u00e9", "q\\""]'


@given(st.text(), st.text(), st.text(), st.text(), st.text())
def test_a_violation_renders_as_its_brief_and_its_fix(
    ref: str, field: str, value: str, problem: str, fix: str
) -> None:
    violation = Violation("rule", field, value, problem, fix)
    assert violation.render(ref) == f"{violation.brief(ref)}. Fix: {fix}"
