"""JSON Patch building: missing parents, escaping, no-ops, and a property over random objects."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.patch import Path, pointer, set_values


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(("metadata", "labels", "app"), "/metadata/labels/app", id="plain"),
        pytest.param(("a", "example.com/team"), "/a/example.com~1team", id="slash"),
        pytest.param(("a", "x~y"), "/a/x~0y", id="tilde"),
        pytest.param(("a", "~1"), "/a/~01", id="tilde-then-one-is-not-a-slash"),
        pytest.param(("spec", "containers", 2, "name"), "/spec/containers/2/name", id="index"),
        pytest.param(("",), "/", id="empty-key"),
    ],
)
def test_pointer_escapes_rfc6901(path: Path, expected: str) -> None:
    assert pointer(path) == expected


@pytest.mark.parametrize(
    ("document", "updates", "expected"),
    [
        pytest.param(
            {"metadata": {}},
            [(("metadata", "labels", "t"), "a"), (("metadata", "labels", "u"), "b")],
            [{"op": "add", "path": "/metadata/labels", "value": {"t": "a", "u": "b"}}],
            id="missing-map-added-whole",
        ),
        pytest.param(
            {"metadata": {"labels": None}},
            [(("metadata", "labels", "t"), "a")],
            [{"op": "add", "path": "/metadata/labels", "value": {"t": "a"}}],
            id="null-map-replaced-by-add",
        ),
        pytest.param(
            {"metadata": {"labels": {"t": "b"}}},
            [(("metadata", "labels", "t"), "a")],
            [{"op": "replace", "path": "/metadata/labels/t", "value": "a"}],
            id="wrong-value-replaced",
        ),
        pytest.param(
            {"metadata": {"labels": {"t": "a"}}},
            [(("metadata", "labels", "t"), "a")],
            [],
            id="right-value-no-op",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}},
            [(("spec", "containers", 1, "resources", "limits", "cpu"), "1")],
            [
                {
                    "op": "add",
                    "path": "/spec/containers/1/resources",
                    "value": {"limits": {"cpu": "1"}},
                }
            ],
            id="missing-nested-maps-under-a-list-item",
        ),
    ],
)
def test_set_values(
    document: dict[str, Any], updates: list[tuple[Path, Any]], expected: list[dict[str, Any]]
) -> None:
    assert set_values(document, updates) == expected


keys = st.sampled_from(["a", "b", "x/y", "t~n", "~1", "sidecar.istio.io/proxyCPU"])
documents = st.recursive(
    st.one_of(st.none(), st.text(max_size=3)),
    lambda children: st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    document=st.dictionaries(keys, documents, max_size=4),
    updates=st.dictionaries(
        st.lists(keys, min_size=1, max_size=3).map(tuple), st.text(min_size=1, max_size=3)
    ),
)
def test_applying_the_patch_sets_every_value_and_a_second_round_is_empty(
    document: dict[str, Any], updates: dict[Path, str]
) -> None:
    # Paths must not pass through a value that one of them writes, nor through a string.
    for path in updates:
        for other in updates:
            if other != path and other[: len(path)] == path:
                return
        node: Any = document
        for token in path[:-1]:
            node = node.get(token) if isinstance(node, dict) else None
            if node is not None and not isinstance(node, dict):
                return
    original = copy.deepcopy(document)
    patch = set_values(document, list(updates.items()))
    assert document == original
    result = jsonpatch.apply_patch(document, patch)
    for path, value in updates.items():
        node = result
        for token in path:
            node = node[token]
        assert node == value
    assert set_values(result, list(updates.items())) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet="a~/01", max_size=5), st.integers(0, 3)), max_size=4))
def test_pointer_is_the_escaped_tokens_every_time_it_is_asked(path: list[str | int]) -> None:
    # pointer() remembers paths; asked twice, it must still give this path's own pointer.
    expected = "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in path)
    assert pointer(tuple(path)) == expected
    assert pointer(tuple(path)) == expected
