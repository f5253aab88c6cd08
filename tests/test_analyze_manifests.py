"""Reading manifests into documents: positions (document number, first line) and List items."""

from __future__ import annotations

import pytest

from webhook.analyze.manifests import documents

VS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: %s}\n"


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        pytest.param("a.yaml", VS % "one", [(1, 1, "one")], id="one-document"),
        pytest.param(
            "a.yaml",
            "# header\n\n---\n" + VS % "one" + "---\n---\n# only a comment\n---\n" + VS % "two",
            [(1, 4, "one"), (2, 11, "two")],
            id="empty-and-comment-documents-not-counted",
        ),
        pytest.param(
            "a.yaml",
            "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: inline}}\n--- # c\n"
            + VS % "two",
            [(1, 1, "inline"), (2, 3, "two")],
            id="document-on-the-marker-line",
        ),
        pytest.param(
            "a.yaml",
            VS % "one" + "...\n" + VS % "two",
            [(1, 1, "one"), (2, 5, "two")],
            id="document-end-marker",
        ),
        pytest.param(
            "a.yaml",
            (VS % "one" + "---\n" + VS % "two").replace("\n", "\r\n"),
            [(1, 1, "one"), (2, 5, "two")],
            id="crlf-line-endings",
        ),
        pytest.param(
            "a.yaml",
            "key: |\n  ---\n  not a marker\n" + "---\n" + VS % "two",
            [(1, 1, None), (2, 5, "two")],
            id="indented-dashes-inside-a-block-scalar",
        ),
        pytest.param(
            "a.json",
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}}\n\n'
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}}',
            [(1, 1, "one"), (2, 3, "two")],
            id="json-stream",
        ),
        pytest.param(
            "-",
            '[{"a": 1}]',
            [(1, 1, "error")],
            id="json-array-is-not-an-object",
        ),
        pytest.param(
            "a.yaml",
            "apiVersion: v1\nkind: List\nitems:\n"
            "- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n"
            "- {apiVersion: v1, kind: ConfigMap, metadata: {name: y}}\n",
            [(1, 1, "x"), (1, 1, "y")],
            id="list-items-share-their-document",
        ),
    ],
)
def test_documents_know_where_they_are(
    source: str, text: str, expected: list[tuple[int, int, str | None]]
) -> None:
    found = []
    for doc in documents(source, text):
        if doc.error is not None:
            found.append((doc.index, doc.line, "error"))
            continue
        assert doc.obj is not None
        metadata = doc.obj.get("metadata")
        found.append((doc.index, doc.line, metadata["name"] if metadata else None))
    assert found == expected


def test_a_typed_list_gives_its_items_their_kind() -> None:
    text = (
        '{"apiVersion": "networking.istio.io/v1", "kind": "VirtualServiceList", '
        '"items": [{"metadata": {"name": "a"}}, "oops"]}'
    )
    first, second = documents("list.json", text)
    assert first.obj is not None and first.item == 0
    assert (first.obj["apiVersion"], first.obj["kind"]) == (
        "networking.istio.io/v1",
        "VirtualService",
    )
    assert second.obj is None and second.item == 1 and second.error is not None
    assert second.where == "list.json, document 1, item 1 (line 1)"


def test_a_yaml_error_names_the_line_in_the_file() -> None:
    (broken,) = documents("a.yaml", "# c\n---\nkind: Pod\nmetadata: {name: [x}\n")
    assert broken.index == 1 and broken.line == 3
    assert broken.error is not None and "(line 4," in broken.error
