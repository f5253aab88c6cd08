"""parse_review reads a body with orjson and, for what orjson or the model refuses, with
pydantic's own JSON reader: every body must read as pydantic alone reads it, or be refused
with the same explanation, but for the two documented differences."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.builders import FIXTURES
from webhook.admission.review import AdmissionReview, parse_review

BODIES = sorted(FIXTURES.rglob("*.json"))


def read_by_pydantic(body: bytes) -> AdmissionReview | list[Any]:
    try:
        return AdmissionReview.model_validate_json(body)
    except ValidationError as exc:
        return exc.errors(include_url=False)


def read_by_parse_review(body: bytes) -> AdmissionReview | list[Any]:
    try:
        return parse_review(body)
    except ValidationError as exc:
        return exc.errors(include_url=False)


@pytest.mark.parametrize("path", BODIES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_captured_review_reads_as_pydantic_reads_it(path: Any) -> None:
    body = path.read_bytes()
    assert parse_review(body) == AdmissionReview.model_validate_json(body)


ENVELOPE = json.loads((FIXTURES / "virtualservice-create-short-host.json").read_bytes())
# Any JSON value pydantic and orjson both read alike (integers within 64 bits, no NaN).
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["CREATE", "true", "false", "1", "0", "admission.k8s.io/v1"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["kind", "group", "version", "username", "x"]), children)
    ),
    max_leaves=8,
)
FIELDS = [
    ("apiVersion",),
    ("kind",),
    ("request",),
    ("request", "uid"),
    ("request", "kind"),
    ("request", "kind", "version"),
    ("request", "resource"),
    ("request", "subResource"),
    ("request", "name"),
    ("request", "namespace"),
    ("request", "operation"),
    ("request", "userInfo"),
    ("request", "userInfo", "groups"),
    ("request", "object"),
    ("request", "oldObject"),
    ("request", "dryRun"),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), VALUES)
def test_an_envelope_field_of_any_shape_reads_or_is_refused_as_pydantic_alone_would(
    field: tuple[str, ...], value: Any
) -> None:
    review = json.loads(json.dumps(ENVELOPE))
    parent = review
    for step in field[:-1]:
        parent = parent[step]
    parent[field[-1]] = value
    body = json.dumps(review).encode()
    assert read_by_parse_review(body) == read_by_pydantic(body)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        '{"apiVersion": Infinity}',
        '"\\ud800"',
        "\ufeff{}",
        '{"kind": "AdmissionReview"}',
    ],
)
def test_what_orjson_refuses_is_explained_as_pydantic_explains_it(text: str) -> None:
    body = text.encode()
    assert read_by_parse_review(body) == read_by_pydantic(body)


def test_the_two_differences_only_a_hand_made_body_holds() -> None:
    review = json.loads(json.dumps(ENVELOPE))
    review["request"]["object"]["spec"]["retries"] = 2**70
    read = parse_review(json.dumps(review))
    assert read.request.obj is not None
    assert read.request.obj["spec"]["retries"] == float(2**70)  # as an API server reads it
    review["request"]["object"]["status"] = json.loads("[" * 500 + "]" * 500)
    body = json.dumps(review).encode()
    assert isinstance(read_by_pydantic(body), list)  # refused: too deep for its reader
    assert isinstance(parse_review(body), AdmissionReview)
    review["request"]["object"]["status"] = "deeper"
    deeper = json.dumps(review).replace('"deeper"', "[" * 2_000 + "]" * 2_000).encode()
    assert isinstance(read_by_parse_review(deeper), list)  # both refuse this one, alike
    assert read_by_parse_review(deeper) == read_by_pydantic(deeper)
